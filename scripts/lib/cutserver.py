"""cutserver.py: a loopback HTTP server for gale's end-to-end tests that cuts
the first download of every file half-way, so clients must resume.

    python3 scripts/lib/cutserver.py DIR PORT

GET serves files from DIR with Content-Length and an ETag and honours
"Range: bytes=N-" with 206. The first GET of each path without a Range
sends the headers and half the body, then closes the connection. Every
request line is logged to stderr.
"""
import http.server
import os
import sys

root, port = sys.argv[1], int(sys.argv[2])
cut_done = set()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = os.path.join(root, os.path.basename(self.path))
        if not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        start = 0
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[len("bytes="):-1])
        etag = '"%x-%x"' % (size, int(os.path.getmtime(path)))
        if start:
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(size - start))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        with open(path, "rb") as f:
            f.seek(start)
            if not start and self.path not in cut_done:
                cut_done.add(self.path)
                self.wfile.write(f.read(size // 2))
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                self.wfile.write(chunk)


http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()

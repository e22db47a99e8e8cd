package fetch

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestParseChecksumFile(t *testing.T) {
	a := strings.Repeat("a1", 32) // sha256-long values
	b := strings.Repeat("b2", 32)
	c := strings.Repeat("c3", 32)
	long := strings.Repeat("d4", 64) // sha512-long
	tests := []struct {
		name, data, file, alg string
		want                  string // hex; "" when an error is expected
		wantErr               string // substring of the error
	}{
		{name: "GNU text and binary mode",
			data: a + "  debian-12-generic-amd64.qcow2\n" + b + " *debian-12-generic-arm64.qcow2\n",
			file: "debian-12-generic-arm64.qcow2", alg: "sha256", want: b},
		{name: "GNU with CRLF and comments",
			data: "# SHA256SUMS\r\n\r\n" + a + "  one.img\r\n" + b + "  two.img\r\n",
			file: "two.img", alg: "sha256", want: b},
		{name: "GNU with ./ prefix",
			data: a + "  ./noble-server-cloudimg-amd64.img\n",
			file: "noble-server-cloudimg-amd64.img", alg: "sha256", want: a},
		{name: "GNU with directory",
			data: a + "  images/x86_64/alma.qcow2\n" + b + "  other.qcow2\n",
			file: "alma.qcow2", alg: "sha256", want: a},
		{name: "file name with directory matches a bare entry",
			data: a + "  alma.qcow2\n" + b + "  other.qcow2\n",
			file: "x86_64/alma.qcow2", alg: "sha256", want: a},
		{name: "exact match wins over base name",
			data: a + "  amd64/disk.img\n" + b + "  arm64/disk.img\n",
			file: "arm64/disk.img", alg: "sha256", want: b},
		{name: "tab separator",
			data: a + "\tone.img\n" + b + "\ttwo.img\n", file: "one.img", alg: "sha256", want: a},
		{name: "upper-case hex is lowered",
			data: strings.ToUpper(a) + "  x.img\n", file: "x.img", alg: "sha256", want: a},
		{name: "GNU sha512",
			data: long + "  x.img\n", file: "x.img", alg: "SHA512", want: long},
		{name: "GNU escaped name",
			data: `\` + a + `  odd\\name.img` + "\n", file: `odd\name.img`, alg: "sha256", want: a},
		{name: "BSD tags, several algorithms",
			data: "MD5 (x.img) = 0123456789abcdef0123456789abcdef\nSHA256 (x.img) = " + a + "\nSHA512 (x.img) = " + long + "\n",
			file: "x.img", alg: "sha256", want: a},
		{name: "BSD tag sha512",
			data: "SHA256 (x.img) = " + a + "\nSHA512 (x.img) = " + long + "\n",
			file: "x.img", alg: "sha512", want: long},
		{name: "BSD name with parentheses",
			data: "SHA256 (x (1).img) = " + c + "\n", file: "x (1).img", alg: "sha256", want: c},
		{name: "Fedora clear-signed CHECKSUM",
			data: "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" +
				"# Fedora-Cloud-Base-Generic-42-1.1.x86_64.qcow2: 556793856 bytes\n" +
				"SHA256 (Fedora-Cloud-Base-Generic-42-1.1.x86_64.qcow2) = " + a + "\n" +
				"- SHA256 (Fedora-Cloud-Base-Azure-42-1.1.x86_64.vhdfixed.xz) = " + b + "\n" +
				"-----BEGIN PGP SIGNATURE-----\n\n" +
				"iQIzBAEBCAAdFiEE" + c + "\n=Ab12\n-----END PGP SIGNATURE-----\n",
			file: "Fedora-Cloud-Base-Azure-42-1.1.x86_64.vhdfixed.xz", alg: "sha256", want: b},
		{name: "clear-signed GNU lines",
			data: "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n" + long + "  rocky.qcow2\n" +
				"-----BEGIN PGP SIGNATURE-----\nVersion: x\n\n" + strings.Repeat("e5", 64) + "  rocky.qcow2\n-----END PGP SIGNATURE-----\n",
			file: "rocky.qcow2", alg: "sha512", want: long},
		{name: "single bare digest",
			data: a + "\n", file: "anything.img", alg: "sha256", want: a},
		{name: "single digest with its name",
			data: c + "  alpine.qcow2\n", file: "alpine.qcow2", alg: "sha256", want: c},
		{name: "single digest naming another file",
			data: c + "  alpine-3.20.qcow2\n", file: "alpine-3.21.qcow2", alg: "sha256", wantErr: `"alpine-3.21.qcow2"`},
		{name: "single bare digest of the wrong length",
			data: long + "\n", file: "x.img", alg: "sha256", wantErr: "128 hex digits"},
		{name: "missing entry",
			data: a + "  one.img\n" + b + "  two.img\n", file: "three.img", alg: "sha256", wantErr: `no sha256 entry for "three.img"`},
		{name: "BSD entry for another algorithm only",
			data: "SHA512 (x.img) = " + long + "\nSHA512 (y.img) = " + long + "\n", file: "x.img", alg: "sha256", wantErr: "no sha256 entry"},
		{name: "wrong-length hex",
			data: a[:63] + "  x.img\n" + b + "  y.img\n", file: "x.img", alg: "sha256", wantErr: "63 hex digits"},
		{name: "wrong-length BSD hex",
			data: "SHA256 (x.img) = " + a + "ff\n", file: "x.img", alg: "sha256", wantErr: "66 hex digits"},
		{name: "GNU line of another algorithm is skipped",
			data: long + "  x.img\n" + a + "  x.img\n", file: "x.img", alg: "sha256", want: a},
		{name: "duplicate identical entries",
			data: a + "  x.img\n" + a + " *./x.img\n", file: "x.img", alg: "sha256", want: a},
		{name: "duplicate conflicting entries",
			data: a + "  x.img\n" + b + "  x.img\n", file: "x.img", alg: "sha256", wantErr: "different sha256 digests"},
		{name: "conflicting base-name entries",
			data: a + "  amd64/disk.img\n" + b + "  arm64/disk.img\n", file: "disk.img", alg: "sha256", wantErr: "different"},
		{name: "empty file", data: "# nothing\n", file: "x.img", alg: "sha256", wantErr: "no digest lines"},
		{name: "unknown algorithm", data: a + "  x.img\n", file: "x.img", alg: "md5", wantErr: "md5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseChecksumFile([]byte(tt.data), tt.file, tt.alg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if want := (Digest{Algorithm: strings.ToLower(tt.alg), Hex: tt.want}); got != want {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

func TestParseDigest(t *testing.T) {
	a := strings.Repeat("0f", 32)
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"sha256:" + a, "sha256:" + a, true},
		{"SHA256:" + strings.ToUpper(a), "sha256:" + a, true},
		{"sha512:" + a + a, "sha512:" + a + a, true},
		{"sha512:" + a, "", false},
		{"sha256:" + a[:62] + "zz", "", false},
		{"md5:0123456789abcdef0123456789abcdef", "", false},
		{a, "", false},
	}
	for _, tt := range tests {
		d, err := ParseDigest(tt.in)
		if (err == nil) != tt.ok || tt.ok && d.String() != tt.want {
			t.Errorf("ParseDigest(%q) = %v, %v", tt.in, d, err)
		}
	}
}

func TestFetchChecksum(t *testing.T) {
	a := strings.Repeat("ab", 32)
	sums := "SHA256 (alpine.qcow2) = " + a + "\n"
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.URL.Path {
		case "/SHA256SUMS":
			w.Write([]byte(sums))
		case "/huge":
			w.Write(make([]byte, maxChecksumFile+1))
		default:
			http.NotFound(w, r)
		}
	})
	ctx := context.Background()
	got, err := FetchChecksum(ctx, nil, ts.URL+"/SHA256SUMS", "alpine.qcow2", "sha256")
	if err != nil || got != (Digest{"sha256", a}) {
		t.Fatalf("FetchChecksum = %v, %v", got, err)
	}
	before := len(ts.requests())
	_, err = FetchChecksum(ctx, ts.Client(), ts.URL+"/missing", "alpine.qcow2", "sha256")
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != 404 {
		t.Fatalf("err = %v, want HTTP 404", err)
	}
	if n := len(ts.requests()) - before; n != 1 {
		t.Errorf("%d requests for a 404, want 1", n)
	}
	if _, err = FetchChecksum(ctx, nil, ts.URL+"/huge", "x", "sha256"); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if _, err = FetchChecksum(ctx, nil, ts.URL+"/SHA256SUMS", "other.qcow2", "sha256"); err == nil ||
		!strings.Contains(err.Error(), "other.qcow2") {
		t.Fatalf("err = %v, want one naming the missing file", err)
	}
	if _, err = FetchChecksum(ctx, nil, "ftp://127.0.0.1/SUMS", "x", "sha256"); !errors.Is(err, ErrBadURL) {
		t.Fatalf("err = %v, want ErrBadURL", err)
	}
}

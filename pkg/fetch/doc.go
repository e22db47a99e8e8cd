// Package fetch downloads files over HTTP(S) so that an interrupted
// download can be resumed and a finished one is known to be intact.
//
// Download writes into Dest+".part" and keeps what it needs to resume (URL,
// ETag, Last-Modified, expected size) in Dest+".part.json". A later attempt,
// in the same call or a later one, continues the .part with an HTTP Range
// request guarded by If-Range, so a file that changed on the server is
// fetched again from the start instead of being spliced. The digest always
// covers the whole file, resumed bytes included. Dest appears, by an atomic
// rename, only once the digest was computed and, when one was expected,
// matched; a mismatch deletes the partial data.
//
// Transient failures (a cut connection, a stalled body, a timeout, HTTP 408,
// 429, 500, 502, 503 and 504) are retried with exponential backoff; other
// HTTP errors, a digest mismatch and a download over the size limit are not.
// When no attempt could even connect, the error wraps ErrUnreachable and
// tells the user the host looks offline.
//
// ParseChecksumFile and FetchChecksum read the SHA256SUMS-style files that
// image catalogs publish, and Decompress expands a downloaded gz, xz or zst
// image with a cap on the output size, writing zero blocks as holes.
//
// Only http and https URLs are accepted. The package keeps no global state
// apart from a shared default HTTP client; concurrent downloads to different
// destinations are safe, concurrent downloads to the same Dest are not.
package fetch

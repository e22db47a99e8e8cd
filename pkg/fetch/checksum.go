package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// maxChecksumFile is the largest checksum file FetchChecksum reads.
const maxChecksumFile = 1 << 20

// bsdLine matches a BSD tag line, "SHA256 (name) = hex".
var bsdLine = regexp.MustCompile(`^([A-Za-z0-9-]+) ?\((.*)\) ?= ?([0-9A-Fa-f]+)$`)

// checksumEntry is one digest line of a checksum file.
type checksumEntry struct {
	name string // "" for a bare digest
	alg  string // "" when the line does not say (GNU lines)
	hex  string
	line int // 1-based line number
}

// ParseChecksumFile finds fileName's digest of the given algorithm ("sha256"
// or "sha512") in the text of a checksum file. It reads:
//
//   - GNU coreutils lines: the hex value, a space, then a space (text
//     mode) or "*" (binary mode) and the name. A single space or a tab is
//     accepted too, as is the backslash escaping of names holding a newline
//     or backslash. The hex length must be the algorithm's; lines of another
//     length are skipped as another algorithm's;
//   - BSD tag lines, "SHA256 (name) = <hex>"; lines tagged with another
//     algorithm are skipped;
//   - a PGP clear-signed wrapper: the armor, the armor headers and the
//     signature are skipped and "- " dash-escaping is undone. The signature
//     is NOT verified;
//   - comments (lines starting with "#"), blank lines and CRLF line ends;
//   - single-digest files: a file whose only line is one hex value of the
//     algorithm's length, taken as fileName's digest. When that line also
//     has a name, it is an ordinary GNU line and the name must match.
//
// An entry's name matches fileName exactly, or else by base name, so that
// "./name" and "dir/name" match "name" (and "name" matches "dir/name"); exact
// matches win over base-name ones. It is an error when no entry matches (the
// error names the file), when the matching entries give different digests,
// or when the only matching entries have a hex value of the wrong length.
func ParseChecksumFile(data []byte, fileName, algorithm string) (Digest, error) {
	alg := strings.ToLower(algorithm)
	want, ok := hexLen[alg]
	if !ok {
		return Digest{}, fmt.Errorf("checksum algorithm %q: want sha256 or sha512", algorithm)
	}
	entries, err := checksumEntries(data)
	if err != nil {
		return Digest{}, err
	}
	if len(entries) == 1 && entries[0].name == "" {
		if len(entries[0].hex) != want {
			return Digest{}, fmt.Errorf("checksum file: the single digest has %d hex digits, a %s digest has %d",
				len(entries[0].hex), alg, want)
		}
		return newDigest(alg, entries[0].hex)
	}

	var exact, base []checksumEntry
	var wrongLen *checksumEntry
	for i := range entries {
		e := entries[i]
		if e.name == "" || (e.alg != "" && e.alg != alg) {
			continue
		}
		isExact := e.name == fileName || path.Clean(e.name) == path.Clean(fileName)
		if !isExact && path.Base(path.Clean(e.name)) != path.Base(path.Clean(fileName)) {
			continue
		}
		if len(e.hex) != want {
			if e.alg != "" || wrongLen == nil {
				wrongLen = &entries[i]
			}
			continue
		}
		if isExact {
			exact = append(exact, e)
		} else {
			base = append(base, e)
		}
	}
	matches := exact
	if len(matches) == 0 {
		matches = base
	}
	if len(matches) == 0 {
		if wrongLen != nil {
			return Digest{}, fmt.Errorf("checksum file line %d: the entry for %q has %d hex digits, a %s digest has %d",
				wrongLen.line, fileName, len(wrongLen.hex), alg, want)
		}
		return Digest{}, fmt.Errorf("checksum file has no %s entry for %q", alg, fileName)
	}
	for _, m := range matches[1:] {
		if !strings.EqualFold(m.hex, matches[0].hex) {
			return Digest{}, fmt.Errorf("checksum file has different %s digests for %q (lines %d and %d)",
				alg, fileName, matches[0].line, m.line)
		}
	}
	return newDigest(alg, matches[0].hex)
}

// checksumEntries returns the digest lines of a checksum file, with PGP
// armor, comments and blank lines left out.
func checksumEntries(data []byte) ([]checksumEntry, error) {
	var entries []checksumEntry
	const (
		plain = iota
		armorHeaders
		signature
	)
	state := plain
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSuffix(raw, "\r")
		switch state {
		case armorHeaders:
			if strings.TrimSpace(line) == "" {
				state = plain
			}
			continue
		case signature:
			if strings.HasPrefix(line, "-----END PGP SIGNATURE-----") {
				state = plain
			}
			continue
		}
		switch {
		case strings.HasPrefix(line, "-----BEGIN PGP SIGNED MESSAGE-----"):
			state = armorHeaders
			continue
		case strings.HasPrefix(line, "-----BEGIN PGP SIGNATURE-----"):
			state = signature
			continue
		case strings.HasPrefix(line, "- "):
			line = line[2:]
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, ok := parseChecksumLine(line)
		if !ok {
			continue
		}
		e.line = i + 1
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil, errors.New("checksum file has no digest lines")
	}
	return entries, nil
}

// parseChecksumLine parses one BSD, GNU or bare-digest line.
func parseChecksumLine(line string) (checksumEntry, bool) {
	if m := bsdLine.FindStringSubmatch(line); m != nil {
		alg := strings.ToLower(strings.ReplaceAll(m[1], "-", ""))
		return checksumEntry{name: m[2], alg: alg, hex: m[3]}, true
	}
	escaped := strings.HasPrefix(line, `\`)
	if escaped {
		line = line[1:]
	}
	hx, name := line, ""
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		hx, name = line[:i], line[i+1:]
	}
	if !isHex(hx) {
		return checksumEntry{}, false
	}
	name = strings.TrimLeft(name, " \t")
	name = strings.TrimPrefix(name, "*")
	if escaped {
		name = strings.NewReplacer(`\\`, `\`, `\n`, "\n", `\r`, "\r").Replace(name)
	}
	return checksumEntry{name: name, hex: hx}, true
}

// isHex reports whether s is a non-empty string of hex digits.
func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// FetchChecksum downloads the checksum file at checksumURL (at most 1 MiB)
// and returns fileName's digest in it, as ParseChecksumFile does. client nil
// means the default client of Download. Transient failures are retried as
// Download retries them, with its default retry count and backoff; errors
// wrap ErrBadURL, ErrTooLarge, ErrUnreachable or an *HTTPError as Download's
// do.
func FetchChecksum(ctx context.Context, client *http.Client, checksumURL, fileName, algorithm string) (Digest, error) {
	u, err := parseURL(checksumURL)
	if err != nil {
		return Digest{}, err
	}
	if client == nil {
		client = defaultClient()
	}
	var data []byte
	_, err = retry(ctx, newRetryPolicy(0, 0), u.Hostname(), func(ctx context.Context) error {
		data, err = getSmall(ctx, client, u, maxChecksumFile)
		return err
	})
	if err != nil {
		return Digest{}, fmt.Errorf("fetch checksum file: %w", err)
	}
	d, err := ParseChecksumFile(data, fileName, algorithm)
	if err != nil {
		return Digest{}, fmt.Errorf("%s: %w", u.Redacted(), err)
	}
	return d, nil
}

// getSmall makes one GET of u and returns its body of at most limit bytes.
func getSmall(ctx context.Context, client *http.Client, u *url.URL, limit int64) ([]byte, error) {
	actx, wd, stop := newWatchdog(ctx, defaultIdleTimeout)
	defer stop()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, networkError(ctx, actx, "fetch "+u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &HTTPError{StatusCode: resp.StatusCode, URL: u.Redacted()}
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%s: %w: %d bytes, the limit is %d", u.Redacted(), ErrTooLarge, resp.ContentLength, limit)
	}
	var buf bytes.Buffer
	chunk := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(chunk)
		if n > 0 {
			wd.kick()
			if int64(buf.Len()+n) > limit {
				return nil, fmt.Errorf("%s: %w: more than %d bytes", u.Redacted(), ErrTooLarge, limit)
			}
			buf.Write(chunk[:n])
		}
		if rerr == io.EOF {
			return buf.Bytes(), nil
		}
		if rerr != nil {
			return nil, networkError(ctx, actx, "fetch "+u.Redacted()+": reading the body", rerr)
		}
	}
}

package fetch

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// Digest is a hash algorithm, "sha256" or "sha512", and the lower-case hex
// value of a file's hash.
type Digest struct {
	Algorithm string
	Hex       string
}

// hexLen is the hex length of each supported algorithm's value.
var hexLen = map[string]int{"sha256": 64, "sha512": 128}

// ParseDigest parses "sha256:<64 hex digits>" or "sha512:<128 hex digits>".
// The algorithm and the hex digits may be given in either case; the result
// is lower-case. Any other algorithm, a wrong length or a non-hex digit is an
// error.
func ParseDigest(s string) (Digest, error) {
	alg, hx, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Digest{}, fmt.Errorf("digest %q: want ALGORITHM:HEX, such as sha256:…", s)
	}
	return newDigest(alg, hx)
}

// newDigest validates and normalises an algorithm and hex value.
func newDigest(alg, hx string) (Digest, error) {
	alg = strings.ToLower(alg)
	n, ok := hexLen[alg]
	if !ok {
		return Digest{}, fmt.Errorf("digest algorithm %q: want sha256 or sha512", alg)
	}
	hx = strings.ToLower(hx)
	if len(hx) != n {
		return Digest{}, fmt.Errorf("%s digest %q: has %d hex digits, want %d", alg, hx, len(hx), n)
	}
	if _, err := hex.DecodeString(hx); err != nil {
		return Digest{}, fmt.Errorf("%s digest %q: not hexadecimal", alg, hx)
	}
	return Digest{Algorithm: alg, Hex: hx}, nil
}

// String returns the digest as "<algorithm>:<hex>", the form ParseDigest
// reads.
func (d Digest) String() string { return d.Algorithm + ":" + d.Hex }

// newHash returns a hash for a supported algorithm.
func newHash(alg string) hash.Hash {
	if alg == "sha512" {
		return sha512.New()
	}
	return sha256.New()
}

// sum returns h's current value as a Digest of algorithm alg.
func sum(alg string, h hash.Hash) Digest {
	return Digest{Algorithm: alg, Hex: hex.EncodeToString(h.Sum(nil))}
}

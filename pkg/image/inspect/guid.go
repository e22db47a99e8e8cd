package inspect

import (
	"encoding/hex"
	"strings"
)

// guid converts a GUID in its usual text form to the byte order Microsoft
// formats store it in: the first three fields little-endian, the rest as
// written. It panics on malformed input, so use it only on constants.
func guid(s string) [16]byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		panic("inspect: bad GUID " + s)
	}
	var g [16]byte
	g[0], g[1], g[2], g[3] = b[3], b[2], b[1], b[0]
	g[4], g[5] = b[5], b[4]
	g[6], g[7] = b[7], b[6]
	copy(g[8:], b[8:])
	return g
}

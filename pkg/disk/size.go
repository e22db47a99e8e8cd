package disk

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
)

// Binary size units.
const (
	KiB int64 = 1 << (10 * (iota + 1))
	MiB
	GiB
	TiB
)

var sizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?) *(?:([KMGT])(?:IB|B)?|B)?$`)

// maxSizeLen bounds the input to ParseSize; no valid size is longer.
const maxSizeLen = 64

// ParseSize parses a size with an optional binary unit: a plain number of
// bytes ("1073741824", "512B"), or a number followed by K, M, G or T, each
// optionally followed by "iB" or "B" ("10G", "512MiB", "1.5GB"). Units are
// case-insensitive and always binary (1K = 1024). A fractional number is
// accepted only if it yields a whole number of bytes ("1.5G" yes, "1.3K"
// no). The result is always positive and fits in an int64; anything else
// is an error wrapping ErrInvalidSize. Surrounding white space is ignored.
func ParseSize(s string) (int64, error) {
	if len(s) > maxSizeLen {
		return 0, fmt.Errorf("%w: %d characters is too long", ErrInvalidSize, len(s))
	}
	m := sizeRE.FindStringSubmatch(strings.ToUpper(strings.TrimSpace(s)))
	if m == nil {
		return 0, fmt.Errorf("%w %q: want a positive number with an optional unit K, M, G or T (binary, e.g. 10G, 512MiB, 1.5G)", ErrInvalidSize, s)
	}
	mult := map[string]int64{"": 1, "K": KiB, "M": MiB, "G": GiB, "T": TiB}[m[2]]
	n, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return 0, fmt.Errorf("%w %q: bad number", ErrInvalidSize, s)
	}
	n.Mul(n, new(big.Rat).SetInt64(mult))
	if !n.IsInt() {
		return 0, fmt.Errorf("%w %q: not a whole number of bytes", ErrInvalidSize, s)
	}
	b := n.Num()
	if !b.IsInt64() {
		return 0, fmt.Errorf("%w %q: larger than %d bytes", ErrInvalidSize, s, int64(math.MaxInt64))
	}
	v := b.Int64()
	if v <= 0 {
		return 0, fmt.Errorf("%w %q: must be greater than zero", ErrInvalidSize, s)
	}
	return v, nil
}

// FormatSize formats n in the largest binary unit that divides it evenly
// ("10G", "1536M", "1000"), so ParseSize(FormatSize(n)) == n for every n > 0.
// Zero and negative values are formatted as plain numbers.
func FormatSize(n int64) string {
	if n <= 0 {
		return strconv.FormatInt(n, 10)
	}
	for _, u := range []struct {
		size   int64
		suffix string
	}{{TiB, "T"}, {GiB, "G"}, {MiB, "M"}, {KiB, "K"}} {
		if n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// HumanSize formats n bytes for people, rounded to three significant
// digits in the largest binary unit that keeps it at least 1: "138 MiB",
// "1.40 GiB", "512 B". Unlike FormatSize it does not round-trip.
func HumanSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	switch {
	case i == 0:
		return strconv.FormatInt(n, 10) + " B"
	case f >= 100:
		return strconv.FormatFloat(f, 'f', 0, 64) + " " + units[i]
	case f >= 10:
		return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[i]
	}
	return strconv.FormatFloat(f, 'f', 2, 64) + " " + units[i]
}

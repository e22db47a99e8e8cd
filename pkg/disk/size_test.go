package disk

import (
	"errors"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"1073741824", GiB},
		{"512B", 512},
		{"1K", KiB},
		{"10G", 10 * GiB},
		{"10g", 10 * GiB},
		{"512M", 512 * MiB},
		{"512MiB", 512 * MiB},
		{"512mib", 512 * MiB},
		{"512MB", 512 * MiB},
		{"1.5G", 3 * GiB / 2},
		{"0.5K", 512},
		{"2T", 2 * TiB},
		{" 10 G ", 10 * GiB},
		{"10G\n", 10 * GiB},
		{"8388607T", 8388607 * TiB},
		{"9223372036854775807", 1<<63 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseSizeRejects(t *testing.T) {
	for _, in := range []string{
		"", "0", "0G", "0.0M", "-1", "-1G", "+1G", "G", "1.3K", "1.", ".5G", "1e9", "1/2G",
		"10P", "10X", "1IB", "10 GiBs", "8388608T", "9223372036854775808", "99999999999999999999999G",
		"1,5G", "0x10", "1\nG", "1G; rm -rf /",
	} {
		t.Run(in, func(t *testing.T) {
			got, err := ParseSize(in)
			if !errors.Is(err, ErrInvalidSize) || !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("ParseSize(%q) = %d, %v; want ErrInvalidSize", in, got, err)
			}
		})
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{10 * GiB, "10G"},
		{3 * GiB / 2, "1536M"},
		{TiB, "1T"},
		{1000, "1000"},
		{1536, "1536"},
		{0, "0"},
		{-5, "-5"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := FormatSize(tt.in); got != tt.want {
				t.Errorf("FormatSize(%d) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzSizeRoundTrip(f *testing.F) {
	for _, n := range []int64{1, 512, KiB, 3 * GiB / 2, TiB, 1<<63 - 1} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, n int64) {
		if n <= 0 {
			return
		}
		s := FormatSize(n)
		got, err := ParseSize(s)
		if err != nil || got != n {
			t.Fatalf("ParseSize(FormatSize(%d) = %q) = %d, %v", n, s, got, err)
		}
	})
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 512: "512 B", 1536: "1.50 KiB", 141016 << 10: "138 MiB",
		1503238553: "1.40 GiB", 4 << 40: "4.00 TiB", 10<<30 + 1: "10.0 GiB",
	} {
		if got := HumanSize(n); got != want {
			t.Errorf("HumanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

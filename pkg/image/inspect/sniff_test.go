package inspect

import (
	"bytes"
	"testing"
)

func TestSniff(t *testing.T) {
	at := func(off int, magic string, size int) []byte {
		b := make([]byte, size)
		copy(b[off:], magic)
		return b
	}
	vdi := make([]byte, 512)
	le.PutUint32(vdi[vdiSignatureOffset:], vdiSignature)
	mbr := make([]byte, 4096)
	mbr[510], mbr[511] = 0x55, 0xaa
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, FormatRaw},
		{"short", []byte("QF"), FormatRaw},
		{"mbr", mbr, FormatRaw},
		{"qcow2", at(0, "QFI\xfb", 4096), FormatQCOW2},
		{"qcow2 header only", []byte("QFI\xfb"), FormatQCOW2},
		{"vmdk sparse", at(0, "KDMV", 4096), FormatVMDK},
		{"vmdk cowd", at(0, "COWD", 4096), FormatVMDK},
		{"vmdk descriptor", []byte("# Disk DescriptorFile\nversion=1\n"), FormatVMDK},
		{"vhdx", at(0, "vhdxfile", 4096), FormatVHDX},
		{"vdi", vdi, FormatVDI},
		{"vhd dynamic", at(0, "conectix", 4096), FormatVPC},
		{"vhd fixed", at(4096-512, "conectix", 4096), FormatVPC},
		{"conectix not at a footer", at(100, "conectix", 4096), FormatRaw},
		{"magic not at start", at(1, "QFI\xfb", 4096), FormatRaw},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Sniff(bytes.NewReader(c.data), int64(len(c.data)))
			if err != nil || got != c.want {
				t.Errorf("Sniff() = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

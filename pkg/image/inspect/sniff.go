package inspect

import (
	"bytes"
	"io"
)

// Formats Inspect accepts, as named on qemu-img command lines.
const (
	FormatRaw   = "raw"
	FormatQCOW2 = "qcow2"
	FormatVMDK  = "vmdk"
	FormatVPC   = "vpc" // VHD
	FormatVHDX  = "vhdx"
	FormatVDI   = "vdi"
)

// Formats lists the accepted formats.
var Formats = []string{FormatRaw, FormatQCOW2, FormatVMDK, FormatVPC, FormatVHDX, FormatVDI}

// Magic numbers Sniff looks for.
var (
	qcow2Magic      = []byte("QFI\xfb")
	vmdkSparseMagic = []byte("KDMV")
	vmdkCOWDMagic   = []byte("COWD")
	vmdkDescMagic   = []byte("# Disk DescriptorFile")
	vhdxMagic       = []byte("vhdxfile")
	vhdCookie       = []byte("conectix")
)

const (
	vdiSignatureOffset = 0x40
	vdiSignature       = 0xbeda107f
	vhdFooterSize      = 512
)

// Sniff names the format the image of the given size looks like, from its
// magic numbers alone, or FormatRaw when none matches. It reads at most the
// first and the last 512 bytes and never runs qemu. VHD (vpc) is recognised
// by its "conectix" footer at offset 0 (dynamic disks) or in the last 512
// bytes (fixed disks); VMDK by the "KDMV" or "COWD" sparse magic or a text
// descriptor starting with "# Disk DescriptorFile".
//
// The answer says what the bytes look like, not what the image is: a raw
// disk may begin with anything, so Sniff's result must never decide how an
// image is opened.
func Sniff(r io.ReaderAt, size int64) (string, error) {
	head, err := readHead(r, size, 0, 512)
	if err != nil {
		return "", err
	}
	switch {
	case bytes.HasPrefix(head, qcow2Magic):
		return FormatQCOW2, nil
	case bytes.HasPrefix(head, vmdkSparseMagic), bytes.HasPrefix(head, vmdkCOWDMagic), bytes.HasPrefix(head, vmdkDescMagic):
		return FormatVMDK, nil
	case bytes.HasPrefix(head, vhdxMagic):
		return FormatVHDX, nil
	case len(head) >= vdiSignatureOffset+4 && le.Uint32(head[vdiSignatureOffset:]) == vdiSignature:
		return FormatVDI, nil
	case bytes.HasPrefix(head, vhdCookie):
		return FormatVPC, nil
	}
	if size >= vhdFooterSize {
		tail, err := readHead(r, size, size-vhdFooterSize, vhdFooterSize)
		if err != nil {
			return "", err
		}
		if bytes.HasPrefix(tail, vhdCookie) {
			return FormatVPC, nil
		}
	}
	return FormatRaw, nil
}

package inspect

import (
	"bytes"
	"context"
	"io"
	"slices"
)

// VMDK sparse ("KDMV") header layout (little-endian); see qemu's block/vmdk.c.
const (
	vmdkSector = 512

	vmdkFlagRGD       = 1 << 1
	vmdkFlagZeroGrain = 1 << 2
	vmdkCompressed    = 1 // compressAlgorithm: deflate
	vmdkGDAtEnd       = 0xffffffffffffffff
	vmdkGTEZeroed     = 1

	// qemu reads a sparse image's descriptor window at this offset,
	// whatever the header says, and takes a backing file from any
	// "parentFileNameHint" in it.
	vmdkDescWindowOffset = 0x200
	vmdkDescWindowSize   = 20 * vmdkSector
	// vmdkMaxDescriptor is as much of a descriptor as qemu reads.
	vmdkMaxDescriptor = 1<<20 - 1

	vmdkMaxGTEs        = 512
	vmdkMaxGranularity = 0x200000
	vmdkMaxL1Entries   = 32 << 20
)

// vmdkHeader is the part of a KDMV header the checks use.
type vmdkHeader struct {
	version, flags, numGTEs                  uint32
	capacity, granularity, descOff, descSize uint64
	rgdOff, gdOff, grainOff                  uint64
	compress                                 uint16
}

func parseVMDKHeader(b []byte) vmdkHeader {
	return vmdkHeader{
		version:     le.Uint32(b[4:]),
		flags:       le.Uint32(b[8:]),
		capacity:    le.Uint64(b[12:]),
		granularity: le.Uint64(b[20:]),
		descOff:     le.Uint64(b[28:]),
		descSize:    le.Uint64(b[36:]),
		numGTEs:     le.Uint32(b[44:]),
		rgdOff:      le.Uint64(b[48:]),
		gdOff:       le.Uint64(b[56:]),
		grainOff:    le.Uint64(b[64:]),
		compress:    le.Uint16(b[77:]),
	}
}

// checkVMDK accepts only a single-file sparse VMDK (monolithicSparse or
// streamOptimized). It refuses a text descriptor (its extents are other
// files), a sparse header that defers to its embedded descriptor, an
// embedded descriptor naming anything but one sparse extent with a bare
// file name, a parent (parentFileNameHint, parentCID), the legacy COWD
// format, and grain directories, grain tables or grains beyond the end of
// the file.
func checkVMDK(ctx context.Context, r io.ReaderAt, size int64, lim Limits) (facts, error) {
	var f facts
	head, err := readHead(r, size, 0, vmdkMaxDescriptor)
	if err != nil {
		return f, err
	}
	switch {
	case bytes.HasPrefix(head, vmdkCOWDMagic):
		return f, refuse(ReasonUnsupported, "legacy VMDK3 (COWD) sparse images are not supported; export the disk as monolithicSparse or streamOptimized")
	case !bytes.HasPrefix(head, vmdkSparseMagic):
		// qemu treats anything without a sparse magic as a descriptor file.
		d := parseVMDKDescriptor(head)
		if len(d.extents) == 0 {
			return f, refuse(ReasonExternalFile, "VMDK descriptor file (not a sparse VMDK); its data would be read from other files")
		}
		return f, refuse(ReasonExternalFile, "VMDK descriptor references other files: %s", quoteNames(d.extentNames()))
	case len(head) < vmdkSector:
		return f, refuse(ReasonTruncated, "VMDK sparse header is cut short")
	}
	h := parseVMDKHeader(head)

	// A hint anywhere in the window qemu reads makes it a backing file.
	if w, err := readHead(r, size, vmdkDescWindowOffset, vmdkDescWindowSize); err != nil {
		return f, err
	} else if hint, ok := descriptorValue(w, "parentFileNameHint"); ok {
		return f, refuse(ReasonBackingFile, "VMDK names a parent image (parentFileNameHint %q)", hint)
	}
	if h.descOff != 0 {
		if err := checkVMDKEmbedded(r, size, h); err != nil {
			return f, err
		}
	}
	if h.gdOff == vmdkGDAtEnd {
		// streamOptimized may keep the real header in a footer, between a
		// footer marker and an end-of-stream marker in the last 3 sectors.
		if size < 3*vmdkSector {
			return f, refuse(ReasonTruncated, "VMDK footer is missing")
		}
		ft, err := readAt(r, size, uint64(size)-3*vmdkSector, 3*vmdkSector, "VMDK footer")
		if err != nil {
			return f, err
		}
		if !bytes.HasPrefix(ft[vmdkSector:], vmdkSparseMagic) {
			return f, refuse(ReasonTruncated, "VMDK footer is missing (the file may be cut short)")
		}
		h = parseVMDKHeader(ft[vmdkSector:])
	}
	switch {
	case h.version > 3:
		return f, refuse(ReasonUnsupported, "VMDK version %d", h.version)
	case h.numGTEs == 0 || h.numGTEs > vmdkMaxGTEs:
		return f, refuse(ReasonMalformed, "VMDK grain table size %d", h.numGTEs)
	case h.granularity == 0 || h.granularity > vmdkMaxGranularity:
		return f, refuse(ReasonMalformed, "VMDK grain size %d sectors", h.granularity)
	case h.capacity > 1<<54:
		return f, tooLarge(h.capacity, lim)
	}
	if err := checkVirtualSize(h.capacity*vmdkSector, lim); err != nil {
		return f, err
	}
	if !within(size, h.grainOff*vmdkSector, 0) || h.grainOff > 1<<54 {
		return f, refuse(ReasonTruncated, "VMDK grains start at sector %d, beyond the end of the %d-byte file", h.grainOff, size)
	}
	l1Entries := ceilDiv(h.capacity, uint64(h.numGTEs)*h.granularity)
	if l1Entries > vmdkMaxL1Entries {
		return f, refuse(ReasonUnsupported, "VMDK grain directory of %d entries", l1Entries)
	}
	if h.flags&vmdkFlagRGD != 0 && (h.rgdOff > 1<<54 || !within(size, h.rgdOff*vmdkSector, l1Entries*4)) {
		return f, refuse(ReasonTruncated, "VMDK redundant grain directory lies beyond the end of the %d-byte file", size)
	}
	if h.gdOff > 1<<54 {
		return f, refuse(ReasonTruncated, "VMDK grain directory lies beyond the end of the %d-byte file", size)
	}
	gd, err := readAt(r, size, h.gdOff*vmdkSector, l1Entries*4, "VMDK grain directory")
	if err != nil {
		return f, err
	}
	return f, walkVMDK(ctx, r, size, gd, h)
}

// checkVMDKEmbedded checks a sparse VMDK's embedded descriptor.
func checkVMDKEmbedded(r io.ReaderAt, size int64, h vmdkHeader) error {
	if h.descOff > 1<<54 || h.descSize > vmdkMaxDescriptor/vmdkSector {
		return refuse(ReasonMalformed, "VMDK embedded descriptor at sector %d, %d sectors", h.descOff, h.descSize)
	}
	b, err := readAt(r, size, h.descOff*vmdkSector, h.descSize*vmdkSector, "VMDK embedded descriptor")
	if err != nil {
		return err
	}
	d := parseVMDKDescriptor(b)
	if h.capacity == 0 {
		// qemu then opens the embedded descriptor as if it were a
		// descriptor file, extents and all.
		return refuse(ReasonExternalFile, "VMDK sparse header has capacity 0 and defers to its embedded descriptor, which references: %s", quoteNames(d.extentNames()))
	}
	if hint, ok := descriptorValue(b, "parentFileNameHint"); ok {
		return refuse(ReasonBackingFile, "VMDK names a parent image (parentFileNameHint %q)", hint)
	}
	if d.parentCID != "" && d.parentCID != "ffffffff" {
		return refuse(ReasonBackingFile, "VMDK has a parent (parentCID %q)", sanitize([]byte(d.parentCID)))
	}
	if d.createType != "monolithicSparse" && d.createType != "streamOptimized" {
		return refuse(ReasonExternalFile, "VMDK embedded descriptor has createType %q; only monolithicSparse and streamOptimized are accepted", sanitize([]byte(d.createType)))
	}
	if len(d.extents) != 1 || d.extents[0].typ != "SPARSE" || !isBareName(d.extents[0].name) {
		return refuse(ReasonExternalFile, "VMDK embedded descriptor must name exactly one SPARSE extent, the file itself; it references: %s", quoteNames(d.extentNames()))
	}
	return nil
}

// walkVMDK reads every distinct grain table and refuses the image if a
// table or an allocated grain lies beyond the end of the file.
func walkVMDK(ctx context.Context, r io.ReaderAt, size int64, gd []byte, h vmdkHeader) error {
	tables := make([]uint64, 0, len(gd)/4)
	for i := 0; i < len(gd); i += 4 {
		if s := uint64(le.Uint32(gd[i:])); s != 0 {
			tables = append(tables, s)
		}
	}
	slices.Sort(tables)
	tables = slices.Compact(tables)
	grain := h.granularity * vmdkSector
	for _, s := range tables {
		if err := ctx.Err(); err != nil {
			return err
		}
		gt, err := readAt(r, size, s*vmdkSector, uint64(h.numGTEs)*4, "VMDK grain table")
		if err != nil {
			return err
		}
		for i := 0; i < len(gt); i += 4 {
			g := uint64(le.Uint32(gt[i:]))
			switch {
			case g == 0, g == vmdkGTEZeroed && h.flags&vmdkFlagZeroGrain != 0:
				continue
			case h.compress == vmdkCompressed:
				// A compressed grain's length is in its marker; its start
				// must at least be inside the file.
				if !within(size, g*vmdkSector, 1) {
					return refuse(ReasonTruncated, "VMDK grain at sector %d lies beyond the end of the %d-byte file", g, size)
				}
			case !within(size, g*vmdkSector, grain):
				return refuse(ReasonTruncated, "VMDK grain at sector %d lies beyond the end of the %d-byte file", g, size)
			}
		}
	}
	return nil
}

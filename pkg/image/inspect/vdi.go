package inspect

import (
	"context"
	"io"
)

// VDI header layout (little-endian); see qemu's block/vdi.c.
const (
	vdiHeaderSize  = 512
	vdiVersion11   = 0x00010001
	vdiTypeDynamic = 1
	vdiTypeStatic  = 2
	vdiTypeDiff    = 4

	vdiOffImageType   = 0x4c
	vdiOffBmap        = 0x154
	vdiOffData        = 0x158
	vdiOffSectorSize  = 0x168
	vdiOffDiskSize    = 0x170
	vdiOffBlockSize   = 0x178
	vdiOffBlocks      = 0x180
	vdiOffUUIDLink    = 0x1a8
	vdiOffUUIDParent  = 0x1b8
	vdiUUIDSize       = 16
	vdiFirstUnmapped  = 0xfffffffe // 0xfffffffe discarded, 0xffffffff unallocated
	vdiMaxBlockSize   = 1 << 30
	vdiBmapCheckEvery = 1 << 16
)

// checkVDI refuses a VDI that is a differencing image or links to a
// parent, is neither dynamic nor static, declares too large a size, or
// whose block map or allocated blocks lie beyond the end of the file.
func checkVDI(ctx context.Context, r io.ReaderAt, size int64, lim Limits) (facts, error) {
	var f facts
	h, err := readAt(r, size, 0, vdiHeaderSize, "VDI header")
	if err != nil {
		return f, err
	}
	if le.Uint32(h[vdiSignatureOffset:]) != vdiSignature {
		return f, refuse(ReasonFormat, "no VDI signature")
	}
	if v := le.Uint32(h[vdiSignatureOffset+4:]); v != vdiVersion11 {
		return f, refuse(ReasonUnsupported, "VDI version %#x", v)
	}
	switch t := le.Uint32(h[vdiOffImageType:]); t {
	case vdiTypeDynamic, vdiTypeStatic:
	case vdiTypeDiff:
		return f, refuse(ReasonBackingFile, "VDI is a differencing image (its data depends on a parent image)")
	default:
		return f, refuse(ReasonUnsupported, "VDI image type %d", t)
	}
	if !isZero(h[vdiOffUUIDParent : vdiOffUUIDParent+vdiUUIDSize]) {
		return f, refuse(ReasonBackingFile, "VDI names a parent image (parent UUID is set)")
	}
	if !isZero(h[vdiOffUUIDLink : vdiOffUUIDLink+vdiUUIDSize]) {
		return f, refuse(ReasonBackingFile, "VDI links to a parent image (link UUID is set)")
	}
	virtual := le.Uint64(h[vdiOffDiskSize:])
	if err := checkVirtualSize(virtual, lim); err != nil {
		return f, err
	}
	if s := le.Uint32(h[vdiOffSectorSize:]); s != 512 {
		return f, refuse(ReasonMalformed, "VDI sector size %d", s)
	}
	blockSize := uint64(le.Uint32(h[vdiOffBlockSize:]))
	blocks := uint64(le.Uint32(h[vdiOffBlocks:]))
	if blockSize == 0 || blockSize > vdiMaxBlockSize || blocks*blockSize < virtual {
		return f, refuse(ReasonMalformed, "VDI has %d blocks of %d bytes for a %d-byte disk", blocks, blockSize, virtual)
	}
	dataOff := uint64(le.Uint32(h[vdiOffData:]))
	bmap, err := readAt(r, size, uint64(le.Uint32(h[vdiOffBmap:])), blocks*4, "VDI block map")
	if err != nil {
		return f, err
	}
	for i := uint64(0); i < blocks; i++ {
		if i%vdiBmapCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return f, err
			}
		}
		b := uint64(le.Uint32(bmap[i*4:]))
		if b >= vdiFirstUnmapped {
			continue
		}
		if b >= blocks {
			return f, refuse(ReasonMalformed, "VDI block %d maps to block %d of %d", i, b, blocks)
		}
		if !within(size, dataOff+b*blockSize, blockSize) {
			return f, refuse(ReasonTruncated, "VDI block %d at offset %d lies beyond the end of the %d-byte file", i, dataOff+b*blockSize, size)
		}
	}
	return f, nil
}

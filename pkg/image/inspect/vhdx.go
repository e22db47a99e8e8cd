package inspect

import (
	"bytes"
	"context"
	"hash/crc32"
	"io"
)

// VHDX layout (little-endian); see Microsoft's [MS-VHDX] specification and
// qemu's block/vhdx.h. qemu reads the region table at 192 KiB only.
const (
	vhdxRegionTableOffset = 192 << 10
	vhdxTableSize         = 64 << 10
	vhdxMaxEntries        = 2047
	vhdxEntrySize         = 32

	vhdxFlagHasParent = 1 << 1

	vhdxBlockFullyPresent     = 6
	vhdxBlockPartiallyPresent = 7
	vhdxBATStateMask          = 7
	vhdxBATOffsetShift        = 20

	vhdxMinBlockSize = 1 << 20
	vhdxMaxBlockSize = 256 << 20
)

// VHDX region and metadata item GUIDs, in their on-disk byte order.
var (
	vhdxRegionBAT      = guid("2DC27766-F623-4200-9D64-115E9BFD4A08")
	vhdxRegionMetadata = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")

	vhdxFileParameters    = guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	vhdxVirtualDiskSize   = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	vhdxLogicalSectorSize = guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	vhdxParentLocator     = guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// vhdxRegion is a region table entry.
type vhdxRegion struct {
	off, length uint64
}

// checkVHDX refuses a VHDX whose region or metadata tables cannot be
// parsed, that has a parent (the File Parameters HasParent bit or a parent
// locator item), declares too large a size, or whose allocated payload
// blocks lie beyond the end of the file.
func checkVHDX(ctx context.Context, r io.ReaderAt, size int64, lim Limits) (facts, error) {
	var f facts
	id, err := readAt(r, size, 0, uint64(len(vhdxMagic)), "VHDX file identifier")
	if err != nil {
		return f, err
	}
	if !bytes.Equal(id, vhdxMagic) {
		return f, refuse(ReasonFormat, "no VHDX file identifier")
	}
	bat, meta, err := vhdxRegions(r, size)
	if err != nil {
		return f, err
	}
	p, err := vhdxMetadata(r, size, meta)
	if err != nil {
		return f, err
	}
	if err := checkVirtualSize(p.virtualSize, lim); err != nil {
		return f, err
	}
	return f, walkVHDX(ctx, r, size, bat, p)
}

// vhdxRegions parses the region table and returns the BAT and metadata
// regions, both checked to lie inside the file.
func vhdxRegions(r io.ReaderAt, size int64) (bat, meta vhdxRegion, err error) {
	t, err := readAt(r, size, vhdxRegionTableOffset, vhdxTableSize, "VHDX region table")
	if err != nil {
		return bat, meta, err
	}
	if string(t[:4]) != "regi" {
		return bat, meta, refuse(ReasonMalformed, "VHDX region table has no signature")
	}
	if !vhdxChecksumOK(t) {
		return bat, meta, refuse(ReasonMalformed, "VHDX region table has a bad checksum")
	}
	n := le.Uint32(t[8:])
	if n > vhdxMaxEntries {
		return bat, meta, refuse(ReasonMalformed, "VHDX region table has %d entries", n)
	}
	var haveBAT, haveMeta bool
	for i := range n {
		e := t[16+i*vhdxEntrySize:]
		reg := vhdxRegion{off: le.Uint64(e[16:]), length: uint64(le.Uint32(e[24:]))}
		required := le.Uint32(e[28:])&1 != 0
		switch {
		case bytes.Equal(e[:16], vhdxRegionBAT[:]):
			bat, haveBAT = reg, true
		case bytes.Equal(e[:16], vhdxRegionMetadata[:]):
			meta, haveMeta = reg, true
		case required:
			return bat, meta, refuse(ReasonUnsupported, "VHDX has an unknown required region")
		default:
			continue
		}
		if !within(size, reg.off, reg.length) {
			return bat, meta, refuse(ReasonTruncated, "VHDX region at offset %d (%d bytes) lies beyond the end of the %d-byte file", reg.off, reg.length, size)
		}
	}
	if !haveBAT || !haveMeta {
		return bat, meta, refuse(ReasonMalformed, "VHDX region table lacks the BAT or metadata region")
	}
	return bat, meta, nil
}

// vhdxChecksumOK verifies a table's CRC-32C, computed with its checksum
// field (bytes 4-7) zeroed.
func vhdxChecksumOK(t []byte) bool {
	c := make([]byte, len(t))
	copy(c, t)
	clear(c[4:8])
	return crc32.Checksum(c, castagnoli) == le.Uint32(t[4:])
}

// vhdxParams are the metadata items the checks use.
type vhdxParams struct {
	blockSize, logicalSector uint64
	virtualSize              uint64
}

// vhdxMetadata parses the metadata table and refuses a disk with a parent.
func vhdxMetadata(r io.ReaderAt, size int64, meta vhdxRegion) (vhdxParams, error) {
	var p vhdxParams
	if meta.length < vhdxTableSize {
		return p, refuse(ReasonMalformed, "VHDX metadata region of %d bytes is too small", meta.length)
	}
	region, err := readAt(r, size, meta.off, meta.length, "VHDX metadata region")
	if err != nil {
		return p, err
	}
	if string(region[:8]) != "metadata" {
		return p, refuse(ReasonMalformed, "VHDX metadata table has no signature")
	}
	n := uint32(le.Uint16(region[10:]))
	if n > vhdxMaxEntries {
		return p, refuse(ReasonMalformed, "VHDX metadata table has %d entries", n)
	}
	var flags uint32
	var haveParams, haveSize, haveSector bool
	for i := range n {
		e := region[32+i*vhdxEntrySize:]
		off, length := uint64(le.Uint32(e[16:])), uint64(le.Uint32(e[20:]))
		if !within(int64(meta.length), off, length) {
			return p, refuse(ReasonMalformed, "VHDX metadata item at offset %d overruns its region", off)
		}
		item := region[off : off+length]
		switch {
		case bytes.Equal(e[:16], vhdxParentLocator[:]):
			return p, refuse(ReasonBackingFile, "VHDX is a differencing disk (it has a parent locator)")
		case bytes.Equal(e[:16], vhdxFileParameters[:]) && length >= 8:
			p.blockSize, flags, haveParams = uint64(le.Uint32(item)), le.Uint32(item[4:]), true
		case bytes.Equal(e[:16], vhdxVirtualDiskSize[:]) && length >= 8:
			p.virtualSize, haveSize = le.Uint64(item), true
		case bytes.Equal(e[:16], vhdxLogicalSectorSize[:]) && length >= 4:
			p.logicalSector, haveSector = uint64(le.Uint32(item)), true
		}
	}
	switch {
	case !haveParams || !haveSize || !haveSector:
		return p, refuse(ReasonMalformed, "VHDX metadata lacks file parameters, virtual disk size or logical sector size")
	case flags&vhdxFlagHasParent != 0:
		return p, refuse(ReasonBackingFile, "VHDX is a differencing disk (HasParent is set)")
	case p.blockSize < vhdxMinBlockSize || p.blockSize > vhdxMaxBlockSize || p.blockSize&(p.blockSize-1) != 0:
		return p, refuse(ReasonMalformed, "VHDX block size %d", p.blockSize)
	case p.logicalSector != 512 && p.logicalSector != 4096:
		return p, refuse(ReasonMalformed, "VHDX logical sector size %d", p.logicalSector)
	}
	return p, nil
}

// walkVHDX refuses the image if an allocated payload block lies beyond the
// end of the file. Every chunk of payload entries is followed by one sector
// bitmap entry, which is skipped.
func walkVHDX(ctx context.Context, r io.ReaderAt, size int64, bat vhdxRegion, p vhdxParams) error {
	chunkRatio := (uint64(1) << 23) * p.logicalSector / p.blockSize
	payload := ceilDiv(p.virtualSize, p.blockSize)
	entries := payload + (payload-1)/chunkRatio
	if entries*8 > bat.length {
		return refuse(ReasonMalformed, "VHDX BAT region of %d bytes cannot hold %d entries", bat.length, entries)
	}
	t, err := readAt(r, size, bat.off, entries*8, "VHDX BAT")
	if err != nil {
		return err
	}
	for i := uint64(0); i < entries; i++ {
		if i%(1<<16) == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if (i+1)%(chunkRatio+1) == 0 {
			continue
		}
		e := le.Uint64(t[i*8:])
		switch e & vhdxBATStateMask {
		case vhdxBlockFullyPresent, vhdxBlockPartiallyPresent:
			off := e >> vhdxBATOffsetShift << vhdxBATOffsetShift
			if !within(size, off, p.blockSize) {
				return refuse(ReasonTruncated, "VHDX payload block %d at offset %d lies beyond the end of the %d-byte file", i, off, size)
			}
		}
	}
	return nil
}

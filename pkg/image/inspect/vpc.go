package inspect

import (
	"bytes"
	"context"
	"io"
)

// VHD footer and dynamic header layout (big-endian); see Microsoft's
// "Virtual Hard Disk Image Format Specification" and qemu's block/vpc.c.
const (
	vhdTypeFixed        = 2
	vhdTypeDynamic      = 3
	vhdTypeDifferencing = 4

	vhdDynHeaderSize   = 1024
	vhdUnallocated     = 0xffffffff
	vhdParentLocators  = 8
	vhdLocatorOffset   = 576
	vhdLocatorSize     = 24
	vhdParentIDOffset  = 40
	vhdParentIDSize    = 16
	vhdCookieDynHeader = "cxsparse"
)

// vhdFooter is the part of a VHD footer the checks use.
type vhdFooter struct {
	dataOffset, currentSize uint64
	chsSize                 uint64
	diskType                uint32
}

// parseVHDFooter validates a footer's cookie and checksum.
func parseVHDFooter(b []byte, where string) (vhdFooter, error) {
	if !bytes.HasPrefix(b, vhdCookie) {
		return vhdFooter{}, refuse(ReasonFormat, "no VHD footer %s", where)
	}
	var sum uint32
	for i, c := range b[:vhdFooterSize] {
		if i < 64 || i >= 68 {
			sum += uint32(c)
		}
	}
	if ^sum != be.Uint32(b[64:]) {
		return vhdFooter{}, refuse(ReasonMalformed, "VHD footer %s has a bad checksum", where)
	}
	cyls, heads, secs := uint64(be.Uint16(b[56:])), uint64(b[58]), uint64(b[59])
	return vhdFooter{
		dataOffset:  be.Uint64(b[16:]),
		currentSize: be.Uint64(b[48:]),
		chsSize:     cyls * heads * secs * 512,
		diskType:    be.Uint32(b[60:]),
	}, nil
}

// checkVPC refuses a VHD that is a differencing disk or names a parent,
// is neither fixed nor dynamic, declares too large a size, or whose block
// allocation table or blocks lie beyond the end of the file. qemu uses the
// footer copy at offset 0 when there is one (dynamic disks) and the last
// 512 bytes otherwise (fixed disks); every copy present is checked.
func checkVPC(ctx context.Context, r io.ReaderAt, size int64, lim Limits) (facts, error) {
	var f facts
	if size < vhdFooterSize {
		return f, refuse(ReasonFormat, "too short for a VHD")
	}
	head, err := readAt(r, size, 0, vhdFooterSize, "VHD header")
	if err != nil {
		return f, err
	}
	tail, err := readAt(r, size, uint64(size)-vhdFooterSize, vhdFooterSize, "VHD footer")
	if err != nil {
		return f, err
	}
	var footers []vhdFooter
	for _, c := range []struct {
		b     []byte
		where string
	}{{head, "at offset 0"}, {tail, "at the end"}} {
		if !bytes.HasPrefix(c.b, vhdCookie) {
			continue
		}
		ft, err := parseVHDFooter(c.b, c.where)
		if err != nil {
			return f, err
		}
		if ft.diskType == vhdTypeDifferencing {
			return f, refuse(ReasonBackingFile, "VHD is a differencing disk (its data depends on a parent image)")
		}
		footers = append(footers, ft)
	}
	if len(footers) == 0 {
		return f, refuse(ReasonFormat, "no VHD footer")
	}
	ft := footers[0]
	virtual := max(ft.currentSize, ft.chsSize)
	if err := checkVirtualSize(virtual, lim); err != nil {
		return f, err
	}
	switch ft.diskType {
	case vhdTypeFixed:
		// checkVirtualSize bounded currentSize, so this cannot overflow.
		if !within(size, 0, ft.currentSize+vhdFooterSize) {
			return f, refuse(ReasonTruncated, "fixed VHD of %s does not fit in the %d-byte file", humanSize(int64(ft.currentSize)), size)
		}
		return f, nil
	case vhdTypeDynamic:
		return f, checkVHDDynamic(ctx, r, size, ft)
	default:
		return f, refuse(ReasonUnsupported, "VHD disk type %d", ft.diskType)
	}
}

// checkVHDDynamic checks a dynamic VHD's header, that it names no parent,
// and that its allocation table and allocated blocks lie inside the file.
func checkVHDDynamic(ctx context.Context, r io.ReaderAt, size int64, ft vhdFooter) error {
	dh, err := readAt(r, size, ft.dataOffset, vhdDynHeaderSize, "VHD dynamic disk header")
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(dh, []byte(vhdCookieDynHeader)) {
		return refuse(ReasonMalformed, "VHD dynamic disk header has no %q cookie", vhdCookieDynHeader)
	}
	if !isZero(dh[vhdParentIDOffset : vhdParentIDOffset+vhdParentIDSize]) {
		return refuse(ReasonBackingFile, "VHD names a parent disk (parent unique id is set)")
	}
	for i := range vhdParentLocators {
		off := vhdLocatorOffset + i*vhdLocatorSize
		if code := be.Uint32(dh[off:]); code != 0 {
			return refuse(ReasonBackingFile, "VHD has a parent locator (platform code %#x)", code)
		}
	}
	batOff := be.Uint64(dh[16:])
	entries := uint64(be.Uint32(dh[28:]))
	blockSize := uint64(be.Uint32(dh[32:]))
	if blockSize < 512 || blockSize > 1<<31 || blockSize&(blockSize-1) != 0 {
		return refuse(ReasonMalformed, "VHD block size %d", blockSize)
	}
	if entries*blockSize < ft.currentSize && entries*blockSize < ft.chsSize {
		return refuse(ReasonMalformed, "VHD allocation table of %d blocks does not cover the disk", entries)
	}
	bat, err := readAt(r, size, batOff, entries*4, "VHD block allocation table")
	if err != nil {
		return err
	}
	// Each block is preceded by its sector bitmap, padded to a sector.
	span := (blockSize/(8*512)+511)&^511 + blockSize
	for i := 0; i < len(bat); i += 4 {
		if i%(1<<16) == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		s := uint64(be.Uint32(bat[i:]))
		if s == vhdUnallocated {
			continue
		}
		if !within(size, s*512, span) {
			return refuse(ReasonTruncated, "VHD block %d at offset %d lies beyond the end of the %d-byte file", i/4, s*512, size)
		}
	}
	return nil
}

package inspect

import (
	"context"
	"io"
	"slices"
)

// qcow2 header layout (big-endian); see qemu's docs/interop/qcow2.txt.
const (
	qcow2V2HeaderLen = 72
	qcow2V3HeaderLen = 104

	qcow2IncompatDirty      = 1 << 0
	qcow2IncompatCorrupt    = 1 << 1
	qcow2IncompatDataFile   = 1 << 2
	qcow2IncompatCompress   = 1 << 3
	qcow2IncompatExtendedL2 = 1 << 4
	qcow2IncompatKnown      = 1<<5 - 1

	qcow2ExtEnd      = 0
	qcow2ExtDataFile = 0x44415441

	qcow2MinClusterBits = 9
	qcow2MaxClusterBits = 21
	// qcow2MaxL1Bytes is qemu's QCOW_MAX_L1_SIZE.
	qcow2MaxL1Bytes = 32 << 20
	// qcow2MaxBackingName is the longest backing file name qemu accepts.
	qcow2MaxBackingName = 1023

	qcow2OffsetMask     = 0x00fffffffffffe00
	qcow2FlagCompressed = 1 << 62
)

// checkQCOW2 refuses a qcow2 image that has a backing file or an external
// data file, uses unknown incompatible features, is encrypted or marked
// corrupt, declares too large a virtual size, or whose L1 table, refcount
// table, L2 tables or data clusters lie beyond the end of the file.
func checkQCOW2(ctx context.Context, r io.ReaderAt, size int64, lim Limits) (facts, error) {
	var f facts
	h, err := readAt(r, size, 0, qcow2V2HeaderLen, "qcow2 header")
	if err != nil {
		return f, err
	}
	if string(h[:4]) != string(qcow2Magic) {
		return f, refuse(ReasonFormat, "no qcow2 magic")
	}
	version := be.Uint32(h[4:])
	if version != 2 && version != 3 {
		return f, refuse(ReasonUnsupported, "qcow2 version %d", version)
	}
	if off := be.Uint64(h[8:]); off != 0 {
		n := min(uint64(be.Uint32(h[16:])), qcow2MaxBackingName)
		name := "unreadable"
		if b, err := readAt(r, size, off, n, "qcow2 backing file name"); err == nil {
			name = sanitize(b)
		}
		return f, refuse(ReasonBackingFile, "has a backing file (%q)", name)
	}
	clusterBits := be.Uint32(h[20:])
	if clusterBits < qcow2MinClusterBits || clusterBits > qcow2MaxClusterBits {
		return f, refuse(ReasonMalformed, "qcow2 cluster bits %d out of range", clusterBits)
	}
	clusterSize := uint64(1) << clusterBits
	virtual := be.Uint64(h[24:])

	headerLen := uint64(qcow2V2HeaderLen)
	var incompat uint64
	if version == 3 {
		h3, err := readAt(r, size, 0, qcow2V3HeaderLen, "qcow2 v3 header")
		if err != nil {
			return f, err
		}
		incompat = be.Uint64(h3[72:])
		headerLen = uint64(be.Uint32(h3[100:]))
		if headerLen < qcow2V3HeaderLen || headerLen > clusterSize {
			return f, refuse(ReasonMalformed, "qcow2 header length %d", headerLen)
		}
	}
	dataFile, err := qcow2DataFileName(r, size, headerLen, clusterSize)
	if err != nil {
		return f, err
	}
	switch {
	case incompat&qcow2IncompatDataFile != 0 || dataFile != "":
		return f, refuse(ReasonDataFile, "has an external data file (%q)", dataFile)
	case incompat&qcow2IncompatCorrupt != 0:
		return f, refuse(ReasonMalformed, "qcow2 image is marked corrupt")
	case incompat&^qcow2IncompatKnown != 0:
		return f, refuse(ReasonUnsupported, "qcow2 image uses unknown incompatible features %#x", incompat&^qcow2IncompatKnown)
	case be.Uint32(h[32:]) != 0:
		return f, refuse(ReasonUnsupported, "qcow2 image is encrypted")
	}
	if err := checkVirtualSize(virtual, lim); err != nil {
		return f, err
	}
	if incompat&qcow2IncompatDirty != 0 {
		f.warnings = append(f.warnings, "qcow2 dirty bit is set (the image was not closed cleanly); its refcounts may be stale but its data is read as mapped")
	}

	entrySize := uint64(8)
	if incompat&qcow2IncompatExtendedL2 != 0 {
		entrySize = 16
	}
	l2Entries := clusterSize / entrySize
	needL1 := ceilDiv(virtual, clusterSize*l2Entries)
	l1Size := uint64(be.Uint32(h[36:]))
	l1Off := be.Uint64(h[40:])
	switch {
	case l1Size < needL1:
		return f, refuse(ReasonMalformed, "qcow2 L1 table has %d entries, the virtual size needs %d", l1Size, needL1)
	case needL1*8 > qcow2MaxL1Bytes:
		return f, refuse(ReasonUnsupported, "qcow2 L1 table of %d entries exceeds qemu's maximum", needL1)
	case l1Off%clusterSize != 0:
		return f, refuse(ReasonMalformed, "qcow2 L1 table offset %d is not cluster aligned", l1Off)
	}
	rtOff := be.Uint64(h[48:])
	rtClusters := uint64(be.Uint32(h[56:]))
	if rtOff%clusterSize != 0 {
		return f, refuse(ReasonMalformed, "qcow2 refcount table offset %d is not cluster aligned", rtOff)
	}
	if !within(size, rtOff, rtClusters*clusterSize) {
		return f, refuse(ReasonTruncated, "qcow2 refcount table (%d clusters at offset %d) lies beyond the end of the %d-byte file", rtClusters, rtOff, size)
	}
	if nSnap := be.Uint32(h[60:]); nSnap > 0 {
		if off := be.Uint64(h[64:]); !within(size, off, 1) {
			return f, refuse(ReasonTruncated, "qcow2 snapshot table at offset %d lies beyond the end of the %d-byte file", off, size)
		}
	}
	if !within(size, l1Off, l1Size*8) {
		return f, refuse(ReasonTruncated, "qcow2 L1 table (%d entries at offset %d) lies beyond the end of the %d-byte file", l1Size, l1Off, size)
	}
	// Entries past the virtual size map nothing a guest can read.
	l1, err := readAt(r, size, l1Off, needL1*8, "qcow2 L1 table")
	if err != nil {
		return f, err
	}
	return f, walkQCOW2(ctx, r, size, l1, clusterBits, entrySize)
}

// qcow2DataFileName returns the name in the external data file header
// extension, "" if there is none. Extensions follow the header inside the
// first cluster.
func qcow2DataFileName(r io.ReaderAt, size int64, off, clusterSize uint64) (string, error) {
	for off+8 <= clusterSize {
		h, err := readAt(r, size, off, 8, "qcow2 header extension")
		if err != nil {
			return "", err
		}
		typ, n := be.Uint32(h), uint64(be.Uint32(h[4:]))
		if typ == qcow2ExtEnd {
			return "", nil
		}
		if off+8+n > clusterSize {
			return "", refuse(ReasonMalformed, "qcow2 header extension %#x overruns the first cluster", typ)
		}
		if typ == qcow2ExtDataFile {
			b, err := readAt(r, size, off+8, n, "qcow2 data file name")
			if err != nil {
				return "", err
			}
			if name := sanitize(b); name != "" {
				return name, nil
			}
			return "(empty name)", nil
		}
		off += 8 + (n+7)/8*8
	}
	return "", nil
}

// walkQCOW2 reads every distinct L2 table the L1 entries point to and
// refuses the image if a table, or the start of a data cluster, lies beyond
// the end of the file: a copy cut short would otherwise read as zeros. At
// most the one cluster the cut went through can go unnoticed. Each distinct
// table is read once, so the work is bounded by the file size.
func walkQCOW2(ctx context.Context, r io.ReaderAt, size int64, l1 []byte, clusterBits uint32, entrySize uint64) error {
	clusterSize := uint64(1) << clusterBits
	tables := make([]uint64, 0, len(l1)/8)
	for i := 0; i < len(l1); i += 8 {
		off := be.Uint64(l1[i:]) & qcow2OffsetMask
		if off == 0 {
			continue
		}
		if off%clusterSize != 0 {
			return refuse(ReasonMalformed, "qcow2 L2 table offset %d is not cluster aligned", off)
		}
		tables = append(tables, off)
	}
	slices.Sort(tables)
	tables = slices.Compact(tables)

	compressedShift := 62 - (clusterBits - 8)
	compressedMask := uint64(1)<<compressedShift - 1
	for _, off := range tables {
		if err := ctx.Err(); err != nil {
			return err
		}
		l2, err := readAt(r, size, off, clusterSize, "qcow2 L2 table")
		if err != nil {
			return err
		}
		for i := uint64(0); i < clusterSize; i += entrySize {
			e := be.Uint64(l2[i:])
			if e&qcow2FlagCompressed != 0 {
				if c := e & compressedMask; !within(size, c, 1) {
					return refuse(ReasonTruncated, "qcow2 compressed cluster at offset %d lies beyond the end of the %d-byte file", c, size)
				}
				continue
			}
			c := e & qcow2OffsetMask
			if c == 0 {
				continue
			}
			if c%clusterSize != 0 {
				return refuse(ReasonMalformed, "qcow2 data cluster offset %d is not cluster aligned", c)
			}
			// Only the start is checked: qemu leaves the file's last
			// cluster short when it writes part of it (subclusters).
			if !within(size, c, 1) {
				return refuse(ReasonTruncated, "qcow2 data cluster at offset %d lies beyond the end of the %d-byte file", c, size)
			}
		}
	}
	return nil
}

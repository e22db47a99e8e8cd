package preflight

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
)

const sectorSize = 512

// Partition table types in Report.PartitionTable.
const (
	tableGPT  = "gpt"
	tableMBR  = "mbr"
	tableNone = "none"
)

// partition is one partition of the image, or the whole disk (Index 0).
type partition struct {
	Index int    // Linux numbering: 1-based, MBR logical partitions from 5; 0 = whole disk
	Start int64  // bytes from the start of the image
	Size  int64  // bytes
	Type  string // MBR type ("0x83") or GPT type GUID; "" for the whole disk
	FS    string // what probeFS found in it
	// Beyond is true when the table puts (part of) the partition past the
	// end of the image: the image is truncated.
	Beyond bool
}

// layout is the image's partitioning.
type layout struct {
	Table    string // tableGPT, tableMBR or tableNone
	Size     int64  // image size in bytes
	Parts    []partition
	ESP      bool // an EFI system partition exists
	BIOSBoot bool // a GPT BIOS boot partition exists
	BootCode bool // sector 0 holds boot code (a BIOS boot loader)
}

// firmware infers how the disk boots: "bios", "uefi" or "".
func (l *layout) firmware() string {
	switch {
	case l.BIOSBoot, l.Table == tableMBR && l.BootCode:
		return "bios"
	case l.ESP:
		return "uefi"
	case l.BootCode:
		return "bios"
	}
	return ""
}

// readLayout reads the partition table of the raw image at path: GPT, then
// a filesystem on the whole disk, then MBR (with its extended partitions).
// An image with none of these gets Table tableNone and no partitions. The
// error is for images that cannot be read or whose table is malformed in a
// way that would make parsing it unsafe.
func readLayout(path string) (*layout, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open image: %w", err)
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat image: %w", err)
	}
	l := &layout{Table: tableNone, Size: st.Size()}
	head := make([]byte, 2*sectorSize)
	if _, err := f.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read image: %w", err)
	}
	l.BootCode = !allZero(head[:440])

	if ok, err := readGPT(f, l); err != nil {
		return nil, err
	} else if ok {
		for i := range l.Parts {
			l.Parts[i].FS = probeFS(f, l.Parts[i].Start, l.Parts[i].Size)
		}
		return l, nil
	}
	if fs := probeFS(f, 0, l.Size); fs != "" {
		l.Parts = []partition{{Index: 0, Start: 0, Size: l.Size, FS: fs}}
		l.BootCode = false
		return l, nil
	}
	if err := readMBR(f, l); err != nil {
		return nil, err
	}
	for i := range l.Parts {
		l.Parts[i].FS = probeFS(f, l.Parts[i].Start, l.Parts[i].Size)
	}
	return l, nil
}

// maxGPTEntries and maxGPTEntrySize bound what a GPT header may claim
// before go-diskfs allocates and walks the entry array.
const (
	maxGPTEntries   = 4096
	maxGPTEntrySize = 4096
)

// readGPT fills l from a GPT and reports whether there was one.
func readGPT(f *os.File, l *layout) (found bool, err error) {
	primary := make([]byte, sectorSize)
	if _, err := f.ReadAt(primary, sectorSize); err != nil && err != io.EOF {
		return false, fmt.Errorf("read GPT header: %w", err)
	}
	backup := make([]byte, sectorSize)
	if l.Size >= 2*sectorSize {
		if _, err := f.ReadAt(backup, l.Size/sectorSize*sectorSize-sectorSize); err != nil && err != io.EOF {
			return false, fmt.Errorf("read backup GPT header: %w", err)
		}
	}
	if !bytes.HasPrefix(primary, []byte("EFI PART")) && !bytes.HasPrefix(backup, []byte("EFI PART")) {
		return false, nil
	}
	for _, h := range [][]byte{primary, backup} {
		if !bytes.HasPrefix(h, []byte("EFI PART")) {
			continue
		}
		count := binary.LittleEndian.Uint32(h[80:84])
		size := binary.LittleEndian.Uint32(h[84:88])
		if count > maxGPTEntries || size < 128 || size > maxGPTEntrySize || size%8 != 0 {
			return false, fmt.Errorf("GPT header claims %d entries of %d bytes: not a sane partition table", count, size)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			found, err = false, fmt.Errorf("malformed GPT: %v", r)
		}
	}()
	table, err := gpt.Read(file.New(f, true), sectorSize, sectorSize)
	if err != nil {
		// A GPT signature with a table that does not check out: fall
		// back to MBR, which a hybrid or stale layout may still have.
		return false, nil
	}
	l.Table = tableGPT
	for _, p := range table.Partitions {
		if p == nil || p.Type == gpt.Unused {
			continue
		}
		typ := strings.ToUpper(string(p.Type))
		switch gpt.Type(typ) {
		case gpt.EFISystemPartition:
			l.ESP = true
		case gpt.BIOSBoot:
			l.BIOSBoot = true
		}
		l.addPart(p.Index, sectorsToBytes(p.Start), int64(p.Size), typ)
	}
	return true, nil
}

// MBR partition types that matter here.
const (
	mbrExtendedCHS = 0x05
	mbrExtendedLBA = 0x0f
	mbrLinuxExt    = 0x85
	mbrEFI         = 0xef
	mbrProtective  = 0xee
	maxLogical     = 128
)

// readMBR fills l from an MBR, walking the chain of extended boot records
// for logical partitions (numbered from 5).
func readMBR(f *os.File, l *layout) error {
	table, err := mbr.Read(file.New(f, true), sectorSize, sectorSize)
	if err != nil {
		return nil // no MBR signature or a bad entry: not a partition table
	}
	var parts []partition
	var extended []*mbr.Partition
	for _, p := range table.Partitions {
		if p == nil || p.Type == mbr.Empty || p.Size == 0 {
			continue
		}
		switch p.Type {
		case mbrExtendedCHS, mbrExtendedLBA, mbrLinuxExt:
			extended = append(extended, p)
			continue
		case mbrEFI:
			l.ESP = true
		}
		parts = append(parts, partition{Index: p.Index, Start: int64(p.Start) * sectorSize, Size: int64(p.Size) * sectorSize, Type: fmt.Sprintf("0x%02x", byte(p.Type))})
	}
	if len(parts) == 0 && len(extended) == 0 {
		return nil
	}
	l.Table = tableMBR
	for _, p := range parts {
		l.addPart(p.Index, p.Start, p.Size, p.Type)
	}
	next := 5
	for _, ext := range extended {
		var err error
		next, err = readLogical(f, l, int64(ext.Start), next)
		if err != nil {
			return err
		}
	}
	return nil
}

// readLogical walks the extended boot records of the extended partition
// starting at sector base, adding logical partitions numbered from next. It
// returns the next free number.
func readLogical(f *os.File, l *layout, base int64, next int) (int, error) {
	ebr := base
	seen := map[int64]bool{}
	for i := 0; i < maxLogical && !seen[ebr]; i++ {
		seen[ebr] = true
		b := make([]byte, sectorSize)
		if _, err := f.ReadAt(b, ebr*sectorSize); err != nil {
			if err == io.EOF {
				return next, nil
			}
			return next, fmt.Errorf("read extended boot record at sector %d: %w", ebr, err)
		}
		if b[510] != 0x55 || b[511] != 0xaa {
			return next, nil
		}
		e0, e1 := b[446:462], b[462:478]
		if typ := e0[4]; typ != 0 {
			start := ebr + int64(binary.LittleEndian.Uint32(e0[8:12]))
			size := int64(binary.LittleEndian.Uint32(e0[12:16]))
			if size > 0 {
				l.addPart(next, start*sectorSize, size*sectorSize, fmt.Sprintf("0x%02x", typ))
				next++
			}
		}
		link := int64(binary.LittleEndian.Uint32(e1[8:12]))
		if e1[4] == 0 || link == 0 {
			return next, nil
		}
		ebr = base + link
	}
	return next, nil
}

// addPart appends a partition, marking it when it runs past the image.
func (l *layout) addPart(index int, start, size int64, typ string) {
	p := partition{Index: index, Start: start, Size: size, Type: typ}
	// Compared without adding: start+size can overflow.
	if start < 0 || size < 0 || start > l.Size || size > l.Size-start {
		p.Beyond = true
	}
	l.Parts = append(l.Parts, p)
}

// sectorsToBytes converts a 64-bit sector number from a partition table to
// a byte offset; one too large for an int64 becomes math.MaxInt64, which
// lies past the end of any image, rather than wrapping around into it.
func sectorsToBytes(sectors uint64) int64 {
	if sectors > math.MaxInt64/sectorSize {
		return math.MaxInt64
	}
	return int64(sectors) * sectorSize
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

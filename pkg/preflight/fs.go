package preflight

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// Filesystem (and container) types probeFS recognises. The names are what
// Report.RootFS holds.
const (
	fsExt2  = "ext2"
	fsExt3  = "ext3"
	fsExt4  = "ext4"
	fsXFS   = "xfs"
	fsBtrfs = "btrfs"
	fsLVM   = "lvm"
	fsLUKS  = "luks"
	fsRAID  = "raid"
	fsSwap  = "swap"
	fsVFAT  = "vfat"
	fsNTFS  = "ntfs"
)

// isExt reports whether fs is one debugfs can read.
func isExt(fs string) bool { return fs == fsExt2 || fs == fsExt3 || fs == fsExt4 }

// canHoldRoot reports whether a filesystem or container of type fs could
// hold a Linux root filesystem that preflight cannot read itself.
func canHoldRoot(fs string) bool {
	switch fs {
	case fsXFS, fsBtrfs, fsLVM, fsLUKS, fsRAID:
		return true
	}
	return false
}

// probeLen is how much of a partition probeFS reads: up to the btrfs
// superblock magic at 0x10040.
const probeLen = 0x10048

// probeFS identifies the filesystem at byte offset off of r (a partition
// of size bytes) by its superblock magic, or returns "" when it knows none.
func probeFS(r io.ReaderAt, off, size int64) string {
	n := int64(probeLen)
	if size < n {
		n = size
	}
	if n < sectorSize {
		return ""
	}
	b := make([]byte, n)
	k, err := r.ReadAt(b, off)
	if err != nil && (err != io.EOF || k == 0) {
		return ""
	}
	b = b[:k]
	at := func(o int, magic string) bool {
		return len(b) >= o+len(magic) && string(b[o:o+len(magic)]) == magic
	}
	switch {
	case len(b) >= 2048 && binary.LittleEndian.Uint16(b[1080:1082]) == 0xEF53 && sane(extSuper(b[1024:2048])):
		return extSuper(b[1024:2048]).kind()
	case at(0, "XFSB"):
		return fsXFS
	case at(0x10040, "_BHRfS_M"):
		return fsBtrfs
	case at(0, "LUKS\xba\xbe"):
		return fsLUKS
	case at(4086, "SWAPSPACE2"), at(4086, "SWAP-SPACE"):
		return fsSwap
	case at(3, "NTFS    "):
		return fsNTFS
	case isFAT(b):
		return fsVFAT
	case len(b) >= 4100 && binary.LittleEndian.Uint32(b[4096:4100]) == 0xa92b4efc:
		return fsRAID
	}
	for _, o := range []int{0, 512, 1024, 1536} {
		if at(o, "LABELONE") && at(o+24, "LVM2 001") {
			return fsLVM
		}
	}
	return ""
}

// isFAT reports whether b starts with a FAT boot sector.
func isFAT(b []byte) bool {
	if len(b) < 512 || b[510] != 0x55 || b[511] != 0xaa {
		return false
	}
	if !bytes.Equal(b[0x36:0x39], []byte("FAT")) && !bytes.Equal(b[0x52:0x57], []byte("FAT32")) {
		return false
	}
	bps := binary.LittleEndian.Uint16(b[11:13])
	spc := b[13]
	return (bps == 512 || bps == 1024 || bps == 2048 || bps == 4096) && spc != 0 && spc&(spc-1) == 0
}

// extSuper is the 1024-byte ext2/3/4 superblock.
type extSuper []byte

// ext superblock feature flags.
const (
	extCompatJournal   = 0x4
	extIncompatRecover = 0x4
	extIncompatExtents = 0x40
	extIncompat64bit   = 0x80
	extIncompatFlexBG  = 0x200
	extROCompatExt4    = 0x8 | 0x10 | 0x20 | 0x40 | 0x400 // huge_file, gdt_csum, dir_nlink, extra_isize, metadata_csum
)

func (s extSuper) u32(o int) uint32 { return binary.LittleEndian.Uint32(s[o : o+4]) }

func sane(s extSuper) bool {
	return s.u32(0x18) <= 6 && s.u32(0x04) > 0 && s.u32(0x00) > 0 && s.u32(0x20) > 0 && s.u32(0x28) > 0
}

func (s extSuper) kind() string {
	compat, incompat, ro := s.u32(0x5C), s.u32(0x60), s.u32(0x64)
	switch {
	case incompat&(extIncompatExtents|extIncompat64bit|extIncompatFlexBG) != 0, ro&extROCompatExt4 != 0:
		return fsExt4
	case compat&extCompatJournal != 0:
		return fsExt3
	}
	return fsExt2
}

// needsRecovery reports whether the journal holds transactions not yet
// replayed: the filesystem was not cleanly unmounted.
func (s extSuper) needsRecovery() bool { return s.u32(0x60)&extIncompatRecover != 0 }

// uuid returns the filesystem UUID in the usual lower-case form.
func (s extSuper) uuid() string {
	u := s[0x68:0x78]
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// label returns the volume label.
func (s extSuper) label() string {
	return strings.TrimRight(string(s[0x78:0x88]), "\x00")
}

// readExtSuper reads the ext superblock of the filesystem at off.
func readExtSuper(r io.ReaderAt, off int64) (extSuper, error) {
	b := make([]byte, 1024)
	if _, err := r.ReadAt(b, off+1024); err != nil {
		return nil, fmt.Errorf("read ext superblock: %w", err)
	}
	s := extSuper(b)
	if binary.LittleEndian.Uint16(b[0x38:0x3a]) != 0xEF53 || !sane(s) {
		return nil, fmt.Errorf("no ext superblock at offset %d", off)
	}
	return s, nil
}

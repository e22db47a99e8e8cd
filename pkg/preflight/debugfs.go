package preflight

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// maxConfigSize bounds a configuration file read from the image.
const maxConfigSize = 4 << 20

// extFS is an ext2/3/4 filesystem inside the image, read and written with
// debugfs at a byte offset. It never mounts anything.
type extFS struct {
	image  string // raw image path
	offset int64  // byte offset of the filesystem in the image
	part   int    // partition number, for messages
	kind   string // ext2, ext3 or ext4
	super  extSuper
}

// device is the debugfs device argument: the image with the unix I/O
// manager's offset option.
func (e *extFS) device() string {
	return e.image + "?offset=" + strconv.FormatInt(e.offset, 10)
}

// inode is what debugfs's stat says about a file.
type inode struct {
	Type string // regular, directory, symlink, ...
	Perm uint32 // permission bits, 07777
	UID  uint32
	GID  uint32
	Size int64
	Link string // target of a fast symlink
}

// dirEntry is one entry of a directory listing.
type dirEntry struct {
	Name string
	Mode uint32 // full mode: type and permission bits
}

// IsDir reports whether the entry is a directory.
func (d dirEntry) IsDir() bool { return d.Mode&0o170000 == 0o040000 }

// IsRegular reports whether the entry is a regular file.
func (d dirEntry) IsRegular() bool { return d.Mode&0o170000 == 0o100000 }

var errUnsafeName = errors.New("unsafe name for debugfs")

// quote returns s as one debugfs argument. debugfs's parser has no escape
// character, so names with quotes or control characters are refused.
func quote(s string) (string, error) {
	for _, r := range s {
		if r == '"' || r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("%w: %q", errUnsafeName, s)
		}
	}
	return `"` + s + `"`, nil
}

// request runs one read-only debugfs request and returns its stdout (at
// most maxOut bytes). A "not found" answer is an error wrapping
// fs.ErrNotExist; any other message on stderr is an error too, since
// debugfs exits 0 when a request fails.
func (e *extFS) request(ctx context.Context, maxOut int64, req string) ([]byte, error) {
	out, stderr, err := runTool(ctx, nil, maxOut, "debugfs", "-c", "-R", req, e.device())
	if err != nil {
		return nil, fmt.Errorf("debugfs %s on partition %d: %w", req, e.part, err)
	}
	if msg := debugfsError(stderr); msg != "" {
		if strings.Contains(msg, "not found by ext2_lookup") {
			return nil, fmt.Errorf("debugfs %s: %s: %w", req, msg, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("debugfs %s on partition %d: %s", req, e.part, msg)
	}
	return out, nil
}

// debugfsError returns debugfs's error messages from its stderr, without
// the version banner and the catastrophic-mode notice.
func debugfsError(stderr []byte) string {
	var msgs []string
	for _, line := range strings.Split(string(stderr), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "",
			strings.HasPrefix(line, "debugfs ") && strings.Contains(line, "("),
			strings.HasPrefix(line, "catastrophic mode"):
			continue
		}
		msgs = append(msgs, line)
	}
	return strings.Join(msgs, "; ")
}

var (
	statTypeRE = regexp.MustCompile(`Type:\s+(\S+)\s+Mode:\s+([0-7]+)`)
	statUserRE = regexp.MustCompile(`User:\s+(\d+)\s+Group:\s+(\d+)`)
	statSizeRE = regexp.MustCompile(`\bSize:\s+(\d+)`)
	statLinkRE = regexp.MustCompile(`(?m)^Fast link dest: "(.*)"$`)
)

// stat returns the inode of p without following a final symlink.
func (e *extFS) stat(ctx context.Context, p string) (inode, error) {
	q, err := quote(p)
	if err != nil {
		return inode{}, err
	}
	out, err := e.request(ctx, 1<<20, "stat "+q)
	if err != nil {
		return inode{}, err
	}
	var in inode
	m := statTypeRE.FindSubmatch(out)
	u := statUserRE.FindSubmatch(out)
	s := statSizeRE.FindSubmatch(out)
	if m == nil || u == nil || s == nil {
		return inode{}, fmt.Errorf("debugfs stat %s: unexpected output %q", p, firstLine(out))
	}
	in.Type = string(m[1])
	perm, _ := strconv.ParseUint(string(m[2]), 8, 32)
	uid, _ := strconv.ParseUint(string(u[1]), 10, 32)
	gid, _ := strconv.ParseUint(string(u[2]), 10, 32)
	size, _ := strconv.ParseInt(string(s[1]), 10, 64)
	in.Perm, in.UID, in.GID, in.Size = uint32(perm), uint32(uid), uint32(gid), size
	if l := statLinkRE.FindSubmatch(out); l != nil {
		in.Link = string(l[1])
	}
	return in, nil
}

// maxLinks bounds symlink resolution.
const maxLinks = 16

// resolve follows symlinks in the final component of p (debugfs follows
// them in the others) inside this filesystem, and returns the path reached
// and its inode.
func (e *extFS) resolve(ctx context.Context, p string) (string, inode, error) {
	p = path.Clean("/" + p)
	for i := 0; i < maxLinks; i++ {
		in, err := e.stat(ctx, p)
		if err != nil {
			return "", inode{}, err
		}
		if in.Type != "symlink" {
			return p, in, nil
		}
		target := in.Link
		if target == "" {
			q, err := quote(p)
			if err != nil {
				return "", inode{}, err
			}
			b, err := e.request(ctx, 4096, "cat "+q)
			if err != nil {
				return "", inode{}, err
			}
			target = string(bytes.TrimRight(b, "\x00"))
		}
		if !strings.HasPrefix(target, "/") {
			target = path.Join(path.Dir(p), target)
		}
		p = path.Clean(target)
	}
	return "", inode{}, fmt.Errorf("%s: too many levels of symbolic links", p)
}

// exists reports whether p exists (following symlinks). Errors other than
// "not found" are returned.
func (e *extFS) exists(ctx context.Context, p string) (bool, error) {
	_, _, err := e.resolve(ctx, p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// readFile returns the contents of the regular file p (following
// symlinks), refusing files over limit bytes.
func (e *extFS) readFile(ctx context.Context, p string, limit int64) ([]byte, error) {
	rp, in, err := e.resolve(ctx, p)
	if err != nil {
		return nil, err
	}
	if in.Type != "regular" {
		return nil, fmt.Errorf("%s is a %s, not a regular file", p, in.Type)
	}
	if in.Size > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d this reads", p, in.Size, limit)
	}
	q, err := quote(rp)
	if err != nil {
		return nil, err
	}
	return e.request(ctx, limit, "cat "+q)
}

// list returns the entries of directory dir (following symlinks), without
// "." and "..".
func (e *extFS) list(ctx context.Context, dir string) ([]dirEntry, error) {
	rp, in, err := e.resolve(ctx, dir)
	if err != nil {
		return nil, err
	}
	if in.Type != "directory" {
		return nil, fmt.Errorf("%s is a %s, not a directory", dir, in.Type)
	}
	q, err := quote(rp)
	if err != nil {
		return nil, err
	}
	out, err := e.request(ctx, 16<<20, "ls -p "+q)
	if err != nil {
		return nil, err
	}
	var entries []dirEntry
	for _, line := range strings.Split(string(out), "\n") {
		// "/inode/mode/uid/gid/name/size/"
		f := strings.Split(line, "/")
		if len(f) < 7 || f[5] == "." || f[5] == ".." || f[5] == "" {
			continue
		}
		mode, err := strconv.ParseUint(f[2], 8, 32)
		if err != nil {
			continue
		}
		entries = append(entries, dirEntry{Name: f[5], Mode: uint32(mode)})
	}
	return entries, nil
}

// dump copies the regular file p (following symlinks) out of the image to
// the host file dst, refusing files over limit bytes.
func (e *extFS) dump(ctx context.Context, p, dst string, limit int64) error {
	rp, in, err := e.resolve(ctx, p)
	if err != nil {
		return err
	}
	if in.Type != "regular" {
		return fmt.Errorf("%s is a %s, not a regular file", p, in.Type)
	}
	if in.Size > limit {
		return fmt.Errorf("%s is %d bytes, more than the %d this reads", p, in.Size, limit)
	}
	src, err := quote(rp)
	if err != nil {
		return err
	}
	to, err := quote(dst)
	if err != nil {
		return err
	}
	_, err = e.request(ctx, 1<<20, "dump "+src+" "+to)
	return err
}

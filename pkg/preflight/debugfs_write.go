package preflight

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// eaNameRE matches the extended attribute names writeFile copies.
var eaNameRE = regexp.MustCompile(`^[A-Za-z0-9._@+-]+$`)

// writeFile replaces the regular file p (after following symlinks) in the
// filesystem with data, keeping its permission bits, owner, group and
// extended attributes (SELinux labels, ACLs). The new contents go into a
// new inode under a temporary name in the same directory, which is checked
// and only then swapped in for the old directory entry; the result is read
// back and compared. The filesystem must not need journal recovery.
func (e *extFS) writeFile(ctx context.Context, p string, data []byte) error {
	if e.super != nil && e.super.needsRecovery() {
		return fmt.Errorf("partition %d: the journal needs recovery; refusing to write", e.part)
	}
	rp, in, err := e.resolve(ctx, p)
	if err != nil {
		return err
	}
	if in.Type != "regular" {
		return fmt.Errorf("%s is a %s, not a regular file", p, in.Type)
	}
	tmp := path.Join(path.Dir(rp), ".gale-"+path.Base(rp)+".new")
	qp, err := quote(rp)
	if err != nil {
		return err
	}
	qt, err := quote(tmp)
	if err != nil {
		return err
	}
	host, err := os.MkdirTemp("", "gale-preflight-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(host) }()
	src := filepath.Join(host, "data")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		return fmt.Errorf("stage new %s: %w", p, err)
	}
	qs, err := quote(src)
	if err != nil {
		return err
	}

	var cmds []string
	if _, err := e.stat(ctx, tmp); err == nil {
		cmds = append(cmds, "rm "+qt) // left over from an interrupted run
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	cmds = append(cmds,
		"write "+qs+" "+qt,
		fmt.Sprintf("sif %s mode 0%o", qt, 0o100000|in.Perm),
		fmt.Sprintf("sif %s uid %d", qt, in.UID),
		fmt.Sprintf("sif %s gid %d", qt, in.GID),
	)
	eas, err := e.copyXattrs(ctx, rp, host)
	if err != nil {
		return err
	}
	for _, ea := range eas {
		qv, err := quote(ea.file)
		if err != nil {
			return err
		}
		cmds = append(cmds, "ea_set -f "+qv+" "+qt+" "+ea.name)
	}
	if err := e.script(ctx, host, cmds); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := e.verify(ctx, tmp, data, in); err != nil {
		return fmt.Errorf("write %s: new file does not check out (old file left in place): %w", p, err)
	}
	if err := e.script(ctx, host, []string{"rm " + qp, "ln " + qt + " " + qp, "unlink " + qt}); err != nil {
		return fmt.Errorf("replace %s: %w", p, err)
	}
	if err := e.verify(ctx, rp, data, in); err != nil {
		return fmt.Errorf("replace %s: read back: %w", p, err)
	}
	return nil
}

// verify reads p back and checks its contents and attributes.
func (e *extFS) verify(ctx context.Context, p string, data []byte, want inode) error {
	got, err := e.readFile(ctx, p, int64(len(data))+1)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("%s: contents differ from what was written", p)
	}
	in, err := e.stat(ctx, p)
	if err != nil {
		return err
	}
	if in.Perm != want.Perm || in.UID != want.UID || in.GID != want.GID {
		return fmt.Errorf("%s: mode %04o owner %d:%d, want %04o %d:%d", p, in.Perm, in.UID, in.GID, want.Perm, want.UID, want.GID)
	}
	return nil
}

// xattr is an extended attribute saved to a host file.
type xattr struct{ name, file string }

// copyXattrs saves the extended attributes of p into files under host.
// system.data (ext4 inline data) is not an attribute to copy.
func (e *extFS) copyXattrs(ctx context.Context, p, host string) ([]xattr, error) {
	qp, err := quote(p)
	if err != nil {
		return nil, err
	}
	out, err := e.request(ctx, 1<<20, "ea_list "+qp)
	if err != nil {
		return nil, err
	}
	var eas []xattr
	for _, line := range strings.Split(string(out), "\n") {
		// "  security.selinux (28) = "system_u:...""
		line = strings.TrimSpace(line)
		name, _, ok := strings.Cut(line, " (")
		if !ok || name == "system.data" || strings.HasPrefix(line, "Extended attributes") {
			continue
		}
		if !eaNameRE.MatchString(name) {
			return nil, fmt.Errorf("%s: extended attribute %q cannot be copied", p, name)
		}
		f := filepath.Join(host, fmt.Sprintf("ea%d", len(eas)))
		qf, err := quote(f)
		if err != nil {
			return nil, err
		}
		if _, err := e.request(ctx, 1<<20, "ea_get -f "+qf+" "+qp+" "+name); err != nil {
			return nil, err
		}
		eas = append(eas, xattr{name: name, file: f})
	}
	return eas, nil
}

// script runs debugfs -w with cmds as its command file.
func (e *extFS) script(ctx context.Context, host string, cmds []string) error {
	f := filepath.Join(host, "cmds")
	if err := os.WriteFile(f, []byte(strings.Join(cmds, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("debugfs command file: %w", err)
	}
	_, stderr, err := runTool(ctx, nil, 1<<20, "debugfs", "-w", "-f", f, e.device())
	if err != nil {
		return err
	}
	if msg := debugfsError(stderr); msg != "" {
		return fmt.Errorf("debugfs: %s", msg)
	}
	return nil
}

package libvirt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"
	lv "libvirt.org/go/libvirt"

	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/saveimage"
)

// Save writes the running domain's state to path with virDomainSaveFlags
// and stops the domain (it stays defined). path must not exist: libvirt
// would overwrite it. On error the domain keeps running and a partial
// file is removed.
func (d *Driver) Save(ctx context.Context, name, path string) error {
	op := fmt.Sprintf("save domain %q to %s", name, path)
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s: %w", op, os.ErrExist)
	}
	err := d.withDomain(ctx, name, func(_ *lv.Connect, dom *lv.Domain) error {
		return dom.SaveFlags(path, "", lv.DOMAIN_SAVE_RUNNING)
	})
	if err != nil {
		_ = os.Remove(path)
		return wrapErr(op, err)
	}
	d.log.WithFields(logrus.Fields{"vm": name, "op": "save"}).Debug("domain saved")
	return nil
}

// Restore reads the saved state's header (pkg/saveimage), rewrites its
// domain XML with spec's identity (cloneXML), writes that as a new save file
// in workDir, defines the clone from the rewritten XML and restores the copy
// into it, running. libvirt refuses to restore a state under another name or
// UUID, hence the copy; the guest's memory is copied unchanged.
func (d *Driver) Restore(ctx context.Context, statePath string, spec hypervisor.CloneSpec, workDir string) (err error) {
	op := fmt.Sprintf("restore %s as domain %q", statePath, spec.Name)
	img, err := saveimage.Open(statePath)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", op, hypervisor.ErrBadSavedState, err)
	}
	doc, err := cloneXML(string(img.XML), spec)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	copyPath := filepath.Join(workDir, ".restore-"+spec.Name+".sav")
	start := time.Now()
	if err := saveimage.Rewrite(ctx, statePath, copyPath, []byte(doc)); err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s: %w", op, err)
		}
		return fmt.Errorf("%s: %w: %w", op, hypervisor.ErrBadSavedState, err)
	}
	rewritten := time.Since(start)
	defer func() {
		if rerr := os.Remove(copyPath); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = fmt.Errorf("%s: remove state copy: %w", op, rerr)
		}
	}()
	err = d.with(ctx, func(c *lv.Connect) error {
		if err := refuseTaken(c, spec.Name); err != nil {
			return err
		}
		dom, err := c.DomainDefineXMLFlags(doc, 0)
		if err != nil {
			return err
		}
		defer func() { _ = dom.Free() }()
		if err := c.DomainRestoreFlags(copyPath, "", lv.DOMAIN_SAVE_RUNNING); err != nil {
			// Leave nothing behind: the restore may have started QEMU.
			_ = destroy(dom)
			if uerr := dom.Undefine(); uerr != nil {
				d.log.WithError(uerr).WithField("vm", spec.Name).Warn("undefine after failed restore")
			}
			return err
		}
		return nil
	})
	if err != nil {
		return wrapErr(op, err)
	}
	d.log.WithFields(logrus.Fields{"vm": spec.Name, "op": "restore", "from": statePath,
		"rewrite": rewritten.Round(time.Millisecond), "took": time.Since(start).Round(time.Millisecond)}).Debug("domain restored")
	return nil
}

package daemon

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"syscall"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/hypervisor"
)

// minFreeBytes is the free space below which doctor warns about the data dir.
const minFreeBytes = 5 << 30

// doctor checks what gale needs from this host and says how to fix what is
// missing. It only reads.
func doctor(ctx context.Context, drv hypervisor.Driver, cfg Config, images imageLister) []api.Check {
	return []api.Check{
		checkLibvirt(ctx, drv, cfg.LibvirtURI),
		checkDevKVM("/dev/kvm"),
		checkAccel(drv, hypervisor.ProbeHost()),
		checkNetwork(ctx, drv, cfg.DefaultNetwork.Name),
		checkDiskSpace(cfg.DataDir),
		checkImages(ctx, images),
		checkGroup("gale"),
	}
}

func checkLibvirt(ctx context.Context, drv hypervisor.Driver, uri string) api.Check {
	c := api.Check{Name: "libvirt", Fix: "start libvirtd: `systemctl start libvirtd`, or where there is no systemd `virtlogd -d; libvirtd -d` (scripts/setup-host.sh does it)"}
	if _, err := drv.States(ctx); err != nil {
		c.Detail = err.Error()
		return c
	}
	c.OK, c.Detail, c.Fix = true, "libvirtd answers at "+uri, ""
	return c
}

func checkDevKVM(path string) api.Check {
	c := api.Check{Name: "/dev/kvm"}
	st, err := os.Stat(path)
	if err != nil {
		c.OK, c.Detail = true, "absent: guests run under TCG (software emulation)"
		return c
	}
	sys, _ := st.Sys().(*syscall.Stat_t)
	group := "?"
	if sys != nil {
		if g, err := user.LookupGroupId(fmt.Sprint(sys.Gid)); err == nil {
			group = g.Name
		}
	}
	c.Detail = fmt.Sprintf("mode %04o, group %s", st.Mode().Perm(), group)
	if group != "kvm" || st.Mode().Perm()&0o060 != 0o060 {
		c.Fix = "chgrp kvm /dev/kvm && chmod 0660 /dev/kvm (otherwise libvirt re-probes QEMU on every call and each define takes about a minute)"
		return c
	}
	c.OK = true
	return c
}

func checkAccel(drv hypervisor.Driver, probe hypervisor.HostProbe) api.Check {
	c := api.Check{Name: "accelerator", OK: true}
	_, reason, _ := hypervisor.ResolveAccel(hypervisor.AccelAuto, probe)
	switch drv.Accel() {
	case hypervisor.AccelKVM:
		c.Detail = "KVM"
	default:
		c.Detail = "TCG: " + reason
		c.Fix = "for full speed use a host with kvm_intel or kvm_amd loaded and /dev/kvm usable"
	}
	return c
}

func checkNetwork(ctx context.Context, drv hypervisor.Driver, name string) api.Check {
	c := api.Check{Name: "default network", Fix: fmt.Sprintf("set default_network.create: true in galed's config and restart galed, or `gale network create %s`", name)}
	n, err := drv.GetNetwork(ctx, name)
	switch {
	case err != nil:
		c.Detail = err.Error()
	case !n.Active:
		c.Detail = name + " is defined but not active"
		c.Fix = "restart galed (it starts its networks when it finds them inactive), or virsh net-start " + name
	default:
		c.OK, c.Fix = true, ""
		c.Detail = fmt.Sprintf("%s (%s, %s, bridge %s)", n.Name, n.Mode, n.CIDR, n.Bridge)
	}
	return c
}

func checkDiskSpace(dir string) api.Check {
	c := api.Check{Name: "disk space"}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		c.Detail = err.Error()
		return c
	}
	free := int64(fs.Bavail) * int64(fs.Bsize)
	c.Detail = fmt.Sprintf("%.1f GiB free in %s", float64(free)/(1<<30), dir)
	c.OK = free >= minFreeBytes
	if !c.OK {
		c.Fix = "free space there, or point data_dir in galed's config at a larger file system"
	}
	return c
}

// imageLister is the part of the image service doctor needs.
type imageLister interface {
	List(ctx context.Context) ([]api.Image, error)
}

func checkImages(ctx context.Context, images imageLister) api.Check {
	c := api.Check{Name: "images"}
	imgs, err := images.List(ctx)
	if err != nil {
		c.Detail, c.Fix = err.Error(), "check catalog_dir and image_dir in galed's config"
		return c
	}
	present, invalid := 0, 0
	var firstBuild, firstInvalid string
	for _, im := range imgs {
		switch {
		case im.Error != "":
			invalid++
			if firstInvalid == "" {
				firstInvalid = im.Error
			}
		case im.Present:
			present++
		case im.Kind == api.ImageKindBuild && firstBuild == "":
			firstBuild = im.Name
		}
	}
	c.Detail = fmt.Sprintf("%d of %d images on disk", present, len(imgs))
	if invalid > 0 {
		c.Detail += fmt.Sprintf("; %d catalog files do not load", invalid)
	}
	c.OK = present > 0 && invalid == 0
	switch {
	case firstInvalid != "":
		c.Fix = "fix the catalog file: " + firstInvalid
	case present == 0 && firstBuild != "":
		c.Fix = "build one: gale image build " + firstBuild
	case present == 0:
		c.Fix = "pull or import one: gale image list"
	}
	return c
}

func checkGroup(name string) api.Check {
	c := api.Check{Name: "group " + name}
	if _, err := user.LookupGroup(name); err != nil {
		c.Detail = "missing: only root can use galed's socket"
		c.Fix = "groupadd --system " + name + ", then add users with usermod -aG " + name + " USER"
		return c
	}
	c.OK, c.Detail = true, "members may use galed's socket and `gale vm ssh`"
	return c
}

package preflight

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/galevm/gale/pkg/toolrun"
)

// virt-customize runs the guest's own tools inside a libguestfs appliance
// (a small VM), so the untrusted image is never handled by the host
// kernel. Its QEMU needs more than toolMemory of address space, so it runs
// with a CPU-time limit and a timeout only.
const (
	customizeTimeout = 30 * time.Minute
	customizeCPU     = time.Hour
)

// virtioModules are the drivers a gale VM's disk needs at boot.
var virtioModules = []string{"virtio_blk", "virtio_pci", "virtio_scsi"}

// customization is one virt-customize operation and the change it makes.
type customization struct {
	check  string
	detail string   // what the change does, for Change.Detail
	args   []string // virt-customize arguments
	manual string   // what to do when virt-customize is missing
}

// initramfsCustomization returns the operation that adds the virtio
// drivers to every installed kernel's initramfs with the guest's own tool.
func (in *inspection) initramfsCustomization() customization {
	mods := strings.Join(virtioModules, " ")
	c := customization{check: CheckVirtioInitramfs,
		manual: "virt-customize not found: install libguestfs-tools to add virtio drivers to the initramfs, or " + fixInitramfsByHand}
	switch {
	case in.initramfsTool == "initramfs-tools":
		c.detail = "added " + strings.Join(virtioModules, ", ") + " to /etc/initramfs-tools/modules and rebuilt the initramfs of every kernel (update-initramfs -u -k all)"
		for _, m := range virtioModules {
			c.args = append(c.args, "--append-line", "/etc/initramfs-tools/modules:"+m)
		}
		c.args = append(c.args, "--run-command", "update-initramfs -u -k all")
	case in.initramfsTool == "dracut" && len(in.kernels) > 0:
		var vs []string
		c.args = append(c.args, "--write", `/etc/dracut.conf.d/90-gale-virtio.conf:add_drivers+=" `+mods+` "`)
		for _, k := range in.kernels {
			img := k.Initramfs
			if img == "" {
				img = "/boot/initramfs-" + k.Version + ".img"
			}
			c.args = append(c.args, "--run-command", fmt.Sprintf(`dracut -f --add-drivers "%s" %s %s`, mods, img, k.Version))
			vs = append(vs, k.Version)
		}
		c.detail = "rebuilt the initramfs of " + strings.Join(vs, ", ") + " with dracut --add-drivers \"" + mods + "\" (kept in /etc/dracut.conf.d/90-gale-virtio.conf)"
	default:
		c.detail = "rebuilt the initramfs of every kernel with " + mods + " (update-initramfs or dracut, whichever the guest has)"
		c.args = append(c.args, "--run-command", fmt.Sprintf(
			`if command -v update-initramfs >/dev/null 2>&1; then printf '%%s\n' %s >> /etc/initramfs-tools/modules && update-initramfs -u -k all; `+
				`elif command -v dracut >/dev/null 2>&1; then dracut -f --regenerate-all --add-drivers "%s"; `+
				`else echo "neither update-initramfs nor dracut in the guest" >&2; exit 1; fi`, mods, mods))
	}
	return c
}

// installCustomization returns the operation that installs pkg from the
// guest's package repositories.
func installCustomization(check, pkg, caveat string) customization {
	return customization{check: check,
		detail: "installed " + pkg + " from the guest's package repositories (virt-customize --install)" + caveat,
		args:   []string{"--install", pkg},
		manual: "virt-customize not found: install libguestfs-tools so --prepare can install " + pkg + " (it needs the guest's package repositories reachable), or install " + pkg + " on the server before imaging"}
}

// customize applies ops to the image with one virt-customize run, or, when
// virt-customize is not on PATH, returns them as not applied.
func customize(ctx context.Context, rawPath string, ops []customization) []Change {
	if len(ops) == 0 {
		return nil
	}
	changes := make([]Change, len(ops))
	tool, err := exec.LookPath("virt-customize")
	if err != nil {
		for i, op := range ops {
			changes[i] = Change{Check: op.check, Detail: op.manual}
		}
		return changes
	}
	argv := []string{"-a", rawPath, "--format", "raw"}
	for _, op := range ops {
		argv = append(argv, op.args...)
	}
	out, runErr := runCustomize(ctx, tool, argv)
	for i, op := range ops {
		changes[i] = Change{Check: op.check, Detail: op.detail, Applied: runErr == nil}
		if runErr != nil {
			changes[i].Detail = "not done: virt-customize failed: " + runErr.Error() + lastLine(out)
		}
	}
	return changes
}

// runCustomize runs virt-customize under a CPU-time limit and a timeout
// (no address-space limit, see customizeCPU) and returns its standard
// output followed by the tail of its standard error.
func runCustomize(ctx context.Context, tool string, args []string) ([]byte, error) {
	out, err := toolrun.Run(ctx, toolrun.Spec{
		Argv:       append([]string{tool}, args...),
		Timeout:    customizeTimeout,
		MaxCPUTime: customizeCPU,
		MaxOutput:  1 << 20,
	})
	combined := append(out.Stdout, out.Stderr...)
	var te *toolrun.Error
	if errors.As(err, &te) {
		// The caller quotes the last line of the output itself.
		return combined, te.Err
	}
	return combined, err
}

// lastLine returns ": " and the last non-empty line of out, or "".
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return ": " + l
	}
	return ""
}

package preflight

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/galevm/gale/pkg/internal/testtool"
)

// galeImages is where gale caches built templates.
const galeImages = "/var/lib/gale/images"

// TestInspectDebian12Template inspects gale's own debian-12 template, when
// it has been built on this host, converted to a sparse raw image.
func TestInspectDebian12Template(t *testing.T) {
	needTools(t)
	matches, _ := filepath.Glob(filepath.Join(galeImages, "debian-12-*.qcow2"))
	if len(matches) == 0 {
		t.Skip("no debian-12 template under " + galeImages)
	}
	testtool.Need(t, "Debian: qemu-utils", "qemu-img")
	raw := filepath.Join(t.TempDir(), "debian-12.raw")
	run(t, "", "qemu-img", "convert", "-O", "raw", matches[0], raw)

	r := inspectOK(t, raw)
	if !strings.Contains(r.OS, "Debian GNU/Linux 12") {
		t.Errorf("OS = %q", r.OS)
	}
	if !r.CloudInit || !r.GuestAgent {
		t.Errorf("CloudInit %v GuestAgent %v, want both", r.CloudInit, r.GuestAgent)
	}
	if r.RootFS != "ext4" || len(r.Kernels) == 0 {
		t.Errorf("RootFS %q Kernels %v", r.RootFS, r.Kernels)
	}
	wantFinding(t, r, CheckVirtioInitramfs, SeverityOK, "virtio_blk")
	wantFinding(t, r, CheckDeviceNames, SeverityOK)
	wantFinding(t, r, CheckSerialConsole, SeverityInfo, "console=ttyS0 is on")
	if !r.Ready() {
		t.Error("the debian-12 template is not ready")
	}
}

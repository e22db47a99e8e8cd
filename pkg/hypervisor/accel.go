package hypervisor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// HostProbe is what accelerator detection needs to know about the host.
// ProbeHost fills it from the running system; tests build it by hand.
type HostProbe struct {
	// DevKVM is true when /dev/kvm exists and opens read-write.
	DevKVM bool
	// DevKVMErr explains why /dev/kvm is unusable (nil when DevKVM is true).
	DevKVMErr error
	// Modules holds the loaded KVM modules among kvm_intel, kvm_amd and kvm_pvm.
	Modules map[string]bool
}

// kvmModules are the kernel modules accelerator detection looks for.
var kvmModules = []string{"kvm_intel", "kvm_amd", "kvm_pvm"}

// ProbeHost inspects /dev/kvm, /proc/modules and /sys/module. It never fails:
// whatever it cannot read counts as absent.
func ProbeHost() HostProbe {
	return probeHost("/dev/kvm", "/proc/modules", "/sys/module")
}

func probeHost(devKVM, procModules, sysModule string) HostProbe {
	p := HostProbe{Modules: map[string]bool{}}
	f, err := os.OpenFile(devKVM, os.O_RDWR, 0)
	if err == nil {
		p.DevKVM = true
		_ = f.Close()
	} else {
		p.DevKVMErr = err
	}
	if mf, err := os.Open(procModules); err == nil {
		for name := range parseModules(mf) {
			p.Modules[name] = true
		}
		_ = mf.Close()
	}
	// Built-in modules do not appear in /proc/modules but do in /sys/module.
	for _, m := range kvmModules {
		if _, err := os.Stat(sysModule + "/" + m); err == nil {
			p.Modules[m] = true
		}
	}
	return p
}

// parseModules returns the KVM modules listed in /proc/modules format.
func parseModules(r io.Reader) map[string]bool {
	found := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		for _, m := range kvmModules {
			if fields[0] == m {
				found[m] = true
			}
		}
	}
	return found
}

// DetectAccel resolves the requested accelerator on this host. See ResolveAccel.
func DetectAccel(requested Accel) (Accel, string, error) {
	return ResolveAccel(requested, ProbeHost())
}

// ResolveAccel decides the accelerator for requested on a host described by p.
//
// KVM is usable when /dev/kvm opens read-write and kvm_intel or kvm_amd is
// loaded; a host with only kvm_pvm counts as having no KVM, because ordinary
// guest kernels hang under PVM. The result is:
//   - AccelTCG for "tcg", always (reason empty);
//   - AccelKVM for "kvm" when usable, else an error wrapping ErrInvalidSpec
//     that says why;
//   - for "auto" (or empty): AccelKVM when usable, else AccelTCG with a
//     non-empty reason the caller should log as a warning.
func ResolveAccel(requested Accel, p HostProbe) (Accel, string, error) {
	why := kvmUnusable(p)
	switch requested {
	case AccelTCG:
		return AccelTCG, "", nil
	case AccelKVM:
		if why != "" {
			return "", "", fmt.Errorf("accelerator kvm requested but %s: %w", why, ErrInvalidSpec)
		}
		return AccelKVM, "", nil
	case AccelAuto, "":
		if why != "" {
			return AccelTCG, why + "; falling back to TCG (software emulation, much slower)", nil
		}
		return AccelKVM, "", nil
	default:
		return "", "", fmt.Errorf("unknown accelerator %q (want auto, kvm or tcg): %w", requested, ErrInvalidSpec)
	}
}

// kvmUnusable returns why KVM cannot run ordinary guests, or "" when it can.
func kvmUnusable(p HostProbe) string {
	if !p.DevKVM {
		if p.DevKVMErr != nil {
			if errors.Is(p.DevKVMErr, os.ErrNotExist) {
				return "/dev/kvm does not exist"
			}
			return fmt.Sprintf("/dev/kvm is not usable: %v", p.DevKVMErr)
		}
		return "/dev/kvm is not usable"
	}
	if p.Modules["kvm_intel"] || p.Modules["kvm_amd"] {
		return ""
	}
	if p.Modules["kvm_pvm"] {
		return "the host's KVM is kvm_pvm (PVM guests only; kvm_intel/kvm_amd not loaded)"
	}
	return "neither kvm_intel nor kvm_amd is loaded"
}

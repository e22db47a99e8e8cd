package hypervisor

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveAccel(t *testing.T) {
	mods := func(names ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range names {
			m[n] = true
		}
		return m
	}
	intel := HostProbe{DevKVM: true, Modules: mods("kvm_intel")}
	amd := HostProbe{DevKVM: true, Modules: mods("kvm_amd")}
	pvm := HostProbe{DevKVM: true, Modules: mods("kvm_pvm")}
	pvmAndIntel := HostProbe{DevKVM: true, Modules: mods("kvm_pvm", "kvm_intel")}
	noDev := HostProbe{DevKVMErr: fs.ErrNotExist, Modules: mods("kvm_intel")}
	noPerm := HostProbe{DevKVMErr: fs.ErrPermission, Modules: mods("kvm_amd")}
	noMods := HostProbe{DevKVM: true, Modules: mods()}

	tests := []struct {
		name       string
		req        Accel
		probe      HostProbe
		want       Accel
		wantReason string // substring; "" means reason must be empty
		wantErr    string // substring; "" means no error
	}{
		{name: "auto intel", req: AccelAuto, probe: intel, want: AccelKVM},
		{name: "auto amd", req: AccelAuto, probe: amd, want: AccelKVM},
		{name: "empty is auto", req: "", probe: amd, want: AccelKVM},
		{name: "auto pvm only falls back", req: AccelAuto, probe: pvm, want: AccelTCG, wantReason: "kvm_pvm"},
		{name: "auto pvm plus intel", req: AccelAuto, probe: pvmAndIntel, want: AccelKVM},
		{name: "auto no dev", req: AccelAuto, probe: noDev, want: AccelTCG, wantReason: "does not exist"},
		{name: "auto no permission", req: AccelAuto, probe: noPerm, want: AccelTCG, wantReason: "not usable"},
		{name: "auto no modules", req: AccelAuto, probe: noMods, want: AccelTCG, wantReason: "neither kvm_intel nor kvm_amd"},
		{name: "kvm on intel", req: AccelKVM, probe: intel, want: AccelKVM},
		{name: "kvm on pvm fails", req: AccelKVM, probe: pvm, wantErr: "kvm_pvm"},
		{name: "kvm without dev fails", req: AccelKVM, probe: noDev, wantErr: "/dev/kvm does not exist"},
		{name: "tcg always", req: AccelTCG, probe: intel, want: AccelTCG},
		{name: "tcg without kvm", req: AccelTCG, probe: noDev, want: AccelTCG},
		{name: "unknown", req: "xen", probe: intel, wantErr: "unknown accelerator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason, err := ResolveAccel(tt.req, tt.probe)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidSpec) {
					t.Fatalf("err = %v, want one containing %q wrapping ErrInvalidSpec", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tt.want {
				t.Errorf("accel = %q, want %q", got, tt.want)
			}
			if tt.wantReason == "" && reason != "" {
				t.Errorf("reason = %q, want empty", reason)
			}
			if tt.wantReason != "" && !strings.Contains(reason, tt.wantReason) {
				t.Errorf("reason = %q, want it to contain %q", reason, tt.wantReason)
			}
		})
	}
}

func TestProbeHost(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "kvm")
	procModules := filepath.Join(dir, "modules")
	sysModule := filepath.Join(dir, "sys")
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(procModules, "kvm_pvm 1245184 0 - Live 0x0000000000000000\nkvm 1146880 1 kvm_pvm, Live 0x0\n")
	if err := os.MkdirAll(filepath.Join(sysModule, "kvm_amd"), 0o700); err != nil {
		t.Fatal(err)
	}

	t.Run("missing dev", func(t *testing.T) {
		p := probeHost(dev, procModules, sysModule)
		if p.DevKVM || !errors.Is(p.DevKVMErr, fs.ErrNotExist) {
			t.Fatalf("DevKVM = %v, err = %v; want false, not-exist", p.DevKVM, p.DevKVMErr)
		}
		if !p.Modules["kvm_pvm"] || !p.Modules["kvm_amd"] || p.Modules["kvm_intel"] {
			t.Fatalf("modules = %v, want kvm_pvm (proc) and kvm_amd (sys)", p.Modules)
		}
	})
	t.Run("usable dev", func(t *testing.T) {
		write(dev, "")
		p := probeHost(dev, procModules, filepath.Join(dir, "nosys"))
		if !p.DevKVM || p.DevKVMErr != nil {
			t.Fatalf("DevKVM = %v, err = %v; want true, nil", p.DevKVM, p.DevKVMErr)
		}
		if _, reason, _ := ResolveAccel(AccelAuto, p); !strings.Contains(reason, "kvm_pvm") {
			t.Fatalf("reason = %q, want the PVM explanation", reason)
		}
	})
}

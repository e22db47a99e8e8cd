//go:build e2e

package e2e

import (
	"os"
	"sort"
	"sync"
	"testing"
)

// scenarios run in this order, each as a subtest of TestE2E: the order
// matters only for the web fixture, which the read-only scenarios use
// first; cli_stop_start, cli_libvirtd_restart and cli_galed_restart change
// its state and bring it back (running, serving its page), and cli_delete
// takes it over and deletes it. Any scenario also runs alone
// (go test -tags e2e -run 'TestE2E/NAME'): it then boots what it needs.
var scenarios = []struct {
	name string
	run  func(*S)
}{
	{"cli_daemon", cliDaemon},
	{"cli_host", cliHost},
	{"cli_network", cliNetwork},
	{"cli_web", cliWeb},
	{"cli_bad_input", cliBadInput},
	{"cli_stop_start", cliStopStart},
	{"cli_libvirtd_restart", cliLibvirtdRestart},
	{"cli_galed_restart", cliGaledRestart},
	{"cli_crash", cliCrash},
	{"cli_delete", cliDelete},
	{"cli_toolbox", cliToolbox},
	{"clones_pair", clonesPair},
	{"clones_bad_state", clonesBadState},
	{"clones_crash", clonesCrash},
	{"clones_model_change", clonesModelChange},
	{"sets_web", setsWeb},
	{"sets_bad_input", setsBadInput},
	{"sets_open_network", setsOpenNetwork},
	{"autoscale_cpu", autoscaleCPU},
	{"images_catalog", imagesCatalog},
	{"images_build", imagesBuild},
	{"images_pull", imagesPull},
	{"images_pull_resume", imagesPullResume},
	{"images_pull_refused", imagesPullRefused},
	{"images_pull_url", imagesPullURL},
	{"images_pull_shared", imagesPullShared},
	{"images_import", imagesImport},
	{"images_hostile", imagesHostile},
	{"images_vm_pull", imagesVMPull},
	{"images_vm_legacy", imagesVMLegacy},
	{"images_prune", imagesPrune},
}

// TestE2E runs the scenarios in order; see scenarios.
func TestE2E(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sc.run(begin(t)) })
	}
}

// TestMain stops galed and the loopback servers after the run.
func TestMain(m *testing.M) {
	code := m.Run()
	teardownEnv()
	os.Exit(code)
}

// vmFixture is a VM booted at most once per run (boots cost about a minute
// under TCG) and shared by the scenarios that need it. Get boots it on
// first use; scenarios that only read it use Get, a scenario that changes it
// and puts it back uses Mutate, and a scenario that deletes it uses Take.
type vmFixture struct {
	name string
	args []string // `gale vm create NAME` arguments after the name

	mu     sync.Mutex
	booted bool   // the VM exists and is usable
	dirty  bool   // a scenario that changed it failed: boot it again
	create Result // the create that booted it
}

// web is the VM made with the web-server snippet; flags come after the name
// on purpose.
var web = &vmFixture{name: "web", args: []string{"--image", "debian-12", "--cloud-init", "cloudinit/web-server.yaml", "--memory", "1G", "--disk", "4G"}}

// vmFixtures are all the VM fixtures (see liveFixtureVMs).
var vmFixtures = []*vmFixture{web}

// Get returns the create that booted the VM, booting it first if no
// scenario did yet; it stops the scenario if the VM cannot be made.
func (f *vmFixture) Get(s *S) Result {
	s.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	s.Watch(f.name)
	if f.booted && f.dirty {
		s.Logf("fixture %s was left in an unknown state by a failed scenario: making it again", f.name)
		s.Gale("vm", "delete", f.name)
		f.booted = false
	}
	if !f.booted {
		r := s.Gale(append([]string{"vm", "create", f.name}, f.args...)...)
		if r.Code != 0 {
			s.Fatalf("fixture VM %s: create failed: %s", f.name, r)
		}
		f.create, f.booted, f.dirty = r, true, false
	}
	return f.create
}

// Mutate is Get for a scenario that changes the VM and restores it: if the
// scenario fails, the next Get makes the VM again.
func (f *vmFixture) Mutate(s *S) Result {
	s.Helper()
	r := f.Get(s)
	s.Cleanup(func() {
		if s.Failed() {
			f.mu.Lock()
			f.dirty = true
			f.mu.Unlock()
		}
	})
	return r
}

// Take is Get for a scenario that deletes the VM: it is no longer the
// fixture's, and the next Get boots a new one.
func (f *vmFixture) Take(s *S) Result {
	s.Helper()
	r := f.Get(s)
	f.mu.Lock()
	f.booted = false
	f.mu.Unlock()
	return r
}

// liveFixtureVMs are the names of the fixture VMs that exist now, sorted.
func liveFixtureVMs() []string {
	var names []string
	for _, f := range vmFixtures {
		f.mu.Lock()
		if f.booted {
			names = append(names, f.name)
		}
		f.mu.Unlock()
	}
	sort.Strings(names)
	return names
}

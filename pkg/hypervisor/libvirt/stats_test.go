package libvirt

import (
	"testing"
	"time"

	"github.com/galevm/gale/pkg/hypervisor"
)

// TestAllStatsTestDriver runs AllStats against libvirt's test driver, which
// reports the state group only: names and Running are what it can check.
func TestAllStatsTestDriver(t *testing.T) {
	d := newTestDriver(t)
	ctx := ctxT(t)
	got, err := d.AllStats(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty host: %+v, %v", got, err)
	}
	for _, n := range []string{"web-0", "web-1"} {
		if err := d.Define(ctx, testSpec(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Start(ctx, "web-1"); err != nil {
		t.Fatal(err)
	}
	got, err = d.AllStats(ctx)
	if err != nil {
		t.Fatalf("AllStats: %v", err)
	}
	running := map[string]bool{}
	for _, s := range got {
		running[s.Name] = s.Running
	}
	if len(got) != 2 || running["web-0"] || !running["web-1"] {
		t.Fatalf("AllStats = %+v, want web-0 stopped and web-1 running", got)
	}

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.AllStats(ctx); err == nil {
		t.Error("AllStats on a closed driver succeeded")
	}
}

// TestStatsAcc feeds the fields a QEMU domain reports (virsh domstats) to
// the record parser.
func TestStatsAcc(t *testing.T) {
	fields := []struct {
		name string
		v    uint64
	}{
		{"state.state", 1}, {"state.reason", 1},
		{"cpu.time", 2_500_000_000}, {"cpu.user", 1_000_000_000}, {"cpu.system", 900_000_000},
		{"balloon.current", 1048576}, {"balloon.maximum", 1048576},
		{"balloon.unused", 700000}, {"balloon.available", 1000000}, {"balloon.rss", 300000},
		{"vcpu.current", 2}, {"vcpu.maximum", 4},
		{"vcpu.0.state", 1}, {"vcpu.0.time", 1_000_000_000},
		{"net.count", 2},
		{"net.0.rx.bytes", 100}, {"net.0.rx.pkts", 7}, {"net.0.tx.bytes", 200},
		{"net.1.rx.bytes", 1000}, {"net.1.tx.bytes", 2000},
		{"block.count", 2},
		{"block.0.rd.bytes", 4096}, {"block.0.rd.reqs", 1}, {"block.0.wr.bytes", 8192},
		{"block.0.allocation", 1 << 30}, {"block.0.capacity", 10 << 30},
		{"block.1.rd.bytes", 512}, {"block.1.wr.bytes", 0},
		{"block.x.rd.bytes", 99}, {"net..rx.bytes", 99}, // malformed: ignored
	}
	a := statsAcc{name: "web-0"}
	for _, f := range fields {
		a.add(f.name, f.v)
	}
	want := hypervisor.DomainStats{
		Name: "web-0", Running: true, VCPUs: 2, CPUTime: 2500 * time.Millisecond,
		NetRxBytes: 1100, NetTxBytes: 2200, BlockRdBytes: 4608, BlockWrBytes: 8192,
		MemAvailableKiB: 1000000, MemUnusedKiB: 700000, MemCurrentKiB: 1048576,
	}
	if got := a.result(); got != want {
		t.Errorf("result = %+v\nwant %+v", got, want)
	}

	// A stopped domain: state 5 (shutoff), no vcpu.current.
	b := statsAcc{name: "off"}
	b.add("state.state", 5)
	b.add("vcpu.maximum", 4)
	if got := b.result(); got.Running || got.VCPUs != 4 {
		t.Errorf("shutoff = %+v", got)
	}
	// Paused (3) is not running; no state at all is not running.
	c := statsAcc{name: "paused"}
	c.add("state.state", 3)
	if c.result().Running || (&statsAcc{}).result().Running {
		t.Error("paused or stateless domain reported running")
	}
}

package fake

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/hypervisor"
)

func TestAllStats(t *testing.T) {
	ctx := context.Background()
	d := New()
	d.SetStats("b", hypervisor.DomainStats{Name: "ignored", VCPUs: 4, CPUTime: 3 * time.Second, NetRxBytes: 10})
	d.SetStats("ghost", hypervisor.DomainStats{VCPUs: 1})
	for _, n := range []string{"a", "b"} {
		if err := d.Define(ctx, spec(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Start(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	got, err := d.AllStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []hypervisor.DomainStats{
		{Name: "a", VCPUs: 1},
		{Name: "b", Running: true, VCPUs: 4, CPUTime: 3 * time.Second, NetRxBytes: 10},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("AllStats = %+v, want %+v", got, want)
	}

	d.ClearStats("b")
	if got, _ := d.AllStats(ctx); got[1] != (hypervisor.DomainStats{Name: "b", Running: true, VCPUs: 1}) {
		t.Errorf("after ClearStats: %+v", got[1])
	}

	d.SetDown(true)
	if _, err := d.AllStats(ctx); !errors.Is(err, hypervisor.ErrUnavailable) {
		t.Errorf("down: err = %v, want ErrUnavailable", err)
	}
	d.SetDown(false)
	boom := errors.New("boom")
	d.FailNext("AllStats", boom)
	if _, err := d.AllStats(ctx); !errors.Is(err, boom) {
		t.Errorf("FailNext: err = %v", err)
	}

	// Tables are per driver.
	if got, _ := New().AllStats(ctx); len(got) != 0 {
		t.Errorf("new driver: %+v", got)
	}
}

package events

import (
	"testing"

	"github.com/galevm/gale/pkg/api"
)

func TestHubFiltersAndNeverBlocks(t *testing.T) {
	var h Hub
	all := h.Subscribe()
	sets := h.Subscribe("set")
	defer all.Close()
	h.Publish(api.BusEvent{Kind: "vm", Name: "a"})
	h.Publish(api.BusEvent{Kind: "set", Name: "web"})
	if got := (<-all.C).Name; got != "a" {
		t.Fatalf("all: first event %q, want a", got)
	}
	if got := (<-all.C).Name; got != "web" {
		t.Fatalf("all: second event %q, want web", got)
	}
	if got := (<-sets.C).Kind; got != "set" {
		t.Fatalf("sets: got kind %q, want set", got)
	}
	select {
	case ev := <-sets.C:
		t.Fatalf("sets: unexpected event %+v", ev)
	default:
	}
	for i := 0; i < Buffer+5; i++ {
		h.Publish(api.BusEvent{Kind: "set"})
	}
	if sets.Lost() != 5 {
		t.Fatalf("lost = %d, want 5", sets.Lost())
	}
	sets.Close()
	h.Publish(api.BusEvent{Kind: "set"})
	if len(sets.C) != Buffer {
		t.Fatalf("closed subscription got events: %d buffered", len(sets.C))
	}
}

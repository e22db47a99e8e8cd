package hypervisor

import (
	"fmt"
	"testing"
)

func TestBrokerDropsOldest(t *testing.T) {
	b := NewBroker(2)
	var dropped []string
	b.OnDrop = func(_ int, lost Event) { dropped = append(dropped, lost.Domain) }
	slow, cancelSlow := b.Subscribe()
	for i := 0; i < 5; i++ {
		b.Publish(Event{Domain: fmt.Sprint(i)}) // never blocks
	}
	if got := (<-slow).Domain + (<-slow).Domain; got != "34" {
		t.Fatalf("slow subscriber kept %q, want the newest two \"34\"", got)
	}
	if fmt.Sprint(dropped) != "[0 1 2]" {
		t.Fatalf("OnDrop saw %v, want [0 1 2]", dropped)
	}
	cancelSlow()
	cancelSlow() // idempotent
	if _, ok := <-slow; ok {
		t.Fatal("channel open after cancel")
	}
	b.Publish(Event{}) // no panic on a removed subscriber
	b.Close()
	late, _ := b.Subscribe()
	if _, ok := <-late; ok {
		t.Fatal("subscription after Close is open")
	}
}

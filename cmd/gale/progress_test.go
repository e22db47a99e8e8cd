package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/api"
)

func TestProgressLines(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b) // a buffer is not a terminal: one line per stage
	for _, ev := range streams["op-web"] {
		p.event(ev)
	}
	p.done()
	want := "[   0.2s] disk: overlay on debian-12\n[   3.0s] boot: waiting for the guest agent\n[  20.0s] cloud-init\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestProgressTerminal(t *testing.T) {
	var b bytes.Buffer
	p := &progress{w: &b, tty: true, stop: make(chan struct{})}
	p.stopped.Add(1)
	go p.tick()
	p.event(api.Event{Stage: "disk", Elapsed: api.Duration(time.Second)})
	p.event(api.Event{Stage: "disk", Message: "50%\nmore", Elapsed: api.Duration(2 * time.Second)})
	p.event(api.Event{Stage: "boot", Elapsed: api.Duration(4 * time.Second)})
	p.done()
	out := b.String()
	for _, s := range []string{"\r\x1b[K  ... disk (0.0s)", "  ... disk (1.0s): 50%", "\r\x1b[K  ok  disk (3.0s)\n", "  ... boot (0.0s)"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%q", s, out)
		}
	}
	if strings.Contains(out, "more") {
		t.Errorf("multi-line message not cut to its first line: %q", out)
	}
}

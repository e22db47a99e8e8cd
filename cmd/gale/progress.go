package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/galevm/gale/pkg/api"
)

// progress shows an operation's stages while gale waits for it. On a
// terminal it keeps one updating line for the current stage and leaves a
// line per finished stage; elsewhere it writes one line per stage as the
// stage starts.
type progress struct {
	w   io.Writer
	tty bool

	mu      sync.Mutex
	stage   string        // current stage
	msg     string        // its latest message
	base    time.Duration // elapsed time of the operation at the latest event
	at      time.Time     // when that event arrived
	stageAt time.Duration // elapsed time when the current stage began
	stop    chan struct{}
	stopped sync.WaitGroup
}

// newProgress returns a progress writing to w; on a terminal it refreshes
// the current line every second until done.
func newProgress(w io.Writer) *progress {
	p := &progress{w: w, tty: isTerminal(w), stop: make(chan struct{})}
	if p.tty {
		p.stopped.Add(1)
		go p.tick()
	}
	return p
}

// tick redraws the current line once a second.
func (p *progress) tick() {
	defer p.stopped.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.redraw()
			p.mu.Unlock()
		}
	}
}

// elapsed is the operation's elapsed time now, going on from the latest
// event's.
func (p *progress) elapsed() time.Duration {
	if p.at.IsZero() {
		return 0
	}
	return p.base + time.Since(p.at)
}

// redraw rewrites the terminal's current line. p.mu is held.
func (p *progress) redraw() {
	if !p.tty || p.stage == "" {
		return
	}
	line := fmt.Sprintf("  ... %s (%s)", p.stage, seconds(p.elapsed()-p.stageAt))
	if p.msg != "" {
		line += ": " + p.msg
	}
	fprintf(p.w, "\r\x1b[K%s", line)
}

// event records one event from the operation's stream.
func (p *progress) event(ev api.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.base, p.at = time.Duration(ev.Elapsed), time.Now()
	if ev.Stage != p.stage {
		p.finishStage()
		p.stage, p.stageAt, p.msg = ev.Stage, p.base, ""
		if !p.tty && !ev.Done {
			line := fmt.Sprintf("[%7s] %s", seconds(p.base), ev.Stage)
			if ev.Message != "" {
				line += ": " + ev.Message
			}
			fprintf(p.w, "%s\n", line)
		}
	}
	p.msg = oneLine(ev.Message)
	p.redraw()
}

// finishStage ends the terminal line of the current stage. p.mu is held.
func (p *progress) finishStage() {
	if p.tty && p.stage != "" {
		fprintf(p.w, "\r\x1b[K  ok  %s (%s)\n", p.stage, seconds(p.base-p.stageAt))
	}
}

// done stops the display and leaves the cursor on a fresh line.
func (p *progress) done() {
	if p.tty {
		close(p.stop)
		p.stopped.Wait()
		p.mu.Lock()
		if p.stage != "" {
			fprintf(p.w, "\r\x1b[K")
		}
		p.mu.Unlock()
	}
}

// oneLine returns the first line of s.
func oneLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

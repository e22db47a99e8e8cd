package vm

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/hypervisor"
)

func TestWaitReadyForModes(t *testing.T) {
	readyPollInterval = 5 * time.Millisecond
	// A listener on loopback stands in for the guest's service port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	openPort := ln.Addr().(*net.TCPAddr).Port
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	tests := []struct {
		name    string
		check   ReadyCheck
		agent   bool  // agent answers
		stopped bool  // domain powers off
		wantErr error // nil: ready
		timeout bool  // expect ctx's deadline
	}{
		{name: "agent answers", check: ReadyCheck{Mode: ReadyAgent}, agent: true},
		{name: "agent never answers", check: ReadyCheck{Mode: ReadyAgent}, timeout: true},
		{name: "port open", check: ReadyCheck{Mode: ReadyTCP, Port: openPort}},
		{name: "port closed", check: ReadyCheck{Mode: ReadyTCP, Port: closedPort}, timeout: true},
		{name: "boot only", check: ReadyCheck{Mode: ReadyBoot}},
		{name: "stopped before ready", check: ReadyCheck{Mode: ReadyAgent}, stopped: true, wantErr: ErrStoppedBeforeReady},
		{name: "bad port", check: ReadyCheck{Mode: ReadyTCP, Port: 70000}, wantErr: ErrInvalid},
		{name: "unknown mode", check: ReadyCheck{Mode: "telepathy"}, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, d, tmpl := newTestEngine(t)
			if _, err := e.Create(context.Background(), CreateRequest{Name: "vm1", Template: tmpl, Network: "testnet"}); err != nil {
				t.Fatal(err)
			}
			d.SetAgentPing(func(context.Context, string) error {
				if tt.agent {
					return nil
				}
				return hypervisor.ErrAgentUnavailable
			})
			d.SetAddresses("vm1", []hypervisor.Address{{IP: net.ParseIP("127.0.0.1"), Source: hypervisor.SourceLease}})
			if tt.stopped {
				d.SetState("vm1", hypervisor.StateShutoff)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			var stages []Stage
			_, err := WaitReadyFor(ctx, d, "vm1", tt.check, func(p Progress) { stages = append(stages, p.Stage) })
			switch {
			case tt.timeout:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v, want the deadline", err)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			default:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if len(stages) != 2 || stages[0] != StageBooting || stages[1] != StageReady {
					t.Fatalf("stages = %v, want booting, ready", stages)
				}
			}
		})
	}
}

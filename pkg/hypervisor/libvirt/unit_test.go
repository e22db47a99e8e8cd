package libvirt

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	lv "libvirt.org/go/libvirt"

	"github.com/galevm/gale/pkg/hypervisor"
)

func TestWrapErr(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		agent bool
		want  error // nil: no sentinel
		conn  bool
	}{
		{name: "no domain", err: lv.Error{Code: lv.ERR_NO_DOMAIN, Message: "no domain"}, want: hypervisor.ErrNotFound},
		{name: "no network", err: lv.Error{Code: lv.ERR_NO_NETWORK}, want: hypervisor.ErrNotFound},
		{name: "dom exist", err: lv.Error{Code: lv.ERR_DOM_EXIST}, want: hypervisor.ErrExists},
		{name: "operation failed already exists", err: lv.Error{Code: lv.ERR_OPERATION_FAILED, Message: "domain 'x' already exists with uuid"}, want: hypervisor.ErrExists},
		{name: "invalid conn", err: lv.Error{Code: lv.ERR_INVALID_CONN}, want: hypervisor.ErrUnavailable, conn: true},
		{name: "rpc system error", err: lv.Error{Code: lv.ERR_SYSTEM_ERROR, Domain: lv.FROM_RPC, Message: "Cannot recv data"}, want: hypervisor.ErrUnavailable, conn: true},
		{name: "rpc internal", err: lv.Error{Code: lv.ERR_INTERNAL_ERROR, Domain: lv.FROM_RPC, Message: "client socket is closed"}, want: hypervisor.ErrUnavailable, conn: true},
		{name: "qemu system error is not a connection error", err: lv.Error{Code: lv.ERR_SYSTEM_ERROR, Domain: lv.FROM_QEMU, Message: "permission denied"}},
		{name: "agent unresponsive", err: lv.Error{Code: lv.ERR_AGENT_UNRESPONSIVE, Message: "QEMU guest agent is not connected"}, agent: true, want: hypervisor.ErrAgentUnavailable},
		{name: "agent unsynced", err: lv.Error{Code: lv.ERR_AGENT_UNSYNCED}, agent: true, want: hypervisor.ErrAgentUnavailable},
		{name: "agent timeout", err: lv.Error{Code: lv.ERR_OPERATION_TIMEOUT}, agent: true, want: hypervisor.ErrAgentUnavailable},
		{name: "agent not configured", err: lv.Error{Code: lv.ERR_ARGUMENT_UNSUPPORTED, Message: "QEMU guest agent is not configured"}, agent: true, want: hypervisor.ErrAgentUnavailable},
		{name: "agent domain not running", err: lv.Error{Code: lv.ERR_OPERATION_INVALID, Message: "domain is not running"}, agent: true, want: hypervisor.ErrAgentUnavailable},
		{name: "agent command failed is not unavailability", err: lv.Error{Code: lv.ERR_AGENT_COMMAND_FAILED, Message: "No such file"}, agent: true},
		{name: "agent call on missing domain", err: lv.Error{Code: lv.ERR_NO_DOMAIN}, agent: true, want: hypervisor.ErrNotFound},
		{name: "plain error", err: errors.New("boom")},
	}
	sentinels := []error{hypervisor.ErrNotFound, hypervisor.ErrExists, hypervisor.ErrUnavailable, hypervisor.ErrAgentUnavailable}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got error
			if tt.agent {
				got = wrapAgentErr(`op "x"`, tt.err)
			} else {
				got = wrapErr(`op "x"`, tt.err)
			}
			if !strings.HasPrefix(got.Error(), `op "x": `) {
				t.Errorf("no context: %v", got)
			}
			for _, s := range sentinels {
				if errors.Is(got, s) != (s == tt.want) {
					t.Errorf("errors.Is(%v, %v) = %v", got, s, !(s == tt.want))
				}
			}
			if le, ok := tt.err.(lv.Error); ok && !errors.Is(got, le.Code) {
				t.Errorf("libvirt code lost from %v", got)
			}
			if isConnectionError(tt.err) != tt.conn {
				t.Errorf("isConnectionError = %v, want %v", !tt.conn, tt.conn)
			}
		})
	}
	if wrapErr("op", nil) != nil {
		t.Error("wrapErr(nil) != nil")
	}
}

func TestEventKind(t *testing.T) {
	tests := []struct {
		ev     lv.DomainEventType
		detail int
		kind   hypervisor.EventKind
		text   string
	}{
		{lv.DOMAIN_EVENT_DEFINED, 0, hypervisor.EventDefined, "added"},
		{lv.DOMAIN_EVENT_UNDEFINED, 0, hypervisor.EventUndefined, "removed"},
		{lv.DOMAIN_EVENT_STARTED, 0, hypervisor.EventStarted, "booted"},
		{lv.DOMAIN_EVENT_STOPPED, int(lv.DOMAIN_EVENT_STOPPED_DESTROYED), hypervisor.EventStopped, "destroyed"},
		{lv.DOMAIN_EVENT_STOPPED, int(lv.DOMAIN_EVENT_STOPPED_CRASHED), hypervisor.EventCrashed, "crashed"},
		{lv.DOMAIN_EVENT_SUSPENDED, 0, hypervisor.EventSuspended, "paused"},
		{lv.DOMAIN_EVENT_RESUMED, 0, hypervisor.EventResumed, "unpaused"},
		{lv.DOMAIN_EVENT_CRASHED, 0, hypervisor.EventCrashed, "panicked"},
		{lv.DOMAIN_EVENT_SHUTDOWN, 1, hypervisor.EventOther, "shutdown-guest"},
		{lv.DOMAIN_EVENT_STARTED, 99, hypervisor.EventStarted, "99"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d-%d", tt.ev, tt.detail), func(t *testing.T) {
			kind, text := eventKind(tt.ev, tt.detail)
			if kind != tt.kind || text != tt.text {
				t.Fatalf("got %s/%s, want %s/%s", kind, text, tt.kind, tt.text)
			}
		})
	}
}

// scriptedAgent answers guest-exec and a sequence of guest-exec-status replies.
type scriptedAgent struct {
	replies []string
	errs    []error
	cmds    []string
}

func (s *scriptedAgent) call(_ context.Context, cmd string) (string, error) {
	s.cmds = append(s.cmds, cmd)
	i := len(s.cmds) - 1
	if i < len(s.errs) && s.errs[i] != nil {
		return "", s.errs[i]
	}
	if i >= len(s.replies) {
		return `{"return":{"exited":false}}`, nil
	}
	return s.replies[i], nil
}

func TestGuestExec(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name     string
		req      hypervisor.ExecRequest
		agent    *scriptedAgent
		timeout  time.Duration
		want     hypervisor.ExecResult
		wantErr  error
		wantCmd0 string
	}{
		{
			name: "output and exit code",
			req:  hypervisor.ExecRequest{Path: "/bin/sh", Args: []string{"-c", "echo hi; exit 3"}},
			agent: &scriptedAgent{replies: []string{
				`{"return":{"pid":42}}`,
				`{"return":{"exited":false}}`,
				`{"return":{"exited":true,"exitcode":3,"out-data":"` + b64("hi\n") + `","err-data":"` + b64("warn") + `"}}`,
			}},
			want:     hypervisor.ExecResult{ExitCode: 3, Stdout: []byte("hi\n"), Stderr: []byte("warn")},
			wantCmd0: `{"execute":"guest-exec","arguments":{"path":"/bin/sh","arg":["-c","echo hi; exit 3"],"capture-output":true}}`,
		},
		{
			name: "stdin is base64",
			req:  hypervisor.ExecRequest{Path: "/bin/cat", Stdin: []byte("data")},
			agent: &scriptedAgent{replies: []string{
				`{"return":{"pid":1}}`,
				`{"return":{"exited":true,"exitcode":0,"out-data":"` + b64("data") + `"}}`,
			}},
			want:     hypervisor.ExecResult{Stdout: []byte("data")},
			wantCmd0: `{"execute":"guest-exec","arguments":{"path":"/bin/cat","input-data":"` + b64("data") + `","capture-output":true}}`,
		},
		{
			name: "killed by signal",
			req:  hypervisor.ExecRequest{Path: "/bin/sleep"},
			agent: &scriptedAgent{replies: []string{
				`{"return":{"pid":7}}`, `{"return":{"exited":true,"signal":9}}`,
			}},
			want: hypervisor.ExecResult{ExitCode: 137, Signal: 9},
		},
		{
			name:    "agent gone",
			req:     hypervisor.ExecRequest{Path: "/bin/true"},
			agent:   &scriptedAgent{errs: []error{lv.Error{Code: lv.ERR_AGENT_UNRESPONSIVE}}},
			wantErr: lv.ERR_AGENT_UNRESPONSIVE,
		},
		{
			name:    "never exits",
			req:     hypervisor.ExecRequest{Path: "/bin/sleep"},
			agent:   &scriptedAgent{replies: []string{`{"return":{"pid":7}}`}},
			timeout: 200 * time.Millisecond,
			wantErr: context.DeadlineExceeded,
		},
		{
			name:    "empty path",
			req:     hypervisor.ExecRequest{},
			agent:   &scriptedAgent{},
			wantErr: hypervisor.ErrInvalidSpec,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			got, err := guestExec(ctx, tt.agent.call, tt.req)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ExitCode != tt.want.ExitCode || got.Signal != tt.want.Signal ||
				string(got.Stdout) != string(tt.want.Stdout) || string(got.Stderr) != string(tt.want.Stderr) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if tt.wantCmd0 != "" && tt.agent.cmds[0] != tt.wantCmd0 {
				t.Errorf("guest-exec command = %s, want %s", tt.agent.cmds[0], tt.wantCmd0)
			}
			if last := tt.agent.cmds[len(tt.agent.cmds)-1]; !strings.Contains(last, `"guest-exec-status"`) {
				t.Errorf("last command %s is not guest-exec-status", last)
			}
		})
	}
}

func TestAddressHelpers(t *testing.T) {
	leases := []lv.NetworkDHCPLease{
		{Mac: "52:54:00:AA:00:01", IPaddr: "10.0.0.5", Prefix: 24},
		{Mac: "52:54:00:aa:00:02", IPaddr: "10.0.0.6", Prefix: 24},
		{Mac: "52:54:00:aa:00:01", IPaddr: "bogus", Prefix: 24},
	}
	got := matchLeases(leases, []string{"52:54:00:aa:00:01"})
	if len(got) != 1 || got[0].IP.String() != "10.0.0.5" || got[0].Source != hypervisor.SourceLease || got[0].Prefix != 24 {
		t.Fatalf("matchLeases = %+v", got)
	}
	ifaces := []lv.DomainInterface{
		{Name: "lo", Hwaddr: "00:00:00:00:00:00", Addrs: []lv.DomainIPAddress{{Addr: "127.0.0.1", Prefix: 8}}},
		{Name: "eth0", Hwaddr: "52:54:00:AA:00:01", Addrs: []lv.DomainIPAddress{
			{Addr: "10.0.0.5", Prefix: 24}, {Addr: "fe80::1", Prefix: 64}, {Addr: "fd00::5", Prefix: 64},
		}},
	}
	ag := agentAddresses(ifaces)
	if len(ag) != 2 || ag[0].MAC != "52:54:00:aa:00:01" || ag[1].IP.String() != "fd00::5" || ag[0].Source != hypervisor.SourceAgent {
		t.Fatalf("agentAddresses = %+v", ag)
	}
}

func TestNetworkFromXML(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want hypervisor.Network
	}{
		{"libvirt default", `<network><name>default</name><forward mode="nat"/><bridge name="virbr0"/><ip address="192.168.122.1" netmask="255.255.255.0"><dhcp><range start="192.168.122.2" end="192.168.122.254"/></dhcp></ip></network>`,
			hypervisor.Network{Name: "default", Mode: hypervisor.NetworkNAT, Bridge: "virbr0", CIDR: "192.168.122.1/24"}},
		{"isolated with v6 first", `<network><name>iso</name><bridge name="br1"/><ip family="ipv6" address="fd00::1" prefix="64"/><ip address="10.1.0.1" prefix="16"/></network>`,
			hypervisor.Network{Name: "iso", Mode: hypervisor.NetworkIsolated, Bridge: "br1", CIDR: "10.1.0.1/16"}},
		{"route", `<network><name>r</name><forward mode="route"/></network>`,
			hypervisor.Network{Name: "r", Mode: "route"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := networkFromXML(tt.doc, false)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if b := bridgeName(hypervisor.NetworkSpec{Name: strings.Repeat("x", 63)}); len(b) > 15 || !strings.HasPrefix(b, "gale-") {
		t.Errorf("generated bridge %q", b)
	}
}

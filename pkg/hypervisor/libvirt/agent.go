package libvirt

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	lv "libvirt.org/go/libvirt"

	"github.com/galevm/gale/pkg/hypervisor"
)

// agentCaller sends one guest-agent command (JSON) and returns its reply.
type agentCaller func(ctx context.Context, cmd string) (string, error)

// agentTimeout converts ctx's deadline into the whole seconds
// QemuAgentCommand takes (at least 1), or libvirt's default without one.
func agentTimeout(ctx context.Context) lv.DomainQemuAgentCommandTimeout {
	dl, ok := ctx.Deadline()
	if !ok {
		return lv.DOMAIN_QEMU_AGENT_COMMAND_DEFAULT
	}
	secs := math.Ceil(time.Until(dl).Seconds())
	if secs < 1 {
		secs = 1
	}
	return lv.DomainQemuAgentCommandTimeout(secs)
}

// agent returns an agentCaller for the named domain.
func (d *Driver) agent(name string) agentCaller {
	return func(ctx context.Context, cmd string) (string, error) {
		var reply string
		err := d.withDomain(ctx, name, func(_ *lv.Connect, dom *lv.Domain) error {
			var err error
			reply, err = dom.QemuAgentCommand(cmd, agentTimeout(ctx), 0)
			return err
		})
		return reply, err
	}
}

// AgentPing sends guest-ping. It returns hypervisor.ErrAgentUnavailable
// (wrapped) when the agent is not connected or does not answer in time.
func (d *Driver) AgentPing(ctx context.Context, name string) error {
	_, err := d.agent(name)(ctx, `{"execute":"guest-ping"}`)
	return wrapAgentErr(fmt.Sprintf("ping guest agent of %q", name), err)
}

// AgentExec runs req in the guest with guest-exec (capturing output) and
// polls guest-exec-status until the process exits or ctx ends.
func (d *Driver) AgentExec(ctx context.Context, name string, req hypervisor.ExecRequest) (hypervisor.ExecResult, error) {
	res, err := guestExec(ctx, d.agent(name), req)
	if err != nil {
		return res, wrapAgentErr(fmt.Sprintf("exec %q in guest %q", req.Path, name), err)
	}
	return res, nil
}

type guestExecArgs struct {
	Path          string   `json:"path"`
	Arg           []string `json:"arg,omitempty"`
	InputData     string   `json:"input-data,omitempty"`
	CaptureOutput bool     `json:"capture-output"`
}

type agentCommand struct {
	Execute   string `json:"execute"`
	Arguments any    `json:"arguments,omitempty"`
}

type guestExecStatus struct {
	Exited       bool   `json:"exited"`
	ExitCode     *int   `json:"exitcode"`
	Signal       *int   `json:"signal"`
	OutData      string `json:"out-data"`
	ErrData      string `json:"err-data"`
	OutTruncated bool   `json:"out-truncated"`
	ErrTruncated bool   `json:"err-truncated"`
}

// execPollMin and execPollMax bound the guest-exec-status polling interval.
const (
	execPollMin = 50 * time.Millisecond
	execPollMax = 500 * time.Millisecond
)

// guestExec is AgentExec's protocol logic over any agentCaller.
func guestExec(ctx context.Context, call agentCaller, req hypervisor.ExecRequest) (hypervisor.ExecResult, error) {
	if req.Path == "" {
		return hypervisor.ExecResult{}, fmt.Errorf("exec: empty path: %w", hypervisor.ErrInvalidSpec)
	}
	args := guestExecArgs{Path: req.Path, Arg: req.Args, CaptureOutput: true}
	if len(req.Stdin) > 0 {
		args.InputData = base64.StdEncoding.EncodeToString(req.Stdin)
	}
	cmd, err := json.Marshal(agentCommand{Execute: "guest-exec", Arguments: args})
	if err != nil {
		return hypervisor.ExecResult{}, fmt.Errorf("encode guest-exec: %w", err)
	}
	reply, err := call(ctx, string(cmd))
	if err != nil {
		return hypervisor.ExecResult{}, err
	}
	var started struct {
		Return struct {
			PID *int `json:"pid"`
		} `json:"return"`
	}
	if err := json.Unmarshal([]byte(reply), &started); err != nil || started.Return.PID == nil {
		return hypervisor.ExecResult{}, fmt.Errorf("unexpected guest-exec reply %q: %v", reply, err)
	}
	statusCmd, _ := json.Marshal(agentCommand{Execute: "guest-exec-status", Arguments: map[string]int{"pid": *started.Return.PID}})
	wait := execPollMin
	for {
		reply, err := call(ctx, string(statusCmd))
		if err != nil {
			return hypervisor.ExecResult{}, fmt.Errorf("guest-exec-status pid %d: %w", *started.Return.PID, err)
		}
		var st struct {
			Return guestExecStatus `json:"return"`
		}
		if err := json.Unmarshal([]byte(reply), &st); err != nil {
			return hypervisor.ExecResult{}, fmt.Errorf("unexpected guest-exec-status reply %q: %w", reply, err)
		}
		if st.Return.Exited {
			return execResult(st.Return)
		}
		select {
		case <-ctx.Done():
			return hypervisor.ExecResult{}, fmt.Errorf("waiting for pid %d: %w", *started.Return.PID, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, execPollMax)
	}
}

// execResult decodes a finished guest-exec-status.
func execResult(st guestExecStatus) (hypervisor.ExecResult, error) {
	var res hypervisor.ExecResult
	var errs []error
	var err error
	if res.Stdout, err = base64.StdEncoding.DecodeString(st.OutData); err != nil {
		errs = append(errs, fmt.Errorf("decode out-data: %w", err))
	}
	if res.Stderr, err = base64.StdEncoding.DecodeString(st.ErrData); err != nil {
		errs = append(errs, fmt.Errorf("decode err-data: %w", err))
	}
	if st.ExitCode != nil {
		res.ExitCode = *st.ExitCode
	}
	if st.Signal != nil {
		res.Signal = *st.Signal
		if st.ExitCode == nil {
			res.ExitCode = 128 + *st.Signal
		}
	}
	if len(res.Stdout) == 0 {
		res.Stdout = nil
	}
	if len(res.Stderr) == 0 {
		res.Stderr = nil
	}
	return res, errors.Join(errs...)
}

package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"time"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/store"
)

// Get returns one VM with live state and addresses from the driver. The
// addresses are cached in the row for List.
func (s *Service) Get(ctx context.Context, name string) (api.VM, error) {
	row, err := s.row(ctx, name)
	if err != nil {
		return api.VM{}, err
	}
	var dom *hypervisor.Domain
	d, err := s.drv.Get(ctx, name)
	switch {
	case err == nil:
		dom = &d
	case !errors.Is(err, hypervisor.ErrNotFound):
		return api.VM{}, fmt.Errorf("get %q: %w", name, err)
	}
	if dom != nil && dom.State == hypervisor.StateRunning && row.Phase == store.PhaseNone {
		if addrs, err := s.drv.Addresses(ctx, name); err == nil {
			ips := make([]string, 0, len(addrs))
			for _, a := range addrs {
				ips = append(ips, a.IP.String())
			}
			if len(ips) > 0 && !slices.Equal(ips, row.Addresses) {
				row.Addresses = ips
				s.update(name, func(v *store.VM) { v.Addresses = ips })
			}
		}
	}
	return s.view(row, dom), nil
}

// List returns every VM with one store query and one driver List call;
// addresses are the ones cached in the rows.
func (s *Service) List(ctx context.Context) ([]api.VM, error) {
	rows, err := s.cfg.Store.ListVMs(ctx)
	if err != nil {
		return nil, err
	}
	// Everything but the run state is in the store: one cheap libvirt call.
	states, err := s.drv.States(ctx)
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	out := make([]api.VM, 0, len(rows))
	for _, r := range rows {
		var dom *hypervisor.Domain
		if st, ok := states[r.Name]; ok {
			dom = &hypervisor.Domain{Name: r.Name, State: st}
		}
		out = append(out, s.view(r, dom))
	}
	return out, nil
}

func (s *Service) view(r store.VM, dom *hypervisor.Domain) api.VM {
	v := api.VM{
		Name: r.Name, ID: r.ID, State: liveState(r, dom), Image: r.Image, CPUs: r.CPUs, MemoryMiB: r.MemoryMiB,
		DiskBytes: r.DiskBytes, Network: r.Network, MAC: r.MAC, CloudInit: r.CloudInit, Error: r.Error,
		CreatedAt: r.CreatedAt, ReadyAfter: api.Duration(r.ReadyAfter), Operation: s.cfg.Ops.Active(target(r.Name)),
		Made: r.Made, Parent: r.Parent, Set: SetOf(r.Owner),
	}
	if v.State == api.StateRunning || v.State == api.StateCreating {
		v.Addresses = r.Addresses
	}
	if v.CloudInit == "" {
		v.CloudInit = api.CloudInitPending
	}
	return v
}

// Exec runs a command in a running VM through the guest agent and waits for
// it (default timeout 5 minutes). A program that is not an absolute path is
// run through /usr/bin/env, so the guest's PATH finds it.
func (s *Service) Exec(ctx context.Context, name string, req api.ExecRequest) (api.ExecResponse, error) {
	if len(req.Command) == 0 || req.Command[0] == "" {
		return api.ExecResponse{}, fmt.Errorf("%w: exec: empty command", ErrInvalid)
	}
	if _, err := s.row(ctx, name); err != nil {
		return api.ExecResponse{}, err
	}
	timeout := time.Duration(req.Timeout)
	if timeout <= 0 {
		timeout = DefaultExecTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hreq := hypervisor.ExecRequest{Path: req.Command[0], Args: req.Command[1:], Stdin: req.Stdin}
	if !path.IsAbs(hreq.Path) {
		hreq = hypervisor.ExecRequest{Path: "/usr/bin/env", Args: req.Command, Stdin: req.Stdin}
	}
	res, err := s.drv.AgentExec(ctx, name, hreq)
	if err != nil {
		if errors.Is(err, hypervisor.ErrAgentUnavailable) {
			return api.ExecResponse{}, fmt.Errorf("%w: exec in %q: %w", ErrNotRunning, name, err)
		}
		return api.ExecResponse{}, fmt.Errorf("exec in %q: %w", name, err)
	}
	return api.ExecResponse{ExitCode: res.ExitCode, Signal: res.Signal, Stdout: res.Stdout, Stderr: res.Stderr}, nil
}

// consoleTailBytes bounds how much of the serial console Logs returns.
const consoleTailBytes = 256 << 10

// Logs returns cloud-init's output log from the guest. A guest without one
// (no cloud-init, or no guest agent to read it through) gets the end of its
// serial console instead, under a first line that says so.
func (s *Service) Logs(ctx context.Context, name string) ([]byte, error) {
	res, err := s.Exec(ctx, name, api.ExecRequest{Command: []string{"/bin/cat", outputLogPath}, Timeout: api.Duration(30 * time.Second)})
	if err == nil && res.ExitCode == 0 {
		return res.Stdout, nil
	}
	if err != nil && !errors.Is(err, ErrNotRunning) {
		return nil, err
	}
	why := "the guest agent does not answer"
	if err == nil {
		why = fmt.Sprintf("the guest has no %s", outputLogPath)
	}
	console, cerr := tailFile(s.cfg.Engine.Paths(name).ConsoleLog, consoleTailBytes)
	if cerr != nil {
		return nil, fmt.Errorf("logs of %q: %s, and its serial console log cannot be read: %w", name, why, cerr)
	}
	return append([]byte(fmt.Sprintf("# serial console of %s (%s)\n", name, why)), console...), nil
}

// tailFile returns at most the last n bytes of the file at path.
func tailFile(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(st.Size()-n, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf, nil
}

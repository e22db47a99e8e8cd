package vm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/galevm/gale/pkg/hypervisor"
)

// WaitReadyFor waits until the VM is ready by check's mode:
//   - ReadyCloudInit (or ""): WaitReady, the guest agent then cloud-init;
//   - ReadyAgent: the guest agent answers a ping;
//   - ReadyTCP: the guest has an address and check.Port on it accepts a TCP
//     connection (the connection is closed at once, nothing is sent);
//   - ReadyBoot: the domain is running.
//
// Every mode fails at once with ErrStoppedBeforeReady when the domain powers
// off or crashes, and returns ctx's error when ctx ends first. Progress gets
// StageBooting first and StageReady last.
func WaitReadyFor(ctx context.Context, d hypervisor.Driver, name string, check ReadyCheck, progress func(Progress)) (Readiness, error) {
	switch check.Mode {
	case "", ReadyCloudInit:
		return WaitReady(ctx, d, name, progress)
	case ReadyAgent, ReadyTCP, ReadyBoot:
	default:
		return Readiness{}, fmt.Errorf("%w: unknown readiness mode %q", ErrInvalid, check.Mode)
	}
	if check.Mode == ReadyTCP && (check.Port < 1 || check.Port > 65535) {
		return Readiness{}, fmt.Errorf("%w: ready port %d is not a TCP port", ErrInvalid, check.Port)
	}
	start := time.Now()
	report := func(s Stage) {
		if progress != nil {
			progress(Progress{Stage: s, Elapsed: time.Since(start)})
		}
	}
	report(StageBooting)
	tick := time.NewTicker(readyPollInterval)
	defer tick.Stop()
	var res Readiness
	for {
		dom, err := d.Get(ctx, name)
		switch {
		case err == nil && (dom.State == hypervisor.StateShutoff || dom.State == hypervisor.StateCrashed):
			return res, fmt.Errorf("%w: %q is %s", ErrStoppedBeforeReady, name, dom.State)
		case err == nil && dom.State == hypervisor.StateRunning:
			ok, perr := probe(ctx, d, name, check)
			if perr != nil {
				return res, perr
			}
			if ok {
				res.DoneAfter = time.Since(start)
				if check.Mode == ReadyAgent {
					res.AgentAfter = res.DoneAfter
				}
				report(StageReady)
				return res, nil
			}
		case err != nil && !errors.Is(err, hypervisor.ErrUnavailable):
			return res, fmt.Errorf("wait for %q: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
	}
}

// probe asks once whether a running guest is ready by check's mode.
func probe(ctx context.Context, d hypervisor.Driver, name string, check ReadyCheck) (bool, error) {
	switch check.Mode {
	case ReadyBoot:
		return true, nil
	case ReadyAgent:
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		err := d.AgentPing(pctx, name)
		if err == nil {
			return true, nil
		}
		if errors.Is(err, hypervisor.ErrAgentUnavailable) || errors.Is(err, hypervisor.ErrUnavailable) || pctx.Err() != nil {
			return false, nil
		}
		return false, fmt.Errorf("ping guest agent of %q: %w", name, err)
	}
	addrs, err := d.Addresses(ctx, name)
	if err != nil && !errors.Is(err, hypervisor.ErrAgentUnavailable) {
		return false, fmt.Errorf("addresses of %q: %w", name, err)
	}
	for _, a := range addrs {
		var dialer net.Dialer
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := dialer.DialContext(dctx, "tcp", net.JoinHostPort(a.IP.String(), strconv.Itoa(check.Port)))
		cancel()
		if err == nil {
			_ = conn.Close()
			return true, nil
		}
	}
	return false, nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/client"
)

func vmWaitCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:      "wait",
		Usage:     "wait until a VM is running and cloud-init has finished",
		ArgsUsage: "NAME",
		Description: `Follows the VM's operation in progress, if any, then asks galed until the
VM is running and cloud-init is done. Exits 1 if cloud-init failed or the
VM is stopped, failed or broken; 8 if --timeout passes first.

EXAMPLES:
   gale vm create web --image debian-12 --no-wait && gale vm wait web
   gale vm wait web --timeout 5m`,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "timeout", Usage: "give up after this long, e.g. 5m", DefaultText: "no limit"},
		},
		Action: func(c *cli.Context) error {
			name, err := nameArg(c)
			if err != nil {
				return err
			}
			cl := clientFrom(c)
			if err := waitReady(c, cl, name, c.Duration("timeout"), d.pollInterval); err != nil {
				return err
			}
			return reportReady(c, cl, name)
		},
	}
}

// waitReady waits until the VM is running with cloud-init done.
func waitReady(c *cli.Context, cl *client.Client, name string, timeout, poll time.Duration) error {
	ctx, cancel := withTimeout(c.Context, timeout)
	defer cancel()
	watched := map[string]bool{}
	for {
		vm, err := cl.GetVM(ctx, name)
		if err != nil {
			return waitError(c.Context, ctx, name, timeout, fmt.Errorf("wait for vm %s: %w", name, err))
		}
		if op := vm.Operation; op != "" && !watched[op] {
			watched[op] = true
			p := newProgress(c.App.Writer)
			err := cl.WatchOperation(ctx, op, p.event)
			p.done()
			if err != nil {
				return waitError(c.Context, ctx, name, timeout, fmt.Errorf("wait for vm %s: %w", name, err))
			}
			continue
		}
		switch {
		case vm.State == api.StateRunning && vm.CloudInit == api.CloudInitDone:
			return nil
		case vm.State == api.StateRunning && vm.CloudInit == api.CloudInitError:
			return fmt.Errorf("vm %s is running but cloud-init failed: see `gale vm logs %s`", name, name)
		case vm.State == api.StateStopped:
			return fmt.Errorf("vm %s is stopped: start it with `gale vm start %s`", name, name)
		case vm.State == api.StateFailed, vm.State == api.StateBroken:
			return fmt.Errorf("vm %s is %s: %s (see `gale vm show %s`, `gale vm logs %s`)",
				name, vm.State, orDash(vm.Error), name, name)
		case vm.State == api.StateDeleting:
			return fmt.Errorf("vm %s is being deleted", name)
		}
		select {
		case <-ctx.Done():
			return waitError(c.Context, ctx, name, timeout, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// waitOperation follows op, showing its stages, until it finishes, timeout
// passes (0: no limit) or the user interrupts.
func waitOperation(c *cli.Context, cl *client.Client, op *api.Operation, timeout time.Duration) error {
	ctx, cancel := withTimeout(c.Context, timeout)
	defer cancel()
	p := newProgress(c.App.Writer)
	err := cl.WatchOperation(ctx, op.ID, p.event)
	p.done()
	if err != nil {
		return waitError(c.Context, ctx, op.Target, timeout, err)
	}
	return nil
}

// withTimeout is context.WithTimeout, without a limit for timeout 0.
func withTimeout(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, timeout)
}

// waitError explains an error that ended a wait: the --timeout passed, or
// the user interrupted (parent ended); the work goes on in galed either way.
func waitError(parent, ctx context.Context, name string, timeout time.Duration, err error) error {
	switch {
	case parent.Err() != nil:
		return &interruptedError{msg: fmt.Sprintf(
			"stopped waiting; galed carries on with vm %s: follow it with `gale vm wait %s`", name, name)}
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &timeoutError{msg: fmt.Sprintf(
			"gave up waiting for vm %s after %s (--timeout); galed carries on: `gale vm wait %s`, `gale vm logs %s`",
			name, timeout, name, name)}
	}
	return err
}

// reportReady prints that the VM is ready, how long it took and how to
// reach it.
func reportReady(c *cli.Context, cl *client.Client, name string) error {
	vm, err := cl.GetVM(c.Context, name)
	if err != nil {
		return fmt.Errorf("vm %s: %w", name, err)
	}
	line := fmt.Sprintf("vm %s is ready", name)
	if vm.ReadyAfter > 0 {
		line += " after " + seconds(time.Duration(vm.ReadyAfter))
	}
	if addr := firstAddress(*vm); addr != "" {
		line += fmt.Sprintf(" at %s: gale vm ssh %s", addr, name)
	}
	fprintf(c.App.Writer, "%s\n", line)
	return nil
}

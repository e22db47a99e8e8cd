package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/client"
)

// lifecycleFlags are the flags start, stop, restart and delete share.
func lifecycleFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "no-wait", Usage: "print the operation id and return at once"},
	}
}

func vmStartCommand() *cli.Command {
	return &cli.Command{
		Name:      "start",
		Usage:     "start a stopped VM",
		ArgsUsage: "NAME",
		Description: `EXAMPLES:
   gale vm start web`,
		Flags: lifecycleFlags(),
		Action: func(c *cli.Context) error {
			return runLifecycle(c, "start", "started", func(cl *client.Client, name string) (*api.Operation, error) {
				return cl.StartVM(c.Context, name)
			})
		},
	}
}

// vmStopCommand is `gale vm stop` or `gale vm restart` (verb).
func vmStopCommand(verb string) *cli.Command {
	usage, done := "shut a VM down (ACPI, then power off after --timeout)", "stopped"
	if verb == "restart" {
		usage, done = "shut a VM down and start it again", "restarted"
	}
	return &cli.Command{
		Name:      verb,
		Usage:     usage,
		ArgsUsage: "NAME",
		Description: fmt.Sprintf(`Asks the guest to shut down (ACPI) and powers it off if it has not after
--timeout (galed's default 60s); --force powers it off at once.

EXAMPLES:
   gale vm %[1]s web
   gale vm %[1]s web --timeout 2m
   gale vm %[1]s web --force`, verb),
		Flags: append(lifecycleFlags(),
			&cli.BoolFlag{Name: "force", Usage: "power off at once instead of asking the guest"},
			&cli.DurationFlag{Name: "timeout", Usage: "grace period for the guest to shut down before it is powered off, e.g. 30s", DefaultText: "galed's, 60s"},
		),
		Action: func(c *cli.Context) error {
			req := api.StopVMRequest{Force: c.Bool("force"), Timeout: api.Duration(c.Duration("timeout"))}
			return runLifecycle(c, verb, done, func(cl *client.Client, name string) (*api.Operation, error) {
				if verb == "restart" {
					return cl.RestartVM(c.Context, name, req)
				}
				return cl.StopVM(c.Context, name, req)
			})
		},
	}
}

func vmDeleteCommand() *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Aliases:   []string{"rm"},
		Usage:     "delete a VM and its disk",
		ArgsUsage: "NAME",
		Description: `Powers the VM off and removes its domain, seed and disk; with --keep-disk
the disk stays in galed's data directory.

EXAMPLES:
   gale vm delete web
   gale vm delete web --keep-disk`,
		Flags: append(lifecycleFlags(),
			&cli.BoolFlag{Name: "keep-disk", Usage: "leave the VM's disk in place"},
		),
		Action: func(c *cli.Context) error {
			opts := client.DeleteOptions{KeepDisk: c.Bool("keep-disk")}
			return runLifecycle(c, "delete", "deleted", func(cl *client.Client, name string) (*api.Operation, error) {
				return cl.DeleteVM(c.Context, name, opts)
			})
		},
	}
}

// runLifecycle starts an operation on the VM named by c's argument and
// waits for it unless --no-wait.
func runLifecycle(c *cli.Context, verb, done string, start func(*client.Client, string) (*api.Operation, error)) error {
	name, err := nameArg(c)
	if err != nil {
		return err
	}
	cl := clientFrom(c)
	op, err := start(cl, name)
	if err != nil {
		return fmt.Errorf("%s vm %s: %w", verb, name, err)
	}
	if c.Bool("no-wait") {
		fprintf(c.App.Writer, "%s\n", op.ID)
		return nil
	}
	if err := waitOperation(c, cl, op, 0); err != nil {
		return fmt.Errorf("%s vm %s: %w", verb, name, err)
	}
	fprintf(c.App.Writer, "vm %s %s\n", name, done)
	return nil
}

package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/galevm/gale/pkg/api"
)

// vmCommand is `gale vm` and its subcommands.
func vmCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:  "vm",
		Usage: "create, inspect, run and delete VMs",
		Description: `EXAMPLES:
   gale vm create web --image debian-12
   gale vm list
   gale vm ssh web`,
		Action: unknownSubcommand,
		Subcommands: []*cli.Command{
			vmCreateCommand(d),
			vmListCommand(),
			vmShowCommand(),
			vmStartCommand(),
			vmStopCommand("stop"),
			vmStopCommand("restart"),
			vmDeleteCommand(),
			vmExecCommand(),
			vmSSHCommand(d),
			vmConsoleCommand(d),
			vmIPCommand(),
			vmLogsCommand(),
			vmWaitCommand(d),
		},
	}
}

// unknownSubcommand is the action of a noun: its help without arguments,
// a usage error for a subcommand it does not have.
func unknownSubcommand(c *cli.Context) error {
	if c.Args().Present() {
		return usageErrorf(c, "unknown command %q for '%s'", c.Args().First(), c.Command.HelpName)
	}
	return cli.ShowSubcommandHelp(c)
}

// nameArg returns the single NAME argument of c.
func nameArg(c *cli.Context) (string, error) {
	switch c.NArg() {
	case 0:
		return "", usageErrorf(c, "missing NAME: %s NAME", c.Command.HelpName)
	case 1:
		return c.Args().First(), nil
	}
	return "", usageErrorf(c, "too many arguments %q: %s takes one NAME", c.Args().Slice()[1:], c.Command.HelpName)
}

func vmListCommand() *cli.Command {
	return &cli.Command{
		Name:    "list",
		Aliases: []string{"ls"},
		Usage:   "list VMs",
		Description: `EXAMPLES:
   gale vm list
   gale vm list -o json | jq -r '.[].name'`,
		Flags: []cli.Flag{outputFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf(c, "%s takes no arguments", c.Command.HelpName)
			}
			vms, err := clientFrom(c).ListVMs(c.Context)
			if err != nil {
				return fmt.Errorf("list VMs: %w", err)
			}
			if vms == nil {
				vms = []api.VM{}
			}
			return printData(c, vms, func(w io.Writer) {
				row(w, "NAME", "STATE", "ADDRESS", "IMAGE", "CPUS", "MEMORY", "DISK", "CLOUD-INIT", "AGE")
				for _, vm := range vms {
					row(w, vm.Name, vm.State, orDash(firstAddress(vm)), vm.Image, vm.CPUs, memory(vm.MemoryMiB),
						size(vm.DiskBytes), orDash(vm.CloudInit), age(vm.CreatedAt))
				}
			})
		},
	}
}

func vmShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show one VM: state, addresses, image, resources, cloud-init",
		ArgsUsage: "NAME",
		Description: `EXAMPLES:
   gale vm show web
   gale vm show web -o yaml`,
		Flags: []cli.Flag{outputFlag()},
		Action: func(c *cli.Context) error {
			name, err := nameArg(c)
			if err != nil {
				return err
			}
			vm, err := clientFrom(c).GetVM(c.Context, name)
			if err != nil {
				return fmt.Errorf("show vm %s: %w", name, err)
			}
			return printData(c, vm, func(w io.Writer) { showVM(w, vm) })
		},
	}
}

// showVM writes vm as "Field:  value" lines.
func showVM(w io.Writer, vm *api.VM) {
	row(w, "Name:", vm.Name)
	row(w, "State:", vm.State)
	if vm.Error != "" {
		row(w, "Error:", oneLine(vm.Error))
	}
	row(w, "Addresses:", orDash(strings.Join(vm.Addresses, ", ")))
	row(w, "Image:", vm.Image)
	row(w, "CPUs:", vm.CPUs)
	row(w, "Memory:", memory(vm.MemoryMiB))
	row(w, "Disk:", size(vm.DiskBytes))
	row(w, "Network:", orDash(vm.Network))
	row(w, "MAC:", orDash(vm.MAC))
	row(w, "Cloud-init:", orDash(vm.CloudInit))
	created := "-"
	if !vm.CreatedAt.IsZero() {
		created = fmt.Sprintf("%s (%s ago)", vm.CreatedAt.Local().Format(time.RFC3339), age(vm.CreatedAt))
	}
	row(w, "Created:", created)
	ready := "-"
	if vm.ReadyAfter > 0 {
		ready = seconds(time.Duration(vm.ReadyAfter))
	}
	row(w, "Ready after:", ready)
	switch {
	case vm.Made == api.MadeClone:
		row(w, "Made:", "clone of "+vm.Parent)
	case vm.Made != "":
		row(w, "Made:", vm.Made)
	}
	if vm.Operation != "" {
		row(w, "Operation:", vm.Operation)
	}
}

// memory formats MiB as a size ("2G", "512M").
func memory(mib int) string { return size(int64(mib) << 20) }

// firstAddress returns the VM's first address without a prefix length.
func firstAddress(vm api.VM) string {
	if len(vm.Addresses) == 0 {
		return ""
	}
	addr, _, _ := strings.Cut(vm.Addresses[0], "/")
	return addr
}

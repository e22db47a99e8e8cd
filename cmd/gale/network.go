package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/galevm/gale/pkg/api"
)

// networkCommand is `gale network` and its subcommands.
func networkCommand() *cli.Command {
	return &cli.Command{
		Name:    "network",
		Aliases: []string{"net"},
		Usage:   "create, list and delete libvirt networks for VMs",
		Action:  unknownSubcommand,
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create a network",
				ArgsUsage: "NAME",
				Description: `A nat network reaches the outside through the host; an isolated one only
connects its VMs and the host (use it for lift-and-shift and recovery drills).
An open network is isolated too (by gale's own nftables table: its guests
start no connection out of it), but a scale set's load-balancer frontend on
it is reachable from other hosts and namespaces, not only from this host.
--cidr is the host's address on the network with the prefix length.

EXAMPLES:
   gale network create lab --cidr 192.168.150.1/24
   gale network create drill --mode isolated --cidr 10.77.0.1/24
   gale network create web --mode open --cidr 10.78.0.1/24
   gale vm create app --image debian-12 --network drill`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "mode", Value: api.NetworkNAT, Usage: "nat, isolated or open"},
					&cli.StringFlag{Name: "cidr", Usage: "host address and prefix, e.g. 192.168.150.1/24", DefaultText: "chosen by galed"},
				},
				Action: networkCreate,
			},
			{
				Name:    "list",
				Aliases: []string{"ls"},
				Usage:   "list networks",
				Description: `EXAMPLES:
   gale network list
   gale network list -o json`,
				Flags:  []cli.Flag{outputFlag()},
				Action: networkList,
			},
			{
				Name:      "delete",
				Aliases:   []string{"rm"},
				Usage:     "delete a network no VM uses",
				ArgsUsage: "NAME",
				Description: `EXAMPLES:
   gale network delete lab`,
				Action: func(c *cli.Context) error {
					name, err := nameArg(c)
					if err != nil {
						return err
					}
					if err := clientFrom(c).DeleteNetwork(c.Context, name); err != nil {
						return fmt.Errorf("delete network %s: %w", name, err)
					}
					fprintf(c.App.Writer, "network %s deleted\n", name)
					return nil
				},
			},
		},
	}
}

func networkCreate(c *cli.Context) error {
	name, err := nameArg(c)
	if err != nil {
		return err
	}
	mode := c.String("mode")
	if mode != api.NetworkNAT && mode != api.NetworkIsolated && mode != api.NetworkOpen {
		return usageErrorf(c, "--mode %q: want nat, isolated or open", mode)
	}
	n, err := clientFrom(c).CreateNetwork(c.Context, api.CreateNetworkRequest{Name: name, Mode: mode, CIDR: c.String("cidr")})
	if err != nil {
		return fmt.Errorf("create network %s: %w", name, err)
	}
	fprintf(c.App.Writer, "network %s created (%s, %s)\n", n.Name, n.Mode, orDash(n.CIDR))
	return nil
}

func networkList(c *cli.Context) error {
	nets, err := clientFrom(c).ListNetworks(c.Context)
	if err != nil {
		return fmt.Errorf("list networks: %w", err)
	}
	if nets == nil {
		nets = []api.Network{}
	}
	return printData(c, nets, func(w io.Writer) {
		row(w, "NAME", "MODE", "CIDR", "BRIDGE", "ACTIVE")
		for _, n := range nets {
			row(w, n.Name, n.Mode, orDash(n.CIDR), orDash(n.Bridge), yesNo(n.Active))
		}
	})
}

// yesNo formats a boolean for tables.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/galevm/gale/pkg/api"
)

// parentCommand is `gale parent`: the saved parents clones are made from.
func parentCommand() *cli.Command {
	return &cli.Command{
		Name:   "parent",
		Usage:  "list and delete saved parents (the saved guests clones are restored from)",
		Action: unknownSubcommand,
		Description: `A parent is a guest of one VM model (image, size, network, cloud-init) booted
until cloud-init finished, then saved. "gale vm create --clone always" makes
one when there is none; later VMs of the same model are restored from it in
seconds instead of booted. See docs/clones.md.`,
		Subcommands: []*cli.Command{
			{
				Name:    "list",
				Aliases: []string{"ls"},
				Usage:   "list saved parents and their clones",
				Description: `EXAMPLES:
   gale parent list
   gale parent list -o json`,
				Flags: []cli.Flag{outputFlag()},
				Action: func(c *cli.Context) error {
					ps, err := clientFrom(c).ListParents(c.Context)
					if err != nil {
						return fmt.Errorf("list parents: %w", err)
					}
					if ps == nil {
						ps = []api.Parent{}
					}
					return printData(c, ps, func(w io.Writer) {
						row(w, "NAME", "IMAGE", "CPUS", "MEMORY", "STATE FILE", "BUILT", "CLONES")
						for _, p := range ps {
							row(w, p.Name, p.Image, p.CPUs, memory(p.MemoryMiB), size(p.StateBytes),
								fmt.Sprintf("%s ago in %s", age(p.BuiltAt), seconds(time.Duration(p.BuildTime))),
								orDash(strings.Join(p.Clones, ",")))
						}
					})
				},
			},
			{
				Name:      "delete",
				Aliases:   []string{"rm"},
				Usage:     "delete a saved parent that has no clones",
				ArgsUsage: "NAME",
				Description: `The parent's disk is the backing file of its clones: delete them first.
The next "gale vm create --clone always" of its model saves a new one.

EXAMPLES:
   gale parent delete gale-parent-0123456789ab`,
				Action: func(c *cli.Context) error {
					name, err := nameArg(c)
					if err != nil {
						return err
					}
					if err := clientFrom(c).DeleteParent(c.Context, name); err != nil {
						return fmt.Errorf("delete parent %s: %w", name, err)
					}
					fprintf(c.App.Writer, "parent %s deleted\n", name)
					return nil
				},
			},
		},
	}
}

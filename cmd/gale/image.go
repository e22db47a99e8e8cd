package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/galevm/gale/pkg/api"
)

// imageCommand is `gale image` and its subcommands.
func imageCommand() *cli.Command {
	return &cli.Command{
		Name:   "image",
		Usage:  "list the image templates VMs are created from",
		Action: unknownSubcommand,
		Subcommands: []*cli.Command{
			{
				Name:    "list",
				Aliases: []string{"ls"},
				Usage:   "list images: present on disk, or buildable from a template",
				Description: `EXAMPLES:
   gale image list
   gale image list -o yaml`,
				Flags: []cli.Flag{outputFlag()},
				Action: func(c *cli.Context) error {
					images, err := clientFrom(c).ListImages(c.Context)
					if err != nil {
						return fmt.Errorf("list images: %w", err)
					}
					if images == nil {
						images = []api.Image{}
					}
					return printData(c, images, func(w io.Writer) {
						row(w, "NAME", "OS", "PRESENT", "SIZE", "ORIGIN", "BUILDABLE")
						for _, im := range images {
							row(w, im.Name, orDash(im.OS), yesNo(im.Present), size(im.SizeBytes), orDash(im.Origin), yesNo(im.Buildable))
						}
					})
				},
			},
		},
	}
}

package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/client"
	"github.com/galevm/gale/pkg/version"
)

// versions is the output of `gale version -o json|yaml`.
type versions struct {
	Client string           `json:"client"`
	Daemon *api.VersionInfo `json:"daemon,omitempty"`
	Error  string           `json:"error,omitempty"`
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print gale's version and galed's (version, API, accelerator)",
		Description: `Prints the client's version even when galed cannot be reached (with a
warning, exit 5).

EXAMPLES:
   gale version
   gale version -o json`,
		Flags: []cli.Flag{outputFlag()},
		Action: func(c *cli.Context) error {
			v := versions{Client: version.Version}
			info, err := clientFrom(c).Version(c.Context)
			if err != nil {
				v.Error = err.Error()
			} else {
				v.Daemon = info
			}
			perr := printData(c, v, func(w io.Writer) {
				row(w, "gale:", v.Client)
				if info != nil {
					row(w, "galed:", info.Version)
					row(w, "API:", info.APIVersion)
					row(w, "accelerator:", info.Accel)
					if info.Libvirt != "" {
						row(w, "libvirt:", info.Libvirt)
					}
				}
			})
			if perr != nil {
				return perr
			}
			if err != nil {
				return fmt.Errorf("galed version unknown: %w", err)
			}
			if info.APIVersion != "" && info.APIVersion != api.Version {
				fprintf(c.App.ErrWriter, "warning: galed speaks API %s, gale speaks %s: upgrade the older one\n",
					info.APIVersion, api.Version)
			}
			return nil
		},
	}
}

// isUnreachable reports whether err says galed could not be reached.
func isUnreachable(err error) bool { return errors.Is(err, client.ErrUnreachable) }

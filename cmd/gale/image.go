package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/client"
	"github.com/galevm/gale/pkg/disk"
	"github.com/galevm/gale/pkg/image/inspect"
)

// imageCommand is `gale image` and its subcommands.
func imageCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:   "image",
		Usage:  "manage the images VMs are created from: catalog, pull, build, import",
		Action: unknownSubcommand,
		Description: `Images come from three places:
   build    recipes gale builds offline from Debian packages (debian-12)
   pull     published cloud images, downloaded and verified (ubuntu-24.04, ...)
   import   disks of existing machines: raw/dd, qcow2, vmdk, vhd, vhdx, vdi

   The catalog is /usr/share/gale/images/*.yaml; add or override entries in
   /etc/gale/images/NAME.yaml (see docs/images.md).`,
		Subcommands: []*cli.Command{
			imageListCommand(),
			imageShowCommand(),
			imagePullCommand(),
			imageBuildCommand(),
			imageImportCommand(d),
			imageDeleteCommand(),
			imagePruneCommand(),
		},
	}
}

func imageListCommand() *cli.Command {
	return &cli.Command{
		Name:    "list",
		Aliases: []string{"ls"},
		Usage:   "list catalog entries and local images",
		Description: `KIND says where an image comes from (build, pull, import); PRESENT
   whether its file is on disk. A VM create pulls a missing pull image.

EXAMPLES:
   gale image list
   gale image list -o json`,
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
				row(w, "NAME", "KIND", "OS", "PRESENT", "SIZE", "ORIGIN", "DESCRIPTION")
				for _, im := range images {
					desc := im.Description
					if im.Error != "" {
						desc = "error: " + im.Error
					}
					row(w, im.Name, im.Kind, orDash(im.OS), yesNo(im.Present), humanSize(im.SizeBytes), orDash(im.Origin), orDash(desc))
				}
			})
		},
	}
}

func imageShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "describe an image: source, verification, origin, pre-flight report, users",
		ArgsUsage: "NAME",
		Flags:     []cli.Flag{outputFlag()},
		Action: func(c *cli.Context) error {
			name, err := nameArg(c)
			if err != nil {
				return err
			}
			d, err := clientFrom(c).ShowImage(c.Context, name)
			if err != nil {
				return fmt.Errorf("show image %s: %w", name, err)
			}
			return printData(c, d, func(w io.Writer) { printImageDetail(w, d) })
		},
	}
}

func printImageDetail(w io.Writer, d *api.ImageDetail) {
	field := func(k, v string) {
		if v != "" {
			fprintf(w, "%-13s %s\n", k+":", v)
		}
	}
	field("Name", d.Name)
	field("Kind", d.Kind)
	field("OS", d.OS)
	field("Description", d.Description)
	field("Error", d.Error)
	field("Present", yesNo(d.Present))
	field("Path", d.Path)
	if d.Present {
		field("Size", humanSize(d.SizeBytes)+" on disk")
	}
	if d.VirtualSize > 0 {
		field("Virtual size", humanSize(d.VirtualSize))
	}
	field("Origin", d.Origin)
	field("Source", d.SourceURL)
	field("Verified by", d.Checksum)
	field("User", d.User)
	field("Boot", d.Boot)
	field("Readiness", d.Readiness)
	field("Catalog file", d.File)
	field("Used by", strings.Join(d.UsedBy, ", "))
	if rep, ok := d.Record["preflight"].(map[string]any); ok {
		fprintf(w, "Pre-flight:\n")
		findings, _ := rep["findings"].([]any)
		for _, f := range findings {
			m, _ := f.(map[string]any)
			fprintf(w, "  %-5v %-17v %v\n", m["severity"], m["check"], m["detail"])
			if fix, _ := m["fix"].(string); fix != "" {
				fprintf(w, "        %-17s fix: %s\n", "", fix)
			}
		}
	}
	if changes, ok := d.Record["prepared"].([]any); ok && len(changes) > 0 {
		fprintf(w, "Prepared:\n")
		for _, ch := range changes {
			m, _ := ch.(map[string]any)
			state := "changed"
			if applied, _ := m["applied"].(bool); !applied {
				state = "not changed"
			}
			fprintf(w, "  %-11s %-17v %v\n", state, m["check"], m["detail"])
		}
	}
}

func imagePullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "download a catalog image, or any URL, verified against its checksum",
		ArgsUsage: "NAME | URL",
		Description: `Downloads resume after an interruption, are checked against the
   published checksum before use, and are shared: pulling an image that is
   already being pulled (or that a VM create is pulling) follows that
   download. A URL needs a way to verify it: --sha256/--sha512, or
   --checksum-url with a SHA256SUMS-style file.

EXAMPLES:
   gale image pull ubuntu-24.04
   gale image pull https://example.org/disk.qcow2.xz --name appliance --sha256 9f86d0...`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Usage: "local image name for a URL (default: from the URL)"},
			&cli.StringFlag{Name: "sha256", Usage: "expected sha256 of the download (hex)"},
			&cli.StringFlag{Name: "sha512", Usage: "expected sha512 of the download (hex)"},
			&cli.StringFlag{Name: "checksum-url", Usage: "checksum file listing the download (SHA256SUMS, CHECKSUM)"},
			&cli.StringFlag{Name: "algorithm", Value: "sha256", Usage: "algorithm of --checksum-url: sha256 or sha512"},
			&cli.StringFlag{Name: "format", Usage: "image format after decompression: qcow2 (default) or raw"},
			&cli.StringFlag{Name: "compression", Usage: "none, gz, xz or zst (default: from the URL's suffix)"},
			&cli.BoolFlag{Name: "no-wait", Usage: "print the operation ID and return"},
		},
		Action: func(c *cli.Context) error {
			arg, err := nameArg(c)
			if err != nil {
				return err
			}
			req := api.PullImageRequest{Name: c.String("name"), Format: c.String("format"), Compression: c.String("compression")}
			if strings.Contains(arg, "://") {
				req.URL = arg
				switch {
				case c.IsSet("sha256") && c.IsSet("sha512"):
					return usageErrorf(c, "give --sha256 or --sha512, not both")
				case c.IsSet("sha256"):
					req.Digest = "sha256:" + strings.ToLower(c.String("sha256"))
				case c.IsSet("sha512"):
					req.Digest = "sha512:" + strings.ToLower(c.String("sha512"))
				}
				if u := c.String("checksum-url"); u != "" {
					req.ChecksumURL, req.Algorithm = u, c.String("algorithm")
				}
			} else {
				if c.IsSet("name") || c.IsSet("sha256") || c.IsSet("sha512") || c.IsSet("checksum-url") {
					return usageErrorf(c, "%s is a catalog name: its source and checksum come from the catalog; --name and checksums go with a URL", arg)
				}
				req.Name = arg
			}
			cl := clientFrom(c)
			op, err := cl.PullImage(c.Context, req)
			if err != nil {
				return fmt.Errorf("pull %s: %w", arg, err)
			}
			return followImageOp(c, cl, op, "Pulling "+arg)
		},
	}
}

func imageBuildCommand() *cli.Command {
	return &cli.Command{
		Name:      "build",
		Usage:     "build a catalog recipe (e.g. debian-12) offline from Debian packages",
		ArgsUsage: "NAME",
		Description: `The result is cached under its recipe hash: building an unchanged
   recipe again returns at once.

EXAMPLES:
   gale image build debian-12`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "no-wait", Usage: "print the operation ID and return"}},
		Action: func(c *cli.Context) error {
			name, err := nameArg(c)
			if err != nil {
				return err
			}
			cl := clientFrom(c)
			op, err := cl.BuildImage(c.Context, name)
			if err != nil {
				return fmt.Errorf("build %s: %w", name, err)
			}
			return followImageOp(c, cl, op, "Building "+name)
		},
	}
}

func imageImportCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "import a server's disk (file, block device or stream) for lift-and-shift",
		ArgsUsage: "SOURCE",
		Description: `SOURCE is a disk image file (raw/dd, qcow2, vmdk, vhd, vhdx, vdi), a
   block device, or - for a stream on stdin (which needs --format).
   gale refuses images that would make it read other host files (backing
   files, external data files, VMDK descriptors, differencing disks), that
   are larger than the limit, or that are truncated. The pre-flight report
   says whether the system will boot on virtio (drivers in the initramfs,
   device names in fstab and the bootloader, guest agent, cloud-init);
   --prepare fixes what it can and lists each change.

   As root, gale has galed read SOURCE in place; SOURCE must not be a
   symlink (name what it points to: readlink -f). For other users, gale
   reads SOURCE with their own permissions and streams it to galed.

EXAMPLES:
   gale image import legacy-web.vmdk --name legacy-web
   ssh root@server dd if=/dev/sda bs=4M | gale image import - --name legacy-web --format raw
   gale image import "$(readlink -f /dev/vg0/old-root)" --name old-root --format raw --prepare`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Usage: "name of the new image (required)"},
			&cli.StringFlag{Name: "format", Usage: "source format: raw, qcow2, vmdk, vhd, vhdx, vdi (files: read from the header unless raw)"},
			&cli.StringFlag{Name: "boot", Usage: "firmware the system boots with: bios (default) or uefi"},
			&cli.BoolFlag{Name: "prepare", Usage: "fix what pre-flight finds (device names; drivers and agent need virt-customize)"},
			&cli.BoolFlag{Name: "no-preflight", Usage: "skip the pre-flight readiness report"},
			&cli.BoolFlag{Name: "no-checksum", Usage: "do not record the source file's sha256 (it reads the whole virtual disk, holes included)"},
			&cli.IntFlag{Name: "ready-port", Usage: "TCP port that tells a VM is ready, for systems without cloud-init or guest agent"},
			&cli.BoolFlag{Name: "no-wait", Usage: "print the operation ID and return"},
		},
		Action: func(c *cli.Context) error {
			src, err := nameArg(c)
			if err != nil {
				return err
			}
			req := api.ImportImageRequest{
				Name: c.String("name"), Format: c.String("format"), Boot: c.String("boot"),
				Prepare: c.Bool("prepare"), NoPreflight: c.Bool("no-preflight"), NoChecksum: c.Bool("no-checksum"),
				ReadyPort: c.Int("ready-port"),
			}
			if req.Name == "" {
				return usageErrorf(c, "missing --name: gale image import %s --name NAME", src)
			}
			cl := clientFrom(c)
			var op *api.Operation
			switch {
			case src == "-":
				if req.Format == "" {
					return usageErrorf(c, "a stream needs --format (raw for dd output): gale never guesses the format of a stream")
				}
				fprintf(c.App.ErrWriter, "Uploading stdin to galed...\n")
				op, err = cl.UploadImage(c.Context, req, newUploadProgress(d.stdin, c.App.ErrWriter, 0))
			case os.Geteuid() == 0:
				// Not resolved here: galed refuses a symlink, naming its target.
				if req.Path, err = filepath.Abs(src); err != nil {
					return fmt.Errorf("import %s: %w", src, err)
				}
				op, err = cl.ImportImage(c.Context, req)
			default:
				f, oerr := os.Open(src)
				if oerr != nil {
					return fmt.Errorf("import %s: %w", src, oerr)
				}
				defer f.Close()
				if req.Format == "" {
					// The stream's format must be said; read it from the
					// file's header here, as galed would.
					if req.Format, err = sniffFile(f); err != nil {
						return fmt.Errorf("import %s: %w", src, err)
					}
					if req.Format == "raw" {
						return usageErrorf(c, "%s has no known image header: if it is a raw disk, say so with --format raw", src)
					}
				}
				fprintf(c.App.ErrWriter, "Uploading %s (%s) to galed...\n", src, req.Format)
				var total int64
				if st, serr := f.Stat(); serr == nil && st.Mode().IsRegular() {
					total = st.Size()
				}
				op, err = cl.UploadImage(c.Context, req, newUploadProgress(f, c.App.ErrWriter, total))
			}
			if err != nil {
				return fmt.Errorf("import %s: %w", src, err)
			}
			if err := followImageOp(c, cl, op, "Importing "+src+" as "+req.Name); err != nil || c.Bool("no-wait") {
				return err
			}
			detail, err := cl.ShowImage(c.Context, req.Name)
			if err != nil {
				return fmt.Errorf("show image %s: %w", req.Name, err)
			}
			printImageDetail(c.App.Writer, detail)
			return nil
		},
	}
}

func imageDeleteCommand() *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Aliases:   []string{"rm"},
		Usage:     "delete an image's local file (refused while VMs use it)",
		ArgsUsage: "NAME",
		Description: `A catalog entry stays in the catalog: it can be pulled or built again.

EXAMPLES:
   gale image delete legacy-web`,
		Action: func(c *cli.Context) error {
			name, err := nameArg(c)
			if err != nil {
				return err
			}
			if err := clientFrom(c).DeleteImage(c.Context, name); err != nil {
				return fmt.Errorf("delete image %s: %w", name, err)
			}
			fprintf(c.App.Writer, "Deleted image %s\n", name)
			return nil
		},
	}
}

func imagePruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "remove images no VM needs: old builds, partial downloads, leftovers",
		Description: `With --all, also every image no VM uses (imported ones too: they
   cannot be downloaded again). Images VMs are based on are never removed.

EXAMPLES:
   gale image prune --dry-run
   gale image prune --all`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "also remove current images that no VM uses"},
			&cli.BoolFlag{Name: "dry-run", Usage: "list what would be removed"},
			outputFlag(),
		},
		Action: func(c *cli.Context) error {
			res, err := clientFrom(c).PruneImages(c.Context, api.PruneRequest{All: c.Bool("all"), DryRun: c.Bool("dry-run")})
			if err != nil {
				return fmt.Errorf("prune images: %w", err)
			}
			return printData(c, res, func(w io.Writer) {
				verb := "Removed"
				if c.Bool("dry-run") {
					verb = "Would remove"
				}
				for _, p := range res.Removed {
					fprintf(w, "%s %s\n", verb, p)
				}
				fprintf(w, "%s %d files, %s\n", verb, len(res.Removed), humanSize(res.FreedBytes))
			})
		},
	}
}

// sniffFile names the format f's header shows ("raw" for none) and
// rewinds f.
func sniffFile(f *os.File) (string, error) {
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	size := st.Size()
	if !st.Mode().IsRegular() {
		if size, err = f.Seek(0, io.SeekEnd); err != nil {
			return "", err
		}
	}
	format, err := inspect.Sniff(f, size)
	if err != nil {
		return "", err
	}
	_, err = f.Seek(0, io.SeekStart)
	return format, err
}

// followImageOp prints what is happening and follows op to its end, unless
// --no-wait asked for the operation ID only.
func followImageOp(c *cli.Context, cl *client.Client, op *api.Operation, what string) error {
	if c.Bool("no-wait") {
		fprintf(c.App.Writer, "%s\n", op.ID)
		return nil
	}
	fprintf(c.App.Writer, "%s (operation %s)\n", what, op.ID)
	p := newProgress(c.App.Writer)
	err := cl.WatchOperation(c.Context, op.ID, p.event)
	p.done()
	if err != nil {
		if c.Context.Err() != nil {
			return &interruptedError{msg: fmt.Sprintf("stopped waiting; galed carries on with operation %s", op.ID)}
		}
		return err
	}
	fprintf(c.App.Writer, "Done: %s\n", strings.TrimPrefix(op.Target, "image/"))
	return nil
}

// uploadProgress wraps an upload's source and, on a terminal, keeps one
// line updated with the bytes sent (and the share of total, when known).
type uploadProgress struct {
	r     io.Reader
	w     io.Writer
	total int64 // 0 when unknown (a stream)
	sent  int64
	last  time.Time
	tty   bool
}

func newUploadProgress(r io.Reader, w io.Writer, total int64) *uploadProgress {
	return &uploadProgress{r: r, w: w, total: total, tty: isTerminal(w)}
}

func (u *uploadProgress) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	u.sent += int64(n)
	if u.tty && (time.Since(u.last) >= time.Second || err == io.EOF) {
		u.last = time.Now()
		line := "  uploaded " + disk.HumanSize(u.sent)
		if u.total > 0 {
			line += fmt.Sprintf(" of %s (%.0f%%)", disk.HumanSize(u.total), 100*float64(u.sent)/float64(u.total))
		}
		fprintf(u.w, "\r\x1b[K%s", line)
		if err == io.EOF {
			fprintf(u.w, "\n")
		}
	}
	return n, err
}

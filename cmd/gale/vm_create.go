package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/disk"
)

func vmCreateCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create a VM from an image and wait until it is ready",
		ArgsUsage: "NAME",
		Description: `Creates the VM, boots it and waits until its guest agent answers and
cloud-init is done, showing each stage. If cloud-init fails, the failing
module and the end of cloud-init's output log are printed and gale exits 1.
Interrupting the wait (Ctrl-C) leaves the VM being created in galed; follow
it again with "gale vm wait NAME".

Sizes take binary units: 512M, 1G, 1.5G, 20G.

EXAMPLES:
   gale vm create web --image debian-12
   gale vm create web --image debian-12 --cpus 2 --memory 2G --disk 20G
   gale vm create web --image debian-12 --cloud-init cloudinit/web-server.yaml --ssh-key ~/.ssh/id_ed25519.pub
   cat user-data.yaml | gale vm create web --image debian-12 --cloud-init -
   gale vm create web --image debian-12 --no-wait   # prints the operation id
   gale vm create web2 --image debian-12 --cloud-init cloudinit/web-server.yaml --clone always

CLONES: with --clone always, the first VM of a model (image, size, network,
cloud-init, keys) also saves a parent; every later one is restored from it
in seconds, then given its own MAC, address, hostname, machine-id and SSH
host keys. Its cloud-init user-data ran once, in the parent: put what must
differ per VM in /var/lib/cloud/scripts/per-instance/ (see docs/clones.md).
"gale vm show" says how a VM was made.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "image", Usage: "image template to create the VM from (see gale image list)"},
			&cli.IntFlag{Name: "cpus", Usage: "virtual CPUs", DefaultText: "1"},
			&cli.StringFlag{Name: "memory", Usage: "memory, e.g. 1G or 512M", DefaultText: "from the image"},
			&cli.StringFlag{Name: "disk", Usage: "disk size, e.g. 10G", DefaultText: "from the image"},
			&cli.StringFlag{Name: "cloud-init", Usage: "cloud-init user-data `FILE`, or - for stdin"},
			&cli.StringFlag{Name: "network", Usage: "network to attach to", DefaultText: "galed's default network"},
			&cli.StringSliceFlag{Name: "ssh-key", Usage: "public key `FILE` to authorize in the guest (repeatable)"},
			&cli.BoolFlag{Name: "wait", Value: true, Usage: "wait until the VM is ready"},
			&cli.BoolFlag{Name: "no-wait", Usage: "print the operation id and return at once"},
			&cli.DurationFlag{Name: "timeout", Usage: "give up waiting after this long, e.g. 10m (the create goes on in galed)", DefaultText: "no limit"},
			&cli.BoolFlag{Name: "force", Usage: "skip galed's check that the host has enough memory and disk"},
			&cli.IntFlag{Name: "ready-port", Usage: "the VM is ready when this guest TCP port accepts connections (images without cloud-init)"},
			&cli.StringFlag{Name: "clone", Value: api.CloneAuto, Usage: "restore from a saved parent of the same model instead of booting: auto (when one is saved), always (save one first if need be) or never"},
		},
		Action: func(c *cli.Context) error {
			name, err := nameArg(c)
			if err != nil {
				return err
			}
			req, err := createRequest(c, d.stdin, name)
			if err != nil {
				return err
			}
			cl := clientFrom(c)
			op, err := cl.CreateVM(c.Context, req)
			if err != nil {
				return fmt.Errorf("create vm %s: %w", name, err)
			}
			if c.Bool("no-wait") || !c.Bool("wait") {
				fprintf(c.App.Writer, "%s\n", op.ID)
				return nil
			}
			fprintf(c.App.Writer, "Creating vm %s from %s (operation %s)\n", name, req.Image, op.ID)
			if err := waitOperation(c, cl, op, c.Duration("timeout")); err != nil {
				return fmt.Errorf("create vm %s: %w", name, err)
			}
			return reportReady(c, cl, name)
		},
	}
}

// createRequest builds the request from c's flags.
func createRequest(c *cli.Context, stdin io.Reader, name string) (api.CreateVMRequest, error) {
	req := api.CreateVMRequest{
		Name:      name,
		Image:     c.String("image"),
		CPUs:      c.Int("cpus"),
		Network:   c.String("network"),
		Force:     c.Bool("force"),
		ReadyPort: c.Int("ready-port"),
		Clone:     c.String("clone"),
	}
	switch req.Clone {
	case api.CloneAuto, api.CloneAlways, api.CloneNever:
	default:
		return req, usageErrorf(c, "--clone %q: want auto, always or never", req.Clone)
	}
	if req.Image == "" {
		return req, usageErrorf(c, "missing --image: gale vm create %s --image debian-12 (gale image list shows the images)", name)
	}
	if c.IsSet("cpus") && req.CPUs < 1 {
		return req, usageErrorf(c, "--cpus %d: want at least 1", req.CPUs)
	}
	var err error
	if req.MemoryMiB, err = memoryMiB(c); err != nil {
		return req, err
	}
	if s := c.String("disk"); s != "" {
		n, err := disk.ParseSize(s)
		if err != nil {
			return req, usageErrorf(c, "--disk: %w", err)
		}
		req.DiskBytes = n
	}
	if f := c.String("cloud-init"); f != "" {
		b, err := readFileOrStdin(f, stdin)
		if err != nil {
			return req, fmt.Errorf("--cloud-init: %w", err)
		}
		req.UserData = b
	}
	for _, f := range c.StringSlice("ssh-key") {
		b, err := os.ReadFile(f)
		if err != nil {
			return req, fmt.Errorf("--ssh-key: %w", err)
		}
		key := strings.TrimRight(string(b), "\r\n")
		if key == "" {
			return req, usageErrorf(c, "--ssh-key %s is empty", f)
		}
		if strings.Contains(key, "PRIVATE KEY") {
			return req, usageErrorf(c, "--ssh-key %s is a private key: pass the public key (%s.pub)", f, f)
		}
		req.SSHKeys = append(req.SSHKeys, key)
	}
	return req, nil
}

// readFileOrStdin reads the file at path, or stdin when path is "-".
func readFileOrStdin(path string, stdin io.Reader) ([]byte, error) {
	if path == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %w", err)
	}
	return b, nil
}

// memoryMiB reads --memory (512M, 2G) as MiB; 0 when it is not given.
func memoryMiB(c *cli.Context) (int, error) {
	s := c.String("memory")
	if s == "" {
		return 0, nil
	}
	n, err := disk.ParseSize(s)
	if err != nil {
		return 0, usageErrorf(c, "--memory: %w", err)
	}
	if n%disk.MiB != 0 {
		return 0, usageErrorf(c, "--memory %s: want a whole number of MiB, e.g. 512M or 2G", s)
	}
	return int(n / disk.MiB), nil
}

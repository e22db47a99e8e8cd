package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/galevm/gale/pkg/api"
)

// defaultIdentity is the private key galed authorizes in every guest.
const defaultIdentity = "/var/lib/gale/ssh/id_ed25519"

func vmExecCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command in the guest through its agent",
		ArgsUsage: "NAME -- COMMAND [ARGS...]",
		Description: `Runs COMMAND in the guest (through the QEMU guest agent, no network needed),
prints its output on gale's stdout and stderr and exits with its exit code.
Put the command after "--" so its flags stay its own. The command is not run
by a shell: use "sh -c '...'" for pipes and globs.

EXAMPLES:
   gale vm exec web -- ls -la /etc
   gale vm exec web -- sh -c 'journalctl -u nginx | tail'
   echo hello | gale vm exec web --stdin -- cat`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "stdin", Aliases: []string{"i"}, Usage: "pass gale's stdin to the command"},
			&cli.DurationFlag{Name: "timeout", Usage: "kill the command after this long", DefaultText: "galed's, 5m"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 {
				return usageErrorf(c, "want a VM name and a command: gale vm exec NAME -- COMMAND [ARGS...]")
			}
			name, argv := c.Args().First(), c.Args().Tail()
			req := api.ExecRequest{Command: argv, Timeout: api.Duration(c.Duration("timeout"))}
			if c.Bool("stdin") {
				b, err := io.ReadAll(c.App.Reader)
				if err != nil {
					return fmt.Errorf("read stdin: %w", err)
				}
				req.Stdin = b
			}
			res, err := clientFrom(c).Exec(c.Context, name, req)
			if err != nil {
				return fmt.Errorf("exec in vm %s: %w", name, err)
			}
			_, _ = c.App.Writer.Write(res.Stdout)
			_, _ = c.App.ErrWriter.Write(res.Stderr)
			switch {
			case res.Signal != 0:
				return &exitCodeError{code: 128 + res.Signal}
			case res.ExitCode != 0:
				return &exitCodeError{code: res.ExitCode}
			}
			return nil
		},
	}
}

func vmSSHCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:      "ssh",
		Usage:     "open an ssh session to the VM as user gale",
		ArgsUsage: "NAME [-- SSH ARGS...]",
		Description: `Runs the system ssh to the VM's first address with galed's key. Arguments
after "--" go to ssh: a remote command, or ssh options.

EXAMPLES:
   gale vm ssh web
   gale vm ssh web -- uptime
   gale vm ssh web -- -L 8080:localhost:80`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "identity", Usage: "private key `FILE` for ssh -i (default: galed's key, " + defaultIdentity + " unless galed says otherwise)"},
			&cli.StringFlag{Name: "user", Aliases: []string{"l"}, Value: "gale", Usage: "user to log in as"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return usageErrorf(c, "missing NAME: gale vm ssh NAME [-- SSH ARGS...]")
			}
			name := c.Args().First()
			addr, err := vmAddress(c, name)
			if err != nil {
				return err
			}
			ssh, err := d.lookPath("ssh")
			if err != nil {
				return fmt.Errorf("ssh not found: install the OpenSSH client (apt install openssh-client): %w", err)
			}
			identity, err := sshIdentity(c)
			if err != nil {
				return err
			}
			argv := []string{"ssh", "-i", identity,
				"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
				c.String("user") + "@" + addr}
			argv = append(argv, c.Args().Tail()...)
			return execProgram(d, ssh, argv)
		},
	}
}

func vmConsoleCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:      "console",
		Usage:     "attach to the VM's serial console (leave with Ctrl-])",
		ArgsUsage: "NAME",
		Description: `Attaches the terminal to the VM's serial console with
"virsh -c qemu:///system console NAME". Press Enter to get a login prompt;
press Ctrl-] to leave. Needs permission to use libvirt (root or group libvirt).

EXAMPLES:
   gale vm console web`,
		Action: func(c *cli.Context) error {
			name, err := nameArg(c)
			if err != nil {
				return err
			}
			if _, err := clientFrom(c).GetVM(c.Context, name); err != nil {
				return fmt.Errorf("console of vm %s: %w", name, err)
			}
			virsh, err := d.lookPath("virsh")
			if err != nil {
				return fmt.Errorf("virsh not found: install libvirt-clients (apt install libvirt-clients): %w", err)
			}
			return execProgram(d, virsh, []string{"virsh", "-c", "qemu:///system", "console", name})
		},
	}
}

func vmIPCommand() *cli.Command {
	return &cli.Command{
		Name:      "ip",
		Usage:     "print the VM's address",
		ArgsUsage: "NAME",
		Description: `Prints the VM's first address (all of them with --all), one per line.

EXAMPLES:
   gale vm ip web
   curl http://$(gale vm ip web)/`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "print every address"},
		},
		Action: func(c *cli.Context) error {
			name, err := nameArg(c)
			if err != nil {
				return err
			}
			if !c.Bool("all") {
				addr, err := vmAddress(c, name)
				if err != nil {
					return err
				}
				fprintf(c.App.Writer, "%s\n", addr)
				return nil
			}
			vm, err := clientFrom(c).GetVM(c.Context, name)
			if err != nil {
				return fmt.Errorf("vm %s: %w", name, err)
			}
			if len(vm.Addresses) == 0 {
				return noAddressError(vm)
			}
			for _, a := range vm.Addresses {
				addr, _, _ := strings.Cut(a, "/")
				fprintf(c.App.Writer, "%s\n", addr)
			}
			return nil
		},
	}
}

func vmLogsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "print the VM's serial console and cloud-init logs",
		ArgsUsage: "NAME",
		Description: `EXAMPLES:
   gale vm logs web
   gale vm logs web | less`,
		Action: func(c *cli.Context) error {
			name, err := nameArg(c)
			if err != nil {
				return err
			}
			logs, err := clientFrom(c).Logs(c.Context, name)
			if err != nil {
				return fmt.Errorf("logs of vm %s: %w", name, err)
			}
			_, err = io.WriteString(c.App.Writer, logs)
			return err
		},
	}
}

// vmAddress returns the VM's first address.
func vmAddress(c *cli.Context, name string) (string, error) {
	vm, err := clientFrom(c).GetVM(c.Context, name)
	if err != nil {
		return "", fmt.Errorf("vm %s: %w", name, err)
	}
	addr := firstAddress(*vm)
	if addr == "" {
		return "", noAddressError(vm)
	}
	return addr, nil
}

// noAddressError says why a VM has no address and what to do.
func noAddressError(vm *api.VM) error {
	if vm.State != api.StateRunning {
		return fmt.Errorf("vm %s has no address: it is %s (gale vm start %s)", vm.Name, vm.State, vm.Name)
	}
	return fmt.Errorf("vm %s has no address yet: wait for it with `gale vm wait %s`, or use `gale vm console %s`",
		vm.Name, vm.Name, vm.Name)
}

// execProgram replaces gale with the program at path.
func execProgram(d deps, path string, argv []string) error {
	if err := d.execve(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("run %s: %w", strings.Join(argv, " "), err)
	}
	return nil
}

// sshIdentity is --identity when given, else the key galed reports, else
// the default path; see ownerSafeIdentity for keys ssh would refuse.
func sshIdentity(c *cli.Context) (string, error) {
	if c.IsSet("identity") {
		return c.String("identity"), nil
	}
	path := defaultIdentity
	if v, err := clientFrom(c).Version(c.Context); err == nil && v.SSHIdentity != "" {
		path = v.SSHIdentity
	}
	return ownerSafeIdentity(path)
}

// ownerSafeIdentity returns path, or a private copy of it. galed's key is
// mode 0640 so that members of group gale can read it; OpenSSH accepts that
// from them but refuses it from the file's owner (root). The owner gets a
// 0600 copy in its user cache directory instead.
func ownerSafeIdentity(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("galed's ssh key %s: %w (is galed running, and are you in group gale?)", path, err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || int(sys.Uid) != os.Getuid() || st.Mode().Perm()&0o077 == 0 {
		return path, nil
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read ssh key: %w", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for a private copy of %s: %w", path, err)
	}
	dir := filepath.Join(cache, "gale")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	copyPath := filepath.Join(dir, "id_ed25519")
	if old, err := os.ReadFile(copyPath); err == nil && bytes.Equal(old, key) {
		return copyPath, nil
	}
	tmp, err := os.CreateTemp(dir, ".id_ed25519-*")
	if err != nil {
		return "", fmt.Errorf("copy ssh key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return "", fmt.Errorf("copy ssh key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("copy ssh key: %w", err)
	}
	if err := os.Rename(tmp.Name(), copyPath); err != nil {
		return "", fmt.Errorf("copy ssh key: %w", err)
	}
	return copyPath, nil
}

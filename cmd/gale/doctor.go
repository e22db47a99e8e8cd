package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"slices"
	"strconv"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/galevm/gale/pkg/api"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check that this host can run gale VMs, and say how to fix what is missing",
		Description: `Prints galed's checks (KVM, libvirtd, qemu-img, networks, disk space, ...)
with a fix for each that failed, and exits 1 if any failed. If galed cannot
be reached, it checks the socket locally and says what to try (exit 5).

EXAMPLES:
   gale doctor
   gale doctor -o json`,
		Flags: []cli.Flag{outputFlag()},
		Action: func(c *cli.Context) error {
			checks, err := clientFrom(c).Doctor(c.Context)
			if err != nil {
				if isUnreachable(err) {
					localHints(c.App.Writer, c.String("socket"))
				}
				return fmt.Errorf("doctor: %w", err)
			}
			if checks == nil {
				checks = []api.Check{}
			}
			if err := printData(c, checks, func(w io.Writer) { printChecks(w, checks) }); err != nil {
				return err
			}
			failed := 0
			for _, ch := range checks {
				if !ch.OK {
					failed++
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d checks failed", failed, len(checks))
			}
			return nil
		},
	}
}

// printChecks writes one line per check and the fix under a failed one.
func printChecks(w io.Writer, checks []api.Check) {
	for _, ch := range checks {
		mark := "ok"
		if !ch.OK {
			mark = "FAIL"
		}
		row(w, mark, ch.Name, ch.Detail)
		if !ch.OK && ch.Fix != "" {
			row(w, "", "", "fix: "+ch.Fix)
		}
	}
}

// localHints checks what gale can see of the socket without galed.
func localHints(w io.Writer, socket string) {
	fprintf(w, "galed is not reachable at %s. Local checks:\n", socket)
	st, err := os.Stat(socket)
	switch {
	case err != nil && os.IsNotExist(err):
		fprintf(w, "  FAIL  socket %s does not exist: galed is not running, or listens elsewhere\n", socket)
		fprintf(w, "        fix: start galed (sudo systemctl start galed, or run `sudo galed`; see README),\n")
		fprintf(w, "             or point gale at its socket with --socket or GALE_SOCKET\n")
	case err != nil:
		fprintf(w, "  FAIL  cannot inspect %s: %v\n", socket, err)
		fprintf(w, "        fix: check the permissions of its directory (galed creates it mode 0750, group gale)\n")
	case st.Mode().Type() != fs.ModeSocket:
		fprintf(w, "  FAIL  %s exists but is not a socket\n", socket)
	default:
		fprintf(w, "  ok    socket %s exists (mode %s)\n", socket, st.Mode().Perm())
		socketAccessHint(w, socket, st)
		fprintf(w, "        if galed is not running the socket is stale: start galed (sudo systemctl start galed)\n")
	}
	if _, err := os.Stat("/dev/kvm"); err != nil {
		fprintf(w, "  note  /dev/kvm is missing: VMs will run under TCG (slow); enable virtualization in the firmware\n")
	}
}

// socketAccessHint says whether the current user may connect to the socket.
func socketAccessHint(w io.Writer, socket string, st fs.FileInfo) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() == 0 {
		return
	}
	gid := strconv.FormatUint(uint64(sys.Gid), 10)
	group := gid
	if g, err := user.LookupGroupId(gid); err == nil {
		group = g.Name
	}
	u, err := user.Current()
	if err != nil {
		return
	}
	groups, err := u.GroupIds()
	if err != nil {
		return
	}
	if strconv.FormatUint(uint64(sys.Uid), 10) != u.Uid && !slices.Contains(groups, gid) {
		fprintf(w, "  FAIL  you (%s) are not in group %s, which owns %s\n", u.Username, group, socket)
		fprintf(w, "        fix: sudo usermod -aG %s %s, then log in again\n", group, u.Username)
	}
}

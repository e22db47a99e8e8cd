// Command demo boots one VM from a template with gale's engine, waits until
// cloud-init is done, and prints what it did. scripts/demo.sh runs it; the
// gale CLI takes this job over once galed exists.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/disk"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/hypervisor/libvirt"
	"github.com/galevm/gale/pkg/vm"
)

func main() {
	var (
		name     = flag.String("name", "demo", "VM name")
		template = flag.String("template", "", "template image (qcow2); required")
		dir      = flag.String("dir", "/var/lib/gale/vms", "where VM directories live")
		network  = flag.String("network", "gale-demo", "isolated network to create or reuse")
		cidr     = flag.String("cidr", "192.168.123.1/24", "host address of the network")
		userData = flag.String("cloud-init", "", "user-data file (default: a small cloud-config)")
		replace  = flag.Bool("replace", false, "delete an existing VM of that name first")
		del      = flag.Bool("delete", false, "delete the VM and exit")
	)
	flag.Parse()
	var err error
	if *del {
		err = deleteVM(*name, *dir)
	} else {
		err = run(*name, *template, *dir, *network, *cidr, *userData, *replace)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

const defaultUserData = `#cloud-config
write_files:
  - path: /etc/motd
    content: "This VM was made by gale.\n"
`

func run(name, template, dir, network, cidr, userDataPath string, replace bool) error {
	if template == "" {
		return errors.New("-template is required")
	}
	log := logrus.New()
	d, err := libvirt.New("qemu:///system", libvirt.Options{Log: log})
	if err != nil {
		return fmt.Errorf("connect to libvirtd (is it running? scripts/setup-host.sh starts it): %w", err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	if _, err := d.GetNetwork(ctx, network); errors.Is(err, hypervisor.ErrNotFound) {
		ip, n, err := net.ParseCIDR(cidr)
		if err != nil {
			return fmt.Errorf("-cidr: %w", err)
		}
		n.IP = ip
		if err := d.CreateNetwork(ctx, hypervisor.NetworkSpec{Name: network, Mode: hypervisor.NetworkIsolated, CIDR: n}); err != nil {
			return err
		}
		fmt.Printf("created isolated network %s (%s)\n", network, cidr)
	} else if err != nil {
		return err
	}

	userData := []byte(defaultUserData)
	if userDataPath != "" {
		if userData, err = os.ReadFile(userDataPath); err != nil {
			return err
		}
	}
	eng := &vm.Engine{Driver: d, Disks: disk.NewQemuImg(nil), Dir: dir, Log: log}
	if replace {
		if err := eng.Delete(ctx, name, vm.DeleteOptions{}); err != nil && !errors.Is(err, vm.ErrNotFound) {
			return err
		}
	}
	start := time.Now()
	inst, err := eng.Create(ctx, vm.CreateRequest{
		Name: name, Template: vm.Template{Name: "debian-12", Path: template, Format: disk.FormatQCOW2},
		VCPUs: 1, MemoryMiB: 1024, DiskBytes: 4 << 30, Network: network, UserData: userData,
	})
	if err != nil {
		return err
	}
	fmt.Printf("created %s in %s (disk %s)\n", name, time.Since(start).Round(time.Millisecond), inst.DiskPath)
	ready, err := vm.WaitReady(ctx, d, name, func(p vm.Progress) {
		fmt.Printf("  %-15s %6.1fs\n", p.Stage, p.Elapsed.Seconds())
	})
	if err != nil {
		if ready.OutputTail != "" {
			fmt.Fprintf(os.Stderr, "last lines of cloud-init-output.log:\n%s", ready.OutputTail)
		}
		return err
	}
	addrs, err := vm.WaitAddress(ctx, d, name)
	if err != nil {
		return err
	}
	res, err := d.AgentExec(ctx, name, hypervisor.ExecRequest{Path: "/usr/bin/cloud-init", Args: []string{"status", "--long"}})
	if err != nil {
		return err
	}
	fmt.Printf("%s is ready: address %s, cloud-init done after %s\n", name, addrs[0].IP, ready.DoneAfter.Round(time.Second))
	fmt.Print(indent(string(res.Stdout)))
	fmt.Printf("console: virsh console %s    delete: scripts/demo.sh --delete\n", name)
	return nil
}

func deleteVM(name, dir string) error {
	d, err := libvirt.New("qemu:///system", libvirt.Options{})
	if err != nil {
		return err
	}
	defer d.Close()
	eng := &vm.Engine{Driver: d, Disks: disk.NewQemuImg(nil), Dir: dir}
	if err := eng.Delete(context.Background(), name, vm.DeleteOptions{}); err != nil {
		return err
	}
	fmt.Printf("deleted %s\n", name)
	return nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}

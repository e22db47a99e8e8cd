// Command boot measures how long a VM from a template takes to be ready
// (guest agent answers, cloud-init done) under the host's accelerator, and
// prints the guest's own view: systemd-analyze and cloud-init analyze blame.
// scripts/bench/run.sh runs it inside the test environment.
package main

import (
	"context"
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
	template := flag.String("template", "", "template image (qcow2)")
	dir := flag.String("dir", "", "VM directory root")
	cpus := flag.Int("cpus", 1, "vCPUs of the test VM")
	runs := flag.Int("n", 1, "boots")
	flag.Parse()
	if err := run(*template, *dir, *cpus, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "boot bench:", err)
		os.Exit(1)
	}
}

func run(template, dir string, cpus, runs int) error {
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	d, err := libvirt.New("qemu:///system", libvirt.Options{Log: log})
	if err != nil {
		return err
	}
	defer d.Close()
	ctx := context.Background()
	network := "bench-boot"
	if _, err := d.GetNetwork(ctx, network); err != nil {
		ip, cidr, _ := net.ParseCIDR("192.168.241.1/24")
		cidr.IP = ip
		if err := d.CreateNetwork(ctx, hypervisor.NetworkSpec{Name: network, Mode: hypervisor.NetworkIsolated, CIDR: cidr}); err != nil {
			return err
		}
	}
	eng := &vm.Engine{Driver: d, Disks: disk.NewQemuImg(nil), Dir: dir, Log: log}
	for i := 0; i < runs; i++ {
		name := fmt.Sprintf("boot-%dcpu-%d", cpus, i)
		if _, err := eng.Create(ctx, vm.CreateRequest{
			Name: name, Template: vm.Template{Name: "debian-12", Path: template, Format: disk.FormatQCOW2},
			VCPUs: cpus, MemoryMiB: 1024, Network: network, UserData: []byte("#cloud-config\n{}\n"),
		}); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		res, err := vm.WaitReady(wctx, d, name, nil)
		cancel()
		if err != nil {
			_ = eng.Delete(ctx, name, vm.DeleteOptions{})
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Printf("%d vCPU: guest agent after %.1f s, cloud-init done after %.1f s (from start)\n",
			cpus, res.AgentAfter.Seconds(), res.DoneAfter.Seconds())
		if i == runs-1 {
			for _, cmd := range [][]string{
				{"/usr/bin/systemd-analyze"},
				{"/bin/sh", "-c", "systemd-analyze blame | head -n 8"},
				{"/bin/sh", "-c", "cloud-init analyze blame | head -n 12"},
			} {
				r, err := d.AgentExec(ctx, name, hypervisor.ExecRequest{Path: cmd[0], Args: cmd[1:]})
				if err == nil {
					fmt.Printf("  $ %s\n%s", strings.Join(cmd, " "), indent(string(r.Stdout)))
				}
			}
		}
		if err := eng.Delete(ctx, name, vm.DeleteOptions{}); err != nil {
			return err
		}
	}
	return nil
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}

// Command engine times gale's VM create (overlay + seed + define + start)
// and delete on a real libvirtd, for scripts/bench/run.sh. It prints one line
// per run: "create_ms delete_ms".
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/disk"
	"github.com/galevm/gale/pkg/hypervisor/libvirt"
	"github.com/galevm/gale/pkg/vm"
)

func main() {
	template := flag.String("template", "", "template image (qcow2)")
	dir := flag.String("dir", "", "VM directory root")
	network := flag.String("network", "", "libvirt network")
	runs := flag.Int("n", 5, "number of create/delete rounds")
	flag.Parse()
	if err := run(*template, *dir, *network, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "engine bench:", err)
		os.Exit(1)
	}
}

func run(template, dir, network string, runs int) error {
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	d, err := libvirt.New("qemu:///system", libvirt.Options{Log: log})
	if err != nil {
		return err
	}
	defer d.Close()
	eng := &vm.Engine{Driver: d, Disks: disk.NewQemuImg(nil), Dir: dir, Log: log}
	ctx := context.Background()
	for i := 0; i < runs; i++ {
		name := fmt.Sprintf("bench-gale-%d", i)
		t0 := time.Now()
		if _, err := eng.Create(ctx, vm.CreateRequest{
			Name: name, Template: vm.Template{Name: "debian-12", Path: template, Format: disk.FormatQCOW2},
			VCPUs: 1, MemoryMiB: 1024, Network: network, UserData: []byte("#cloud-config\n{}\n"),
		}); err != nil {
			return err
		}
		t1 := time.Now()
		if err := eng.Delete(ctx, name, vm.DeleteOptions{}); err != nil {
			return err
		}
		t2 := time.Now()
		fmt.Printf("%d %d\n", t1.Sub(t0).Milliseconds(), t2.Sub(t1).Milliseconds())
	}
	return nil
}

package fake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"

	"github.com/galevm/gale/pkg/hypervisor"
)

// saveMagic begins every state file the fake writes; Restore refuses
// anything else with hypervisor.ErrBadSavedState, as the libvirt driver
// refuses a file that is not a libvirt save image.
const saveMagic = "gale-fake-saved-state\n"

// Save writes the running domain's spec to path (a new file) and stops it.
func (d *Driver) Save(ctx context.Context, name, path string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enter(ctx, "Save"); err != nil {
		return err
	}
	dom, err := d.lookup("save", name)
	if err != nil {
		return err
	}
	if dom.dom.State != hypervisor.StateRunning {
		return fmt.Errorf("save domain %q: domain is not running", name)
	}
	body, err := json.Marshal(dom.spec)
	if err != nil {
		return fmt.Errorf("save domain %q: %w", name, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("save domain %q: %w", name, err)
	}
	_, werr := f.Write(append([]byte(saveMagic), body...))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(path)
		return fmt.Errorf("save domain %q: %w", name, werr)
	}
	dom.dom.State = hypervisor.StateShutoff
	d.emitLocked(name, hypervisor.EventStopped, "saved")
	return nil
}

// Restore defines and runs a domain from a file Save wrote, with spec's
// identity. workDir is not used: the fake needs no copy of the state.
func (d *Driver) Restore(ctx context.Context, statePath string, spec hypervisor.CloneSpec, _ string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enter(ctx, "Restore"); err != nil {
		return err
	}
	op := fmt.Sprintf("restore %s as domain %q", statePath, spec.Name)
	raw, err := os.ReadFile(statePath)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", op, hypervisor.ErrBadSavedState, err)
	}
	body, ok := bytes.CutPrefix(raw, []byte(saveMagic))
	if !ok {
		return fmt.Errorf("%s: %w: not a saved state", op, hypervisor.ErrBadSavedState)
	}
	var saved hypervisor.DomainSpec
	if err := json.Unmarshal(body, &saved); err != nil {
		return fmt.Errorf("%s: %w: %w", op, hypervisor.ErrBadSavedState, err)
	}
	if _, ok := d.domains[spec.Name]; ok {
		return fmt.Errorf("%s: %w", op, hypervisor.ErrExists)
	}
	if len(spec.MACs) != len(saved.NICs) {
		return fmt.Errorf("%s: %w: %d NICs, %d MACs", op, hypervisor.ErrBadSavedState, len(saved.NICs), len(spec.MACs))
	}
	clone := saved
	clone.Name, clone.UUID, clone.SerialLog, clone.Metadata = spec.Name, spec.UUID, spec.SerialLog, spec.Metadata
	if clone.UUID == "" {
		clone.UUID = randomUUID()
	}
	clone.Disks = append([]hypervisor.Disk(nil), saved.Disks...)
	for i := range clone.Disks {
		path, ok := spec.Disks[clone.Disks[i].Target]
		if !ok {
			return fmt.Errorf("%s: %w: no file for disk %s", op, hypervisor.ErrInvalidSpec, clone.Disks[i].Target)
		}
		clone.Disks[i].Path = path
	}
	clone.NICs = append([]hypervisor.NIC(nil), saved.NICs...)
	macs := make([]string, len(spec.MACs))
	for i, m := range spec.MACs {
		hw, err := net.ParseMAC(m)
		if err != nil {
			return fmt.Errorf("%s: %w: bad MAC %q", op, hypervisor.ErrInvalidSpec, m)
		}
		clone.NICs[i].MAC, macs[i] = hw.String(), hw.String()
	}
	meta := clone.Metadata
	d.domains[spec.Name] = &domain{spec: clone, dom: hypervisor.Domain{
		Name: clone.Name, UUID: clone.UUID, State: hypervisor.StateRunning,
		VCPUs: clone.VCPUs, MemoryMiB: clone.MemoryMiB, Metadata: &meta, MACs: macs,
	}}
	d.order = append(d.order, spec.Name)
	d.emitLocked(spec.Name, hypervisor.EventDefined, "added")
	d.emitLocked(spec.Name, hypervisor.EventStarted, "restored")
	return nil
}

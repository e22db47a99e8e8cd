package fake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/galevm/gale/pkg/hypervisor"
)

// CreateNetwork validates and stores an active network. The generated
// bridge name follows the libvirt driver's rule ("gale-" + 8 hex digits).
func (d *Driver) CreateNetwork(ctx context.Context, spec hypervisor.NetworkSpec) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enter(ctx, "CreateNetwork"); err != nil {
		return err
	}
	op := fmt.Sprintf("create network %q", spec.Name)
	if err := hypervisor.ValidateNetworkSpec(spec); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	host, prefix, _, _, err := hypervisor.NetworkAddressing(spec)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if _, ok := d.networks[spec.Name]; ok {
		return fmt.Errorf("%s: %w", op, hypervisor.ErrExists)
	}
	bridge := spec.Bridge
	if bridge == "" {
		sum := sha256.Sum256([]byte(spec.Name))
		bridge = "gale-" + hex.EncodeToString(sum[:4])
	}
	d.networks[spec.Name] = &hypervisor.Network{
		Name: spec.Name, Mode: spec.Mode, Bridge: bridge,
		CIDR: fmt.Sprintf("%s/%d", host, prefix), Active: true,
	}
	return nil
}

// DeleteNetwork removes a network.
func (d *Driver) DeleteNetwork(ctx context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enter(ctx, "DeleteNetwork"); err != nil {
		return err
	}
	if _, ok := d.networks[name]; !ok {
		return fmt.Errorf("delete network %q: network %w", name, hypervisor.ErrNotFound)
	}
	delete(d.networks, name)
	return nil
}

// ListNetworks returns all networks sorted by name.
func (d *Driver) ListNetworks(ctx context.Context) ([]hypervisor.Network, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enter(ctx, "ListNetworks"); err != nil {
		return nil, err
	}
	out := make([]hypervisor.Network, 0, len(d.networks))
	for _, n := range d.networks {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// GetNetwork returns one network.
func (d *Driver) GetNetwork(ctx context.Context, name string) (hypervisor.Network, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enter(ctx, "GetNetwork"); err != nil {
		return hypervisor.Network{}, err
	}
	n, ok := d.networks[name]
	if !ok {
		return hypervisor.Network{}, fmt.Errorf("get network %q: network %w", name, hypervisor.ErrNotFound)
	}
	return *n, nil
}

// StartNetwork marks a network active.
func (d *Driver) StartNetwork(ctx context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enter(ctx, "StartNetwork"); err != nil {
		return err
	}
	n, ok := d.networks[name]
	if !ok {
		return fmt.Errorf("start network %q: network %w", name, hypervisor.ErrNotFound)
	}
	n.Active = true
	return nil
}

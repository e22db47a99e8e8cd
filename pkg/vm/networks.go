package vm

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/errdefs"
	"github.com/galevm/gale/pkg/hypervisor"
)

// ListNetworks returns the hypervisor's networks.
func (s *Service) ListNetworks(ctx context.Context) ([]api.Network, error) {
	nets, err := s.drv.ListNetworks(ctx)
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	out := make([]api.Network, 0, len(nets))
	for _, n := range nets {
		out = append(out, api.Network{Name: n.Name, Mode: string(n.Mode), CIDR: n.CIDR, Bridge: n.Bridge, Active: n.Active})
	}
	return out, nil
}

// CreateNetwork defines and starts a network. Bad input wraps ErrInvalid; a
// taken name ErrExists.
func (s *Service) CreateNetwork(ctx context.Context, req api.CreateNetworkRequest) (api.Network, error) {
	spec, err := NetworkSpec(req.Name, req.Mode, req.CIDR)
	if err != nil {
		return api.Network{}, err
	}
	if err := s.drv.CreateNetwork(ctx, spec); err != nil {
		switch {
		case errors.Is(err, hypervisor.ErrExists):
			return api.Network{}, fmt.Errorf("%w: network %q: %w", ErrExists, req.Name, err)
		case errors.Is(err, hypervisor.ErrInvalidSpec):
			return api.Network{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return api.Network{}, err
	}
	n, err := s.drv.GetNetwork(ctx, req.Name)
	if err != nil {
		return api.Network{}, err
	}
	return api.Network{Name: n.Name, Mode: string(n.Mode), CIDR: n.CIDR, Bridge: n.Bridge, Active: n.Active}, nil
}

// DeleteNetwork removes a network no VM uses (else ErrExists-like conflict).
func (s *Service) DeleteNetwork(ctx context.Context, name string) error {
	rows, err := s.cfg.Store.ListVMs(ctx)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if r.Network == name {
			return fmt.Errorf("%w: network %q is used by vm %q", ErrInUse, name, r.Name)
		}
	}
	if err := s.drv.DeleteNetwork(ctx, name); err != nil {
		if errors.Is(err, hypervisor.ErrNotFound) {
			return fmt.Errorf("%w: network %q", ErrNotFound, name)
		}
		return err
	}
	return nil
}

// ErrInUse: the resource is used by a VM.
var ErrInUse = errdefs.New(errdefs.Conflict, "in use")

// NetworkSpec validates a network request into a spec; errors wrap ErrInvalid.
func NetworkSpec(name, mode, cidr string) (hypervisor.NetworkSpec, error) {
	if err := hypervisor.ValidateName(name); err != nil {
		return hypervisor.NetworkSpec{}, fmt.Errorf("%w: network name: %w", ErrInvalid, err)
	}
	m := hypervisor.NetworkMode(mode)
	if m != hypervisor.NetworkNAT && m != hypervisor.NetworkIsolated {
		return hypervisor.NetworkSpec{}, fmt.Errorf("%w: network mode %q: want nat or isolated", ErrInvalid, mode)
	}
	ip, ipnet, err := net.ParseCIDR(cidr)
	if err != nil {
		return hypervisor.NetworkSpec{}, fmt.Errorf("%w: network cidr: %w", ErrInvalid, err)
	}
	ipnet.IP = ip // keep the host address (e.g. 192.168.150.1/24)
	spec := hypervisor.NetworkSpec{Name: name, Mode: m, CIDR: ipnet}
	if err := hypervisor.ValidateNetworkSpec(spec); err != nil {
		return hypervisor.NetworkSpec{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return spec, nil
}

// EnsureNetwork creates the network name with mode and cidr unless it exists.
// It reports whether it created it.
func (s *Service) EnsureNetwork(ctx context.Context, name, mode, cidr string) (bool, error) {
	if _, err := s.drv.GetNetwork(ctx, name); err == nil {
		return false, nil
	} else if !errors.Is(err, hypervisor.ErrNotFound) {
		return false, err
	}
	if _, err := s.CreateNetwork(ctx, api.CreateNetworkRequest{Name: name, Mode: mode, CIDR: cidr}); err != nil {
		return false, err
	}
	return true, nil
}

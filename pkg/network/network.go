// Package network is galed's network service: the libvirt networks VMs
// attach to (list, create, delete), and keeping galed's own networks active.
// The load balancer's data path will live beside it.
package network

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/errdefs"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/store"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrInvalid: the request is invalid; nothing was changed.
	ErrInvalid = errdefs.New(errdefs.Invalid, "invalid network request")
	// ErrExists: a network with that name exists.
	ErrExists = errdefs.New(errdefs.Conflict, "network already exists")
	// ErrNotFound: no network with that name.
	ErrNotFound = errdefs.New(errdefs.NotFound, "network not found")
	// ErrInUse: a VM uses the network.
	ErrInUse = errdefs.New(errdefs.Conflict, "network in use")
)

// Config wires a Service. Driver and Store are required.
type Config struct {
	Driver hypervisor.Driver
	// Store holds the VM rows that say which networks are in use.
	Store *store.Store
	// Changed, when set, is called after a network was created or deleted
	// (galed keeps open networks isolated with it).
	Changed func(ctx context.Context)
	Log     logrus.FieldLogger
}

// Service manages libvirt networks. It is safe for concurrent use.
type Service struct {
	drv     hypervisor.Driver
	store   *store.Store
	changed func(ctx context.Context)
	log     logrus.FieldLogger
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Driver == nil || cfg.Store == nil {
		return nil, errors.New("network service: Driver and Store are required")
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	changed := cfg.Changed
	if changed == nil {
		changed = func(context.Context) {}
	}
	return &Service{drv: cfg.Driver, store: cfg.Store, changed: changed, log: cfg.Log}, nil
}

func toAPI(n hypervisor.Network) api.Network {
	return api.Network{Name: n.Name, Mode: string(n.Mode), CIDR: n.CIDR, Bridge: n.Bridge, Active: n.Active}
}

// List returns the hypervisor's networks.
func (s *Service) List(ctx context.Context) ([]api.Network, error) {
	nets, err := s.drv.ListNetworks(ctx)
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	out := make([]api.Network, 0, len(nets))
	for _, n := range nets {
		out = append(out, toAPI(n))
	}
	return out, nil
}

// Create defines and starts a network. Bad input wraps ErrInvalid; a taken
// name ErrExists.
func (s *Service) Create(ctx context.Context, req api.CreateNetworkRequest) (api.Network, error) {
	spec, err := Spec(req.Name, req.Mode, req.CIDR)
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
	s.changed(ctx)
	n, err := s.drv.GetNetwork(ctx, req.Name)
	if err != nil {
		return api.Network{}, err
	}
	return toAPI(n), nil
}

// Delete removes a network no VM uses (else ErrInUse); an unknown name is
// ErrNotFound.
func (s *Service) Delete(ctx context.Context, name string) error {
	rows, err := s.store.ListVMs(ctx)
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
	s.changed(ctx)
	return nil
}

// Spec validates a network request into a spec; errors wrap ErrInvalid.
func Spec(name, mode, cidr string) (hypervisor.NetworkSpec, error) {
	if err := hypervisor.ValidateName(name); err != nil {
		return hypervisor.NetworkSpec{}, fmt.Errorf("%w: network name: %w", ErrInvalid, err)
	}
	m := hypervisor.NetworkMode(mode)
	if m != hypervisor.NetworkNAT && m != hypervisor.NetworkIsolated && m != hypervisor.NetworkOpen {
		return hypervisor.NetworkSpec{}, fmt.Errorf("%w: network mode %q: want nat, isolated or open", ErrInvalid, mode)
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

// Ensure makes sure the network name exists and is active: it creates it
// with mode and cidr when it does not exist, and starts it when it is
// defined but inactive (an existing network's mode and cidr are not
// compared). It reports whether it created it.
func (s *Service) Ensure(ctx context.Context, name, mode, cidr string) (created bool, err error) {
	_, err = s.EnsureActive(ctx, name)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	if _, err := s.Create(ctx, api.CreateNetworkRequest{Name: name, Mode: mode, CIDR: cidr}); err != nil {
		return false, err
	}
	return true, nil
}

// EnsureActive starts the network name when it is defined but inactive, as
// a host whose libvirtd came up without network autostart leaves it, and
// reports whether it did. An unknown name is ErrNotFound.
func (s *Service) EnsureActive(ctx context.Context, name string) (started bool, err error) {
	n, err := s.drv.GetNetwork(ctx, name)
	if errors.Is(err, hypervisor.ErrNotFound) {
		return false, fmt.Errorf("%w: network %q", ErrNotFound, name)
	} else if err != nil {
		return false, fmt.Errorf("look up network %q: %w", name, err)
	}
	if n.Active {
		return false, nil
	}
	if err := s.drv.StartNetwork(ctx, name); err != nil {
		return false, fmt.Errorf("network %q is not active and could not be started: %w", name, err)
	}
	s.log.WithField("network", name).Warn("network was defined but not active; started it")
	return true, nil
}

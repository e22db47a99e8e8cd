// Package scaleset runs scale sets: groups of identical VMs made from one
// model (a versioned api.SetModel), kept at a capacity by a level-triggered
// controller per set, probed for health, repaired, put behind a kernel load
// balancer and upgraded in rolling batches. Instances are ordinary VMs of
// the vm service, owned by their set (vm.OwnerSet), made with
// vm.Service.Provision (clones of the model wherever cloning works).
//
// State lives in the store: the set's spec and model versions are written
// before anything is made, an instance's row before its VM, and an
// instance's VM is deleted before its row; so after galed is killed at any
// point the controller finds rows without VMs (dropped), VMs without rows
// (deleted) and half-deleted instances (finished) and converges again.
package scaleset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/autoscale"
	"github.com/galevm/gale/pkg/errdefs"
	"github.com/galevm/gale/pkg/events"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/metrics"
	"github.com/galevm/gale/pkg/probe"
	"github.com/galevm/gale/pkg/store"
	"github.com/galevm/gale/pkg/vm"
)

// Errors, matched with errors.Is; each maps to an API status through errdefs.
var (
	ErrNotFound     = errdefs.New(errdefs.NotFound, "scale set not found")
	ErrExists       = errdefs.New(errdefs.Conflict, "scale set exists")
	ErrInvalid      = errdefs.New(errdefs.Invalid, "invalid scale set request")
	ErrConflict     = errdefs.New(errdefs.Conflict, "scale set conflict")
	ErrInsufficient = errdefs.New(errdefs.Insufficient, "the host cannot hold the set")
)

// VMs is what the scale sets need of the vm service (*vm.Service).
type VMs interface {
	Provision(ctx context.Context, req api.CreateVMRequest, owner string) (api.VM, error)
	Delete(ctx context.Context, name string, opts vm.DeleteOptions) (api.Operation, error)
	Restart(ctx context.Context, name string, opts api.StopVMRequest) (api.Operation, error)
	FollowOperation(ctx context.Context, id string, fn func(api.Event) error) error
	Operation(ctx context.Context, id string) (api.Operation, error)
	List(ctx context.Context) ([]api.VM, error)
	Exec(ctx context.Context, name string, req api.ExecRequest) (api.ExecResponse, error)
	ModelDefaults(req api.CreateVMRequest) (api.CreateVMRequest, error)
	ValidateModel(ctx context.Context, req api.CreateVMRequest) error
	PrepareModel(ctx context.Context, req api.CreateVMRequest, progress func(stage string)) error
}

// Backend is one instance in a load balancer's map.
type Backend struct {
	Name string
	Addr netip.Addr
}

// Balancer is the load balancer's data path (pkg/lb through the daemon).
// Apply replaces a set's whole map atomically; Delete of an absent set is
// not an error; Sets lists the sets that have a data path; Connections
// counts the open connections it sent to addr:port (a drain waits for 0).
type Balancer interface {
	Apply(ctx context.Context, set, network string, rules []api.LBRule, backends []Backend) error
	Delete(set string) error
	Sets() ([]string, error)
	Connections(addr netip.Addr, port int) (int, error)
	ConnectionsByBackend(port int) (map[netip.Addr]int, error)
}

// Networks answers the host-side address of a network (the default
// frontend address of a set's load balancer).
type Networks interface {
	HostAddress(ctx context.Context, network string) (netip.Addr, error)
}

// Host reports the memory available for new VMs (vm.HostResources).
type Host interface {
	MemAvailableBytes() (int64, error)
}

// Config wires a Service. Store and VMs are required.
type Config struct {
	Store    *store.Store
	VMs      VMs
	Balancer Balancer // nil: sets with load-balancer rules are refused
	Networks Networks // nil: every rule must name its address
	Host     Host     // nil: no capacity check beyond each create's own
	Events   *events.Hub
	// Interval is how often each controller re-checks its set without
	// being woken (default 2s).
	Interval time.Duration
	// Parallelism bounds the creates one set runs at once (default 2).
	Parallelism int
	// HealthyTimeout bounds the wait for an upgraded instance to become
	// healthy (default 5m).
	HealthyTimeout time.Duration
	// Metrics is where the instances' metrics are (nil: no autoscale).
	Metrics *metrics.Store
	// Checker replaces the probes' network check (tests).
	Checker func(ctx context.Context, s probe.Spec, addr netip.Addr) error
	Log     logrus.FieldLogger
}

// Service is the scale-set API and its controllers. Safe for concurrent use.
type Service struct {
	cfg Config
	log logrus.FieldLogger

	mu     sync.Mutex
	ctl    map[string]*controller
	closed bool
	wg     sync.WaitGroup
}

// New returns a Service; Start runs its controllers.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.VMs == nil {
		return nil, errors.New("scaleset: Store and VMs are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = 2
	}
	if cfg.HealthyTimeout <= 0 {
		cfg.HealthyTimeout = 5 * time.Minute
	}
	if cfg.Events == nil {
		cfg.Events = &events.Hub{}
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	return &Service{cfg: cfg, log: cfg.Log, ctl: map[string]*controller{}}, nil
}

// Start removes load-balancer tables of sets that no longer exist and
// starts a controller for every set in the store.
func (s *Service) Start(ctx context.Context) error {
	sets, err := s.cfg.Store.ListSets(ctx)
	if err != nil {
		return err
	}
	if s.cfg.Balancer != nil {
		if have, err := s.cfg.Balancer.Sets(); err != nil {
			s.log.WithError(err).Warn("list load-balancer tables")
		} else {
			for _, name := range have {
				if !slices.ContainsFunc(sets, func(r store.Set) bool { return r.Name == name }) {
					if err := s.cfg.Balancer.Delete(name); err != nil {
						s.log.WithField("set", name).WithError(err).Warn("remove stale load-balancer table")
					} else {
						s.log.WithField("set", name).Info("removed stale load-balancer table")
					}
				}
			}
		}
	}
	s.retainFor(ctx)
	for _, r := range sets {
		s.controllerFor(r.Name)
	}
	return nil
}

// Close stops every controller and waits for their work to end. Work in
// flight is cut short; the next start converges from the store.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	ctls := make([]*controller, 0, len(s.ctl))
	for _, c := range s.ctl {
		ctls = append(ctls, c)
	}
	s.mu.Unlock()
	for _, c := range ctls {
		c.stop()
	}
	s.wg.Wait()
}

// Notify wakes the controllers at once (a VM changed state: a libvirt
// event), instead of at their next interval.
func (s *Service) Notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.ctl {
		c.wake()
	}
}

// controllerFor returns the running controller of set name, starting it if
// need be (nil after Close).
func (s *Service) controllerFor(name string) *controller {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if c, ok := s.ctl[name]; ok {
		return c
	}
	c := newController(s, name)
	s.ctl[name] = c
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.run()
		s.mu.Lock()
		if s.ctl[name] == c {
			delete(s.ctl, name)
		}
		s.mu.Unlock()
	}()
	return c
}

func (s *Service) existing(name string) *controller {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctl[name]
}

// spec is a set's desired state as stored (store.Set.Spec).
type spec struct {
	Version  int           `json:"version"`
	Capacity int           `json:"capacity"`
	LB       []api.LBRule  `json:"lb,omitempty"`
	Probe    string        `json:"probe,omitempty"`
	Policy   api.SetPolicy `json:"policy"`
	// Upgrade is the last upgrade (its progress while one runs).
	Upgrade *api.UpgradeStatus `json:"upgrade,omitempty"`
	// Autoscale are the set's autoscale settings (nil: none) and AutoState
	// what the autoscaler remembers between evaluations (its cooldown).
	Autoscale *autoscale.Settings `json:"autoscale,omitempty"`
	AutoState autoscale.State     `json:"autoscale_state"`
}

func decodeSpec(r store.Set) (spec, error) {
	var sp spec
	if err := json.Unmarshal(r.Spec, &sp); err != nil {
		return spec{}, fmt.Errorf("set %q: bad spec in store: %w", r.Name, err)
	}
	return sp, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are encoded
	}
	return b
}

// vmRequest is the create request of instance name from model m.
func vmRequest(name string, m api.SetModel) api.CreateVMRequest {
	return api.CreateVMRequest{
		Name: name, Image: m.Image, CPUs: m.CPUs, MemoryMiB: m.MemoryMiB, DiskBytes: m.DiskBytes,
		Network: m.Network, UserData: m.UserData, SSHKeys: m.SSHKeys, ReadyPort: m.ReadyPort, Clone: api.CloneAlways,
	}
}

// instanceName is the name of a set's instance with ordinal i.
func instanceName(set string, i int) string { return set + "-" + strconv.Itoa(i) }

// Create validates req, records the set and its first model, and starts
// its controller, which makes the instances. Nothing is made when it
// fails.
func (s *Service) Create(ctx context.Context, req api.CreateSetRequest) (api.ScaleSet, error) {
	if err := hypervisor.ValidateName(req.Name); err != nil {
		return api.ScaleSet{}, fmt.Errorf("%w: name: %w", ErrInvalid, err)
	}
	if len(req.Name) > 50 {
		return api.ScaleSet{}, fmt.Errorf("%w: name %q: at most 50 characters, so instance names fit", ErrInvalid, req.Name)
	}
	if vm.IsParentName(req.Name) {
		return api.ScaleSet{}, fmt.Errorf("%w: names beginning with %q are reserved", ErrInvalid, vm.ParentNamePrefix)
	}
	if _, err := s.cfg.Store.GetSet(ctx, req.Name); err == nil {
		return api.ScaleSet{}, fmt.Errorf("%w: %q", ErrExists, req.Name)
	}
	model, err := s.checkModel(ctx, req.Name, req.Model)
	if err != nil {
		return api.ScaleSet{}, err
	}
	pol, err := checkPolicy(req.Policy)
	if err != nil {
		return api.ScaleSet{}, err
	}
	if err := s.checkCapacity(req.Capacity, 0, pol, model); err != nil {
		return api.ScaleSet{}, err
	}
	if req.Probe != "" {
		p, err := probe.Parse(req.Probe)
		if err != nil {
			return api.ScaleSet{}, fmt.Errorf("%w: probe: %w", ErrInvalid, err)
		}
		req.Probe = p.String()
	}
	rules, err := s.checkRules(ctx, req.Name, model.Network, req.LB)
	if err != nil {
		return api.ScaleSet{}, err
	}
	sp := spec{Version: 1, Capacity: req.Capacity, LB: rules, Probe: req.Probe, Policy: pol}
	now := time.Now().UTC()
	row := store.Set{Name: req.Name, Spec: mustJSON(sp), CreatedAt: now}
	if err := s.cfg.Store.InsertSet(ctx, row, store.SetModel{Set: req.Name, Version: 1, Model: mustJSON(model), CreatedAt: now}); err != nil {
		if errors.Is(err, store.ErrExists) {
			return api.ScaleSet{}, fmt.Errorf("%w: %q", ErrExists, req.Name)
		}
		return api.ScaleSet{}, err
	}
	s.record(ctx, req.Name, api.Activity{Trigger: api.TriggerUser, Action: "create", Result: api.ResultSucceeded,
		Reason: fmt.Sprintf("set created with capacity %d", req.Capacity), Values: map[string]string{"capacity": strconv.Itoa(req.Capacity)}})
	s.controllerFor(req.Name)
	return s.Get(ctx, req.Name)
}

// checkModel applies defaults to m and validates it against the vm service.
func (s *Service) checkModel(ctx context.Context, set string, m api.SetModel) (api.SetModel, error) {
	req, err := s.cfg.VMs.ModelDefaults(vmRequest(instanceName(set, 0), m))
	if err != nil {
		return api.SetModel{}, fmt.Errorf("model: %w", err)
	}
	req.Name = set + "-model-check" // any free, valid name
	if err := s.cfg.VMs.ValidateModel(ctx, req); err != nil {
		return api.SetModel{}, fmt.Errorf("model: %w", err)
	}
	m.CPUs, m.MemoryMiB, m.DiskBytes, m.Network = req.CPUs, req.MemoryMiB, req.DiskBytes, req.Network
	return m, nil
}

func checkPolicy(p api.SetPolicy) (api.SetPolicy, error) {
	switch p.Repair {
	case "":
		p.Repair = api.RepairNone
	case api.RepairNone, api.RepairRestart, api.RepairReimage, api.RepairReplace:
	default:
		return p, fmt.Errorf("%w: repair %q: use none, restart, reimage or replace", ErrInvalid, p.Repair)
	}
	switch p.ScaleIn {
	case "":
		p.ScaleIn = api.ScaleInDefault
	case api.ScaleInDefault, api.ScaleInOldest, api.ScaleInNewest:
	default:
		return p, fmt.Errorf("%w: scale-in policy %q: use default, oldest or newest", ErrInvalid, p.ScaleIn)
	}
	up, err := checkUpgrade(p.Upgrade)
	if err != nil {
		return p, err
	}
	p.Upgrade = up
	if p.Grace < 0 || p.Drain < 0 || p.TerminateNotice < 0 || p.MaxCapacity < 0 {
		return p, fmt.Errorf("%w: grace, drain, terminate notice and max capacity must not be negative", ErrInvalid)
	}
	if p.Drain == 0 {
		p.Drain = api.Duration(30 * time.Second)
	}
	if p.Grace == 0 {
		p.Grace = api.Duration(60 * time.Second)
	}
	return p, nil
}

func checkUpgrade(u api.UpgradePolicy) (api.UpgradePolicy, error) {
	switch u.Mode {
	case "":
		u.Mode = api.UpgradeManual
	case api.UpgradeManual, api.UpgradeAutomatic, api.UpgradeRolling:
	default:
		return u, fmt.Errorf("%w: upgrade policy %q: use manual, automatic or rolling", ErrInvalid, u.Mode)
	}
	if _, err := batchSize(u.Batch, 1); err != nil {
		return u, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if u.MaxUnhealthy < 0 || u.MaxUnhealthy > 100 || u.MaxUnhealthyUpgraded < 0 || u.MaxUnhealthyUpgraded > 100 {
		return u, fmt.Errorf("%w: max unhealthy shares are percentages 0-100", ErrInvalid)
	}
	if u.MaxUnhealthy == 0 {
		u.MaxUnhealthy = 20
	}
	if u.Pause < 0 || u.Surge < 0 {
		return u, fmt.Errorf("%w: pause and surge must not be negative", ErrInvalid)
	}
	return u, nil
}

// checkCapacity refuses a capacity below 0, above the set's maximum, or
// whose new instances the host's available memory cannot hold.
func (s *Service) checkCapacity(capacity, current int, p api.SetPolicy, m api.SetModel) error {
	if capacity < 0 {
		return fmt.Errorf("%w: capacity %d is negative", ErrInvalid, capacity)
	}
	if p.MaxCapacity > 0 && capacity > p.MaxCapacity {
		return fmt.Errorf("%w: capacity %d is over the set's maximum %d", ErrInvalid, capacity, p.MaxCapacity)
	}
	if s.cfg.Host == nil || capacity <= current {
		return nil
	}
	avail, err := s.cfg.Host.MemAvailableBytes()
	if err != nil {
		return nil // the create's own admission still checks
	}
	need := int64(capacity-current) * int64(m.MemoryMiB) << 20
	if need > avail {
		return fmt.Errorf("%w: %d more instances of %d MiB need %d MiB; the host has %d MiB available: lower the capacity or free memory",
			ErrInsufficient, capacity-current, m.MemoryMiB, need>>20, avail>>20)
	}
	return nil
}

// checkRules validates load-balancer rules, fills in defaults (tcp, hash,
// the network's host address) and refuses a frontend another set uses or a
// host process listens on.
func (s *Service) checkRules(ctx context.Context, set, network string, rules []api.LBRule) ([]api.LBRule, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	if s.cfg.Balancer == nil {
		return nil, fmt.Errorf("%w: this galed has no load balancer (nftables unavailable); create the set without --lb", ErrInvalid)
	}
	others, err := s.cfg.Store.ListSets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.LBRule, 0, len(rules))
	for i, r := range rules {
		if r.Proto == "" {
			r.Proto = "tcp"
		}
		if r.Mode == "" {
			r.Mode = "hash"
		}
		if r.Proto != "tcp" && r.Proto != "udp" {
			return nil, fmt.Errorf("%w: lb rule %d: protocol %q: use tcp or udp", ErrInvalid, i+1, r.Proto)
		}
		if r.Mode != "hash" && r.Mode != "sourceip" && r.Mode != "roundrobin" {
			return nil, fmt.Errorf("%w: lb rule %d: mode %q: use hash, sourceip or roundrobin", ErrInvalid, i+1, r.Mode)
		}
		if r.FrontPort < 1 || r.FrontPort > 65535 || r.BackPort < 1 || r.BackPort > 65535 {
			return nil, fmt.Errorf("%w: lb rule %d: ports must be 1-65535", ErrInvalid, i+1)
		}
		if r.Addr == "" {
			if s.cfg.Networks == nil {
				return nil, fmt.Errorf("%w: lb rule %d: give the frontend address (ADDR:FRONT:BACK)", ErrInvalid, i+1)
			}
			a, err := s.cfg.Networks.HostAddress(ctx, network)
			if err != nil {
				return nil, fmt.Errorf("%w: lb rule %d: address of network %q: %w", ErrInvalid, i+1, network, err)
			}
			r.Addr = a.String()
		}
		a, err := netip.ParseAddr(r.Addr)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("%w: lb rule %d: address %q is not an IPv4 address", ErrInvalid, i+1, r.Addr)
		}
		for _, o := range out {
			if o.Addr == r.Addr && o.FrontPort == r.FrontPort && o.Proto == r.Proto {
				return nil, fmt.Errorf("%w: lb rules repeat frontend %s %s:%d", ErrInvalid, r.Proto, r.Addr, r.FrontPort)
			}
		}
		for _, row := range others {
			if row.Name == set {
				continue
			}
			sp, err := decodeSpec(row)
			if err != nil {
				continue
			}
			for _, o := range sp.LB {
				if o.Proto == r.Proto && o.FrontPort == r.FrontPort && (o.Addr == r.Addr || o.Addr == "0.0.0.0" || r.Addr == "0.0.0.0") {
					return nil, fmt.Errorf("%w: frontend %s %s:%d is set %q's", ErrConflict, r.Proto, r.Addr, r.FrontPort, row.Name)
				}
			}
		}
		if err := portFree(r.Proto, r.Addr, r.FrontPort); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// portFree refuses a frontend a host process already listens on: its
// connections would go to the set, not to the process.
func portFree(proto, addr string, port int) error {
	hp := net.JoinHostPort(addr, strconv.Itoa(port))
	var err error
	if proto == "udp" {
		var c net.PacketConn
		if c, err = net.ListenPacket("udp4", hp); err == nil {
			c.Close()
		}
	} else {
		var l net.Listener
		if l, err = net.Listen("tcp4", hp); err == nil {
			l.Close()
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%w: a host process already listens on %s %s: choose another frontend port", ErrConflict, proto, hp)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%w: %s is not an address of this host", ErrInvalid, addr)
	}
	return nil
}

// row returns the set's row and spec.
func (s *Service) row(ctx context.Context, name string) (store.Set, spec, error) {
	r, err := s.cfg.Store.GetSet(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return store.Set{}, spec{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	} else if err != nil {
		return store.Set{}, spec{}, err
	}
	sp, err := decodeSpec(r)
	return r, sp, err
}

// live returns the spec and models of a set that is not being deleted
// (ErrConflict when it is).
func (s *Service) live(ctx context.Context, name string) (spec, map[int]api.SetModel, error) {
	r, sp, err := s.row(ctx, name)
	if err != nil {
		return spec{}, nil, err
	}
	if r.Phase == store.PhaseDeleting {
		return spec{}, nil, fmt.Errorf("%w: set %q is being deleted", ErrConflict, name)
	}
	models, err := s.models(ctx, name)
	return sp, models, err
}

// models returns the set's model versions by number.
func (s *Service) models(ctx context.Context, name string) (map[int]api.SetModel, error) {
	rows, err := s.cfg.Store.SetModels(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make(map[int]api.SetModel, len(rows))
	for _, r := range rows {
		var m api.SetModel
		if err := json.Unmarshal(r.Model, &m); err != nil {
			return nil, fmt.Errorf("set %q model %d: %w", name, r.Version, err)
		}
		out[r.Version] = m
	}
	return out, nil
}

// List returns every set.
func (s *Service) List(ctx context.Context) ([]api.ScaleSet, error) {
	rows, err := s.cfg.Store.ListSets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.ScaleSet, 0, len(rows))
	for _, r := range rows {
		v, err := s.Get(ctx, r.Name)
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Get returns one set with its instance counts.
func (s *Service) Get(ctx context.Context, name string) (api.ScaleSet, error) {
	r, sp, err := s.row(ctx, name)
	if err != nil {
		return api.ScaleSet{}, err
	}
	models, err := s.models(ctx, name)
	if err != nil {
		return api.ScaleSet{}, err
	}
	insts, err := s.Instances(ctx, name)
	if err != nil {
		return api.ScaleSet{}, err
	}
	out := api.ScaleSet{Name: name, State: api.SetActive, Version: sp.Version, Model: models[sp.Version], Capacity: sp.Capacity,
		LB: sp.LB, Probe: sp.Probe, Policy: sp.Policy, CreatedAt: r.CreatedAt, Upgrade: sp.Upgrade}
	if out.LB == nil {
		out.LB = []api.LBRule{}
	}
	if c := s.existing(name); c != nil && c.upgrading() {
		out.State = api.SetUpgrading
	}
	if r.Phase == store.PhaseDeleting {
		out.State = api.SetDeleting
	}
	out.Model.UserData = nil // large; `set show --model` could add it later
	for _, in := range insts {
		out.Instances++
		if in.Health == api.HealthHealthy {
			out.Healthy++
		}
		if in.Latest {
			out.Latest++
		}
	}
	return out, nil
}

// Instances returns the set's instances with their health.
func (s *Service) Instances(ctx context.Context, name string) ([]api.SetInstance, error) {
	_, sp, err := s.row(ctx, name)
	if err != nil {
		return nil, err
	}
	var members []member
	if c := s.existing(name); c != nil {
		members = c.snapshot()
	}
	if members == nil { // no pass yet: read the store
		rows, err := s.cfg.Store.SetInstances(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			members = append(members, memberOf(r))
		}
	}
	out := make([]api.SetInstance, 0, len(members))
	for _, m := range members {
		in := api.SetInstance{Name: m.Name, Ordinal: m.Ordinal, Version: m.Version, Latest: m.Version == sp.Version,
			Health: m.Health, Detail: m.Detail, Protect: m.Protect, Address: m.Address, CreatedAt: m.CreatedAt}
		if in.Health == "" {
			in.Health = api.HealthUnknown
		}
		if m.VM != nil {
			in.State, in.Made = m.VM.State, m.VM.Made
		}
		out = append(out, in)
	}
	return out, nil
}

// Scale sets the capacity; the controller converges to it.
func (s *Service) Scale(ctx context.Context, name string, capacity int, trigger string) (api.ScaleSet, error) {
	sp, models, err := s.live(ctx, name)
	if err != nil {
		return api.ScaleSet{}, err
	}
	if trigger == api.TriggerUser && sp.Autoscale != nil && sp.Autoscale.Enabled {
		return api.ScaleSet{}, fmt.Errorf("%w: set %q is autoscaled: turn it off first with `gale set autoscale %s --disable`", ErrConflict, name, name)
	}
	if err := s.checkCapacity(capacity, sp.Capacity, sp.Policy, models[sp.Version]); err != nil {
		s.record(ctx, name, api.Activity{Trigger: trigger, Action: "scale", Result: api.ResultRefused, Reason: err.Error(),
			Values: map[string]string{"from": strconv.Itoa(sp.Capacity), "to": strconv.Itoa(capacity)}})
		return api.ScaleSet{}, err
	}
	from := sp.Capacity
	if _, err := s.cfg.Store.UpdateSet(ctx, name, func(r *store.Set) (*store.SetModel, error) {
		cur, err := decodeSpec(*r)
		if err != nil {
			return nil, err
		}
		from = cur.Capacity
		cur.Capacity = capacity
		r.Spec = mustJSON(cur)
		return nil, nil
	}); err != nil {
		return api.ScaleSet{}, err
	}
	s.record(ctx, name, api.Activity{Trigger: trigger, Action: "scale", Result: api.ResultSucceeded,
		Reason: fmt.Sprintf("capacity %d -> %d", from, capacity),
		Values: map[string]string{"from": strconv.Itoa(from), "to": strconv.Itoa(capacity)},
	})
	if c := s.controllerFor(name); c != nil {
		c.wake()
	}
	return s.Get(ctx, name)
}

// Delete marks the set for deletion; its controller drains and deletes
// every instance (protected ones too), removes the load balancer's table
// and then the set's rows.
func (s *Service) Delete(ctx context.Context, name string) (api.ScaleSet, error) {
	if _, err := s.cfg.Store.UpdateSet(ctx, name, func(r *store.Set) (*store.SetModel, error) {
		r.Phase = store.PhaseDeleting
		return nil, nil
	}); errors.Is(err, store.ErrNotFound) {
		return api.ScaleSet{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	} else if err != nil {
		return api.ScaleSet{}, err
	}
	s.record(ctx, name, api.Activity{Trigger: api.TriggerUser, Action: "delete", Result: api.ResultStarted, Reason: "set delete asked"})
	if c := s.controllerFor(name); c != nil {
		c.cancelUpgrade()
		c.wake()
	}
	set, err := s.Get(ctx, name)
	if errors.Is(err, ErrNotFound) { // deleted already
		return api.ScaleSet{Name: name, State: api.SetDeleting, LB: []api.LBRule{}}, nil
	}
	return set, err
}

// record appends an activity record of set, logs it and publishes it on
// the event stream. Failures to store it are logged only.
func (s *Service) record(ctx context.Context, set string, a api.Activity) api.Activity {
	a.Set = set
	if a.At.IsZero() {
		a.At = time.Now().UTC()
	}
	id, err := s.cfg.Store.AddSetActivity(context.WithoutCancel(ctx), set, a.At, mustJSON(a))
	if err != nil {
		s.log.WithField("set", set).WithError(err).Warn("record activity")
	}
	a.ID = id
	fields := logrus.Fields{"set": set, "action": a.Action, "trigger": a.Trigger, "result": a.Result}
	if a.Instance != "" {
		fields["instance"] = a.Instance
	}
	s.log.WithFields(fields).Info(a.Reason)
	s.cfg.Events.Publish(api.BusEvent{Kind: "set", Name: set, At: a.At, Activity: &a})
	return a
}

// Activity returns the set's records with ID > after (the last limit).
func (s *Service) Activity(ctx context.Context, name string, after int64, limit int) ([]api.Activity, error) {
	if _, _, err := s.row(ctx, name); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 200
	}
	ids, recs, err := s.cfg.Store.SetActivity(ctx, name, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]api.Activity, 0, len(recs))
	for i, b := range recs {
		var a api.Activity
		if err := json.Unmarshal(b, &a); err != nil {
			continue
		}
		a.ID = ids[i]
		out = append(out, a)
	}
	return out, nil
}

// FollowActivity calls fn with the set's records after after, then with
// each new one as it happens, until ctx ends or the set is gone.
func (s *Service) FollowActivity(ctx context.Context, name string, after int64, fn func(api.Activity) error) error {
	sub := s.cfg.Events.Subscribe("set")
	defer sub.Close()
	past, err := s.Activity(ctx, name, after, 1000)
	if err != nil {
		return err
	}
	last := after
	for _, a := range past {
		if err := fn(a); err != nil {
			return err
		}
		last = a.ID
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-sub.C:
			if ev.Name != name || ev.Activity == nil || ev.Activity.ID <= last {
				continue
			}
			last = ev.Activity.ID
			if err := fn(*ev.Activity); err != nil {
				return err
			}
			if ev.Activity.Action == "delete" && ev.Activity.Result == api.ResultSucceeded && ev.Activity.Instance == "" {
				return nil // the set is gone
			}
		}
	}
}

// Events returns the hub the service publishes on.
func (s *Service) Events() *events.Hub { return s.cfg.Events }

// Package vm is gale's single-VM service. Its Engine creates, boots and
// deletes a VM: a qcow2 overlay on a template, a NoCloud seed and a libvirt
// domain, made in that order and undone in reverse when any step fails. Its
// Service runs that work as operations (pkg/operation) behind galed's API:
// admission, create with readiness, lifecycle, exec and logs, reconcile
// after a restart, and the VM routes.
package vm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/cloudinit"
	"github.com/galevm/gale/pkg/disk"
	"github.com/galevm/gale/pkg/errdefs"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/revert"
)

// Sentinel errors of the engine; match them with errors.Is.
var (
	// ErrExists: a VM (its directory or domain) with that name already exists.
	ErrExists = errdefs.New(errdefs.Conflict, "vm already exists")
	// ErrNotFound: no VM with that name.
	ErrNotFound = errdefs.New(errdefs.NotFound, "vm not found")
	// ErrInvalid: the request is invalid; nothing was created.
	ErrInvalid = errdefs.New(errdefs.Invalid, "invalid vm request")
)

// File names inside a VM's directory.
const (
	DiskFile    = "disk.qcow2"
	SeedFile    = "seed.iso"
	ConsoleFile = "console.log"
)

// Template is the image a VM's disk is an overlay of.
type Template struct {
	Name   string // e.g. "debian-12"; recorded in the domain's metadata
	Path   string // absolute path of the template image
	Format string // "qcow2" or "raw"; never probed
	// Firmware is the boot firmware; empty means BIOS.
	Firmware hypervisor.Firmware
	// CPUModel is the guest CPU under TCG; empty means the driver's default.
	CPUModel string
	// Pending means the image is downloaded during the create: Validate
	// checks the path's form but not that the file exists.
	Pending bool
}

// CreateRequest is everything Create needs. Zero values take the defaults
// documented on each field.
type CreateRequest struct {
	Name      string // DNS label; also the guest's hostname
	Template  Template
	VCPUs     int   // default 1
	MemoryMiB int   // default 1024
	DiskBytes int64 // 0 keeps the template's virtual size
	Network   string
	// UserData is the user's cloud-init user-data, passed byte for byte.
	UserData []byte
	// SSHKeys are OpenSSH public keys for the image's default user.
	SSHKeys []string
	// Accel overrides the driver's accelerator (empty: the driver's choice).
	Accel hypervisor.Accel
	// Progress, when set, is called with each step of Create as it begins:
	// "disk", "seed", "define", "boot".
	Progress func(step string)
}

// Steps of Create reported to CreateRequest.Progress.
const (
	StepDisk   = "disk"
	StepSeed   = "seed"
	StepDefine = "define"
	StepBoot   = "boot"
)

// step reports step as begun, unless ctx has ended: then it returns an
// error saying which step was not begun, wrapping ctx's cause.
func (r CreateRequest) step(ctx context.Context, step string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("create stopped before step %s: %w", step, context.Cause(ctx))
	}
	if r.Progress != nil {
		r.Progress(step)
	}
	return nil
}

// Instance is a created VM's files and identity.
type Instance struct {
	Name       string
	ID         string // gale's instance id, also cloud-init's instance-id
	Dir        string
	DiskPath   string
	SeedPath   string
	ConsoleLog string
	MAC        string
}

// Engine creates and deletes VMs. Its fields must be set before use; it is
// safe for concurrent use on different names. Serialising operations on the
// same name is the caller's job.
type Engine struct {
	Driver hypervisor.Driver
	Disks  disk.Manager
	// Dir holds one directory per VM (Dir/<name>/), readable by the qemu user.
	Dir string
	Log logrus.FieldLogger
}

// Paths returns where the files of VM name live. It does not validate name.
func (e *Engine) Paths(name string) Instance {
	dir := filepath.Join(e.Dir, name)
	return Instance{
		Name:       name,
		Dir:        dir,
		DiskPath:   filepath.Join(dir, DiskFile),
		SeedPath:   filepath.Join(dir, SeedFile),
		ConsoleLog: filepath.Join(dir, ConsoleFile),
	}
}

func (e *Engine) log() logrus.FieldLogger {
	if e.Log == nil {
		return logrus.StandardLogger()
	}
	return e.Log
}

// Validate checks req without side effects, including that its network and
// template exist. It returns an error wrapping ErrInvalid, ErrExists or
// hypervisor.ErrUnavailable.
func (e *Engine) Validate(ctx context.Context, req CreateRequest) error {
	if err := hypervisor.ValidateName(req.Name); err != nil {
		return fmt.Errorf("%w: name: %w", ErrInvalid, err)
	}
	if req.Template.Format != disk.FormatQCOW2 && req.Template.Format != disk.FormatRaw {
		return fmt.Errorf("%w: template %q: format %q is not qcow2 or raw", ErrInvalid, req.Template.Name, req.Template.Format)
	}
	if !filepath.IsAbs(req.Template.Path) {
		return fmt.Errorf("%w: template %q: path %q is not absolute", ErrInvalid, req.Template.Name, req.Template.Path)
	}
	if !req.Template.Pending {
		st, err := os.Stat(req.Template.Path)
		if err != nil {
			return fmt.Errorf("%w: template %q: %w", ErrInvalid, req.Template.Name, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%w: template %q: %s is not a regular file", ErrInvalid, req.Template.Name, req.Template.Path)
		}
	}
	if req.DiskBytes < 0 || req.VCPUs < 0 || req.MemoryMiB < 0 {
		return fmt.Errorf("%w: cpus, memory and disk size must not be negative", ErrInvalid)
	}
	if req.Network == "" {
		return fmt.Errorf("%w: a network is required", ErrInvalid)
	}
	if _, err := e.Driver.GetNetwork(ctx, req.Network); err != nil {
		if errors.Is(err, hypervisor.ErrNotFound) {
			return fmt.Errorf("%w: network %q does not exist", ErrInvalid, req.Network)
		}
		return fmt.Errorf("look up network %q: %w", req.Network, err)
	}
	seed := seedConfig(req, "i-check", "52:54:00:00:00:01")
	if err := seed.Validate(); err != nil {
		return fmt.Errorf("%w: cloud-init: %w", ErrInvalid, err)
	}
	if _, err := e.Driver.Get(ctx, req.Name); err == nil {
		return fmt.Errorf("%w: domain %q is defined", ErrExists, req.Name)
	} else if !errors.Is(err, hypervisor.ErrNotFound) {
		return fmt.Errorf("look up domain %q: %w", req.Name, err)
	}
	if _, err := os.Lstat(e.Paths(req.Name).Dir); err == nil {
		return fmt.Errorf("%w: %s exists", ErrExists, e.Paths(req.Name).Dir)
	}
	return nil
}

func seedConfig(req CreateRequest, id, mac string) cloudinit.Config {
	return cloudinit.Config{
		InstanceID:        id,
		Hostname:          req.Name,
		SSHAuthorizedKeys: req.SSHKeys,
		UserData:          req.UserData,
		Network:           &cloudinit.NetworkConfig{MAC: mac},
	}
}

// Create makes the VM's overlay disk, seed and domain, then starts it. It
// does not wait for the guest: see WaitReady. On any error, and when ctx ends
// before a step begins, everything it made is removed again, and what existed
// before is untouched.
func (e *Engine) Create(ctx context.Context, req CreateRequest) (_ Instance, err error) {
	if req.VCPUs == 0 {
		req.VCPUs = 1
	}
	if req.MemoryMiB == 0 {
		req.MemoryMiB = 1024
	}
	if err := e.Validate(ctx, req); err != nil {
		return Instance{}, err
	}
	log := e.log().WithField("vm", req.Name)
	// inst is a local, not the named result: undo steps must still see the
	// paths after a return statement has zeroed the results.
	inst := e.Paths(req.Name)
	inst.ID = "i-" + randomHex(8)
	inst.MAC = RandomMAC()

	r := revert.New()
	r.OnError = func(err error) { log.WithError(err).Warn("cleanup after failed create") }
	defer func() {
		if err != nil {
			_ = r.Fail()
		}
	}()

	if err := e.claimDir(inst, r); err != nil {
		return Instance{}, err
	}

	if err := req.step(ctx, StepDisk); err != nil {
		return Instance{}, err
	}
	if err := e.Disks.CreateOverlay(ctx, inst.DiskPath, req.Template.Path, req.Template.Format, req.DiskBytes); err != nil {
		return Instance{}, fmt.Errorf("create disk: %w", err)
	}
	log.WithField("op", "disk").Debug("overlay created")

	if err := req.step(ctx, StepSeed); err != nil {
		return Instance{}, err
	}
	if err := cloudinit.WriteSeed(inst.SeedPath, seedConfig(req, inst.ID, inst.MAC)); err != nil {
		return Instance{}, fmt.Errorf("write cloud-init seed: %w", err)
	}

	spec := hypervisor.DomainSpec{
		Name:      req.Name,
		VCPUs:     req.VCPUs,
		MemoryMiB: req.MemoryMiB,
		Accel:     req.Accel,
		Firmware:  req.Template.Firmware,
		CPUModel:  req.Template.CPUModel,
		Disks: []hypervisor.Disk{
			{Path: inst.DiskPath, Format: disk.FormatQCOW2, Device: hypervisor.DeviceDisk, Bus: "virtio", Target: "vda"},
			// The seed is a read-only virtio disk, not a SATA cdrom: the
			// Debian cloud kernel has no AHCI/sr driver, so a cdrom seed
			// is invisible to cloud-init there.
			{Path: inst.SeedPath, Format: disk.FormatRaw, Device: hypervisor.DeviceDisk, Bus: "virtio", Target: "vdb", ReadOnly: true},
		},
		NICs:       []hypervisor.NIC{{Network: req.Network, MAC: inst.MAC, Model: "virtio"}},
		SerialLog:  inst.ConsoleLog,
		GuestAgent: true,
		// A generation ID lets a clone restored from this domain's saved
		// state tell its kernel to reseed the random number generator.
		GenID: true,
		Metadata: hypervisor.Metadata{
			ID:        inst.ID,
			Image:     req.Template.Name,
			CreatedAt: time.Now().UTC().Truncate(time.Second),
		},
	}
	if err := req.step(ctx, StepDefine); err != nil {
		return Instance{}, err
	}
	if err := e.Driver.Define(ctx, spec); err != nil {
		if errors.Is(err, hypervisor.ErrExists) {
			return Instance{}, fmt.Errorf("%w: %w", ErrExists, err)
		}
		return Instance{}, fmt.Errorf("define domain: %w", err)
	}
	// Undo with a fresh context: the request's may be what failed.
	r.Add(func() error { return e.removeDomain(context.Background(), req.Name) })
	log.WithField("op", "define").Debug("domain defined")

	if err := req.step(ctx, StepBoot); err != nil {
		return Instance{}, err
	}
	if err := e.Driver.Start(ctx, req.Name); err != nil {
		return Instance{}, fmt.Errorf("start domain: %w", err)
	}
	log.WithField("op", "start").Info("vm started")
	r.Success()
	return inst, nil
}

// claimDir makes the VM's directory, its claim on the name on disk (Mkdir
// fails if it exists: ErrExists), and adds its removal to r.
func (e *Engine) claimDir(inst Instance, r *revert.Reverter) error {
	if err := os.MkdirAll(e.Dir, 0o755); err != nil {
		return fmt.Errorf("create vm directory root: %w", err)
	}
	if err := os.Mkdir(inst.Dir, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s exists", ErrExists, inst.Dir)
		}
		return fmt.Errorf("create vm directory: %w", err)
	}
	r.Add(func() error { return os.RemoveAll(inst.Dir) })
	return nil
}

// removeDomain forces the domain off, releases its DHCP leases and undefines
// it; a missing domain is not an error. A lease that cannot be released is
// logged, not fatal: it expires on its own.
func (e *Engine) removeDomain(ctx context.Context, name string) error {
	if err := e.Driver.Destroy(ctx, name); err != nil && !errors.Is(err, hypervisor.ErrNotFound) {
		return fmt.Errorf("destroy domain %q: %w", name, err)
	}
	if err := e.Driver.ReleaseLeases(ctx, name); err != nil && !errors.Is(err, hypervisor.ErrNotFound) {
		e.log().WithField("vm", name).WithError(err).Warn("DHCP lease left to expire")
	}
	if err := e.Driver.Undefine(ctx, name); err != nil && !errors.Is(err, hypervisor.ErrNotFound) {
		return fmt.Errorf("undefine domain %q: %w", name, err)
	}
	return nil
}

// DeleteOptions tune Delete.
type DeleteOptions struct {
	// KeepDisk leaves the VM's directory (overlay, seed, console log) in place.
	KeepDisk bool
	// Owner is who deletes: the Service refuses to delete a VM whose owner
	// (see Provision) is another (ErrOwned). The engine ignores it.
	Owner string
}

// Delete forces the VM off, undefines its domain and removes its directory.
// It is idempotent: deleting what is already (partly) gone finishes the job.
// It returns ErrNotFound only when neither domain nor directory exists.
func (e *Engine) Delete(ctx context.Context, name string, opts DeleteOptions) error {
	if err := hypervisor.ValidateName(name); err != nil {
		return fmt.Errorf("%w: name: %w", ErrInvalid, err)
	}
	inst := e.Paths(name)
	_, domErr := e.Driver.Get(ctx, name)
	if domErr != nil && !errors.Is(domErr, hypervisor.ErrNotFound) {
		return fmt.Errorf("look up domain %q: %w", name, domErr)
	}
	_, dirErr := os.Lstat(inst.Dir)
	if errors.Is(domErr, hypervisor.ErrNotFound) && errors.Is(dirErr, os.ErrNotExist) {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err := e.removeDomain(ctx, name); err != nil {
		return err
	}
	if opts.KeepDisk {
		return nil
	}
	if err := os.RemoveAll(inst.Dir); err != nil {
		return fmt.Errorf("remove %s: %w", inst.Dir, err)
	}
	e.log().WithField("vm", name).Info("vm deleted")
	return nil
}

// RandomMAC returns a locally administered unicast MAC in QEMU's 52:54:00 prefix.
func RandomMAC() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

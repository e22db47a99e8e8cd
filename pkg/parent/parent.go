// Package parent keeps gale's saved parents: for each VM model (template,
// size, network, user-data, keys) at most one guest that was booted from
// it until cloud-init finished, then saved with libvirt. Clones of the
// model are restored from that state (vm.Engine.Clone) in seconds instead
// of booting for a minute.
//
// A parent lives in Dir/<name>/ (name "gale-parent-" + 12 hex digits of
// the model's key): disk.qcow2 (frozen: the backing file of every clone),
// seed.iso, console.log, state.sav (libvirt's save image) and parent.json,
// written last. A directory without parent.json is an unfinished build and
// is removed by Clean and before a new build. Parent domains exist only
// while a parent is built: after the save they are undefined.
package parent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/errdefs"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/vm"
)

// NamePrefix begins the name of every parent (and of its domain while it
// is built). VM names with this prefix are reserved.
const NamePrefix = "gale-parent-"

// File names inside a parent's directory, besides vm.Engine's.
const (
	StateFile  = "state.sav"
	RecordFile = "parent.json"
)

// Sentinel errors; match them with errors.Is.
var (
	ErrNotFound = errdefs.New(errdefs.NotFound, "parent not found")
	// ErrInUse: the parent has clones; delete them first.
	ErrInUse = errdefs.New(errdefs.Conflict, "parent in use")
)

// DefaultKeep is Manager.Keep's default.
const DefaultKeep = 4

// DefaultBuildTimeout bounds a parent's boot until cloud-init is done.
const DefaultBuildTimeout = 15 * time.Minute

// Record is a built parent, as parent.json stores it.
type Record struct {
	Name          string    `json:"name"`
	Key           string    `json:"key"`
	Image         string    `json:"image"`
	ImagePath     string    `json:"image_path"`
	CPUs          int       `json:"cpus"`
	MemoryMiB     int       `json:"memory_mib"`
	DiskBytes     int64     `json:"disk_bytes"`
	Network       string    `json:"network"`
	UserData      string    `json:"user_data_sha256"`
	MAC           string    `json:"mac"`
	InstanceID    string    `json:"instance_id"`
	StateBytes    int64     `json:"state_bytes"`
	DiskBytesUsed int64     `json:"disk_bytes_used"`
	BuiltAt       time.Time `json:"built_at"`
	// BuildTime is how long the boot to ready and the save took.
	BuildTime time.Duration `json:"build_time_ns"`
}

// Usage reports which VMs are clones of a parent.
type Usage interface {
	ClonesOf(ctx context.Context, parent string) ([]string, error)
}

// Manager builds, finds and removes parents. Engine's Dir must be the
// manager's Dir: parents are VMs of their own engine, never in the VM
// directory. It is safe for concurrent use; builds of one model are
// shared (one boot however many callers wait for it).
type Manager struct {
	Engine *vm.Engine
	Usage  Usage
	// BuildTimeout bounds a build's boot; default DefaultBuildTimeout.
	BuildTimeout time.Duration
	// Keep caps the parents kept after a build: beyond it, the least
	// recently used parents without clones are removed (see Prune).
	// Default DefaultKeep.
	Keep int
	Log  logrus.FieldLogger

	mu     sync.Mutex
	builds map[string]*build
}

type build struct {
	done chan struct{}
	ref  vm.ParentRef
	err  error
}

// Key is the identity of req's model: everything that makes the guest a
// parent saves differ. Name and Progress are not part of it.
func Key(req vm.CreateRequest) string {
	sum := sha256.Sum256(req.UserData)
	model := struct {
		V                                  int
		Image, ImagePath, Format, Firmware string
		CPUModel, Network, Accel, UserData string
		CPUs, MemoryMiB                    int
		DiskBytes                          int64
		SSHKeys                            []string
	}{
		V: 1, Image: req.Template.Name, ImagePath: req.Template.Path, Format: req.Template.Format,
		Firmware: string(req.Template.Firmware), CPUModel: req.Template.CPUModel, Network: req.Network,
		Accel: string(req.Accel), UserData: hex.EncodeToString(sum[:]), CPUs: req.VCPUs,
		MemoryMiB: req.MemoryMiB, DiskBytes: req.DiskBytes, SSHKeys: req.SSHKeys,
	}
	b, _ := json.Marshal(model)
	k := sha256.Sum256(b)
	return hex.EncodeToString(k[:])
}

// NameOf is the parent name of a model key.
func NameOf(key string) string { return NamePrefix + key[:12] }

func (m *Manager) dir() string { return m.Engine.Dir }

func (m *Manager) log() logrus.FieldLogger {
	if m.Log == nil {
		return logrus.StandardLogger()
	}
	return m.Log
}

// Lookup returns the built parent of req's model, if there is one. It
// never builds.
func (m *Manager) Lookup(_ context.Context, req vm.CreateRequest) (vm.ParentRef, bool, error) {
	rec, err := m.read(NameOf(Key(withDefaults(req))))
	if errors.Is(err, ErrNotFound) {
		return vm.ParentRef{}, false, nil
	}
	if err != nil {
		return vm.ParentRef{}, false, err
	}
	m.touch(rec.Name)
	return m.ref(rec), true, nil
}

// Ensure returns the parent of req's model, building it first when there
// is none: a VM booted from the model until cloud-init is done, then
// saved. Concurrent calls for one model share one build; progress gets the
// build's stages. A failed build leaves nothing behind.
func (m *Manager) Ensure(ctx context.Context, req vm.CreateRequest, progress func(stage string)) (vm.ParentRef, error) {
	req = withDefaults(req)
	key := Key(req)
	name := NameOf(key)
	for {
		if rec, err := m.read(name); err == nil {
			m.touch(name)
			return m.ref(rec), nil
		} else if !errors.Is(err, ErrNotFound) {
			return vm.ParentRef{}, err
		}
		m.mu.Lock()
		if m.builds == nil {
			m.builds = map[string]*build{}
		}
		b, running := m.builds[key]
		if !running {
			b = &build{done: make(chan struct{})}
			m.builds[key] = b
		}
		m.mu.Unlock()
		if running {
			if progress != nil {
				progress("waiting for parent " + name)
			}
			select {
			case <-b.done:
				if b.err != nil {
					return vm.ParentRef{}, b.err
				}
				continue
			case <-ctx.Done():
				return vm.ParentRef{}, ctx.Err()
			}
		}
		b.ref, b.err = m.build(ctx, req, key, progress)
		if b.err == nil {
			keep := m.Keep
			if keep <= 0 {
				keep = DefaultKeep
			}
			if removed, err := m.Prune(ctx, keep); err != nil {
				m.log().WithError(err).Warn("prune parents")
			} else if len(removed) > 0 {
				m.log().WithField("removed", removed).Info("pruned parents")
			}
		}
		m.mu.Lock()
		delete(m.builds, key)
		m.mu.Unlock()
		close(b.done)
		return b.ref, b.err
	}
}

// withDefaults applies the engine's defaults so that a request with and
// without them names one model.
func withDefaults(req vm.CreateRequest) vm.CreateRequest {
	if req.VCPUs == 0 {
		req.VCPUs = 1
	}
	if req.MemoryMiB == 0 {
		req.MemoryMiB = 1024
	}
	req.Name, req.Progress = "", nil
	return req
}

// settleScript runs in a parent just before its save: it drops the
// guest's clean caches, so the state file holds less, and what is dropped
// is read again from each clone's own disk and seed, never stale data
// from the parent's. (Filling the free memory with zeros as well, which
// QEMU's stream skips, made the web-server model's state 186 MB instead of
// 253 MB but cost about 40 s of emulated memset per parent and did not
// make restores faster: see docs/benchmarks.md.)
const settleScript = "sync && echo 3 > /proc/sys/vm/drop_caches"

// build boots, waits for and saves the parent of req's model.
func (m *Manager) build(ctx context.Context, req vm.CreateRequest, key string, progress func(string)) (_ vm.ParentRef, err error) {
	name := NameOf(key)
	log := m.log().WithField("parent", name)
	start := time.Now()
	// A directory without a record is an unfinished build.
	if err := m.Engine.Delete(context.Background(), name, vm.DeleteOptions{}); err != nil && !errors.Is(err, vm.ErrNotFound) {
		return vm.ParentRef{}, fmt.Errorf("remove unfinished parent %s: %w", name, err)
	}
	report := func(s string) {
		if progress != nil {
			progress(s)
		}
	}
	report("building parent " + name)
	req.Name = name
	inst, err := m.Engine.Create(ctx, req)
	if err != nil {
		return vm.ParentRef{}, fmt.Errorf("build parent %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			if derr := m.Engine.Delete(context.Background(), name, vm.DeleteOptions{}); derr != nil {
				log.WithError(derr).Warn("remove failed parent")
			}
		}
	}()
	timeout := m.BuildTimeout
	if timeout <= 0 {
		timeout = DefaultBuildTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	drv := m.Engine.Driver
	if _, err := vm.WaitReadyFor(wctx, drv, name, vm.ReadyCheck{Mode: vm.ReadyCloudInit}, func(p vm.Progress) {
		report("parent " + string(p.Stage))
	}); err != nil {
		return vm.ParentRef{}, fmt.Errorf("build parent %s: boot: %w", name, err)
	}
	res, err := drv.AgentExec(wctx, name, hypervisor.ExecRequest{Path: "/bin/sh", Args: []string{"-c", settleScript}})
	if err != nil || res.ExitCode != 0 {
		return vm.ParentRef{}, fmt.Errorf("build parent %s: settle the guest's memory: exit %d: %s: %w", name, res.ExitCode, res.Stderr, err)
	}
	report("saving parent " + name)
	statePath := filepath.Join(inst.Dir, StateFile)
	if err := drv.Save(ctx, name, statePath); err != nil {
		return vm.ParentRef{}, fmt.Errorf("build parent %s: %w", name, err)
	}
	// The domain is no longer needed: clones are new domains. Keep the files.
	if err := m.Engine.Delete(context.Background(), name, vm.DeleteOptions{KeepDisk: true}); err != nil {
		return vm.ParentRef{}, fmt.Errorf("build parent %s: undefine: %w", name, err)
	}
	// The disk is every clone's backing file from now on.
	if err := os.Chmod(inst.DiskPath, 0o444); err != nil {
		return vm.ParentRef{}, fmt.Errorf("build parent %s: freeze disk: %w", name, err)
	}
	st, err := os.Stat(statePath)
	if err != nil {
		return vm.ParentRef{}, fmt.Errorf("build parent %s: %w", name, err)
	}
	sum := sha256.Sum256(req.UserData)
	rec := Record{
		Name: name, Key: key, Image: req.Template.Name, ImagePath: req.Template.Path, CPUs: req.VCPUs,
		MemoryMiB: req.MemoryMiB, DiskBytes: req.DiskBytes, Network: req.Network,
		UserData: hex.EncodeToString(sum[:]), MAC: inst.MAC, InstanceID: inst.ID, StateBytes: st.Size(),
		DiskBytesUsed: diskUsage(inst.DiskPath), BuiltAt: time.Now().UTC(), BuildTime: time.Since(start),
	}
	if err := writeRecord(filepath.Join(inst.Dir, RecordFile), rec); err != nil {
		return vm.ParentRef{}, fmt.Errorf("build parent %s: %w", name, err)
	}
	log.WithFields(logrus.Fields{"state_bytes": rec.StateBytes, "took": rec.BuildTime.Round(time.Second)}).Info("parent saved")
	return m.ref(rec), nil
}

func writeRecord(path string, rec Record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// read returns the record of parent name; ErrNotFound when there is none
// or it is unfinished.
func (m *Manager) read(name string) (Record, error) {
	if !strings.HasPrefix(name, NamePrefix) || hypervisor.ValidateName(name) != nil {
		return Record{}, fmt.Errorf("%w: %q is not a parent name", ErrNotFound, name)
	}
	b, err := os.ReadFile(filepath.Join(m.dir(), name, RecordFile))
	if errors.Is(err, os.ErrNotExist) {
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return Record{}, fmt.Errorf("read parent %s: %w", name, err)
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil || rec.Name != name {
		return Record{}, fmt.Errorf("read parent %s: malformed %s", name, RecordFile)
	}
	return rec, nil
}

// touch records that parent name was used now (for eviction order).
func (m *Manager) touch(name string) {
	now := time.Now()
	_ = os.Chtimes(filepath.Join(m.dir(), name, RecordFile), now, now)
}

func (m *Manager) ref(rec Record) vm.ParentRef {
	p := m.Engine.Paths(rec.Name)
	return vm.ParentRef{
		Name: rec.Name, StatePath: filepath.Join(p.Dir, StateFile), StateBytes: rec.StateBytes,
		DiskPath: p.DiskPath, MAC: rec.MAC, InstanceID: rec.InstanceID,
	}
}

// Info is a parent as List reports it.
type Info struct {
	Record
	// Clones are the VMs restored from it.
	Clones []string `json:"clones"`
	// LastUsed is when a clone was last made from it.
	LastUsed time.Time `json:"last_used"`
}

// List returns the built parents, by name.
func (m *Manager) List(ctx context.Context) ([]Info, error) {
	ents, err := os.ReadDir(m.dir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list parents: %w", err)
	}
	var out []Info
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), NamePrefix) {
			continue
		}
		rec, err := m.read(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // unfinished
		}
		if err != nil {
			return nil, err
		}
		info := Info{Record: rec}
		if st, err := os.Stat(filepath.Join(m.dir(), e.Name(), RecordFile)); err == nil {
			info.LastUsed = st.ModTime().UTC()
		}
		if m.Usage != nil {
			if info.Clones, err = m.Usage.ClonesOf(ctx, rec.Name); err != nil {
				return nil, fmt.Errorf("list parents: %w", err)
			}
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove deletes parent name's files. A parent with clones is ErrInUse:
// its disk is their backing file.
func (m *Manager) Remove(ctx context.Context, name string) error {
	if _, err := m.read(name); err != nil {
		return err
	}
	if m.Usage != nil {
		clones, err := m.Usage.ClonesOf(ctx, name)
		if err != nil {
			return fmt.Errorf("remove parent %s: %w", name, err)
		}
		if len(clones) > 0 {
			return fmt.Errorf("%w: %s has clones %s; delete them first", ErrInUse, name, strings.Join(clones, ", "))
		}
	}
	// The record goes first: a parent without one is never cloned again.
	if err := os.Remove(filepath.Join(m.dir(), name, RecordFile)); err != nil {
		return fmt.Errorf("remove parent %s: %w", name, err)
	}
	if err := m.Engine.Delete(ctx, name, vm.DeleteOptions{}); err != nil && !errors.Is(err, vm.ErrNotFound) {
		return fmt.Errorf("remove parent %s: %w", name, err)
	}
	m.log().WithField("parent", name).Info("parent removed")
	return nil
}

// Prune removes parents nothing uses: parents without clones that are
// stale (their image file is gone, or a parent built later for the same
// image name uses another file of it: the image was rebuilt or pulled
// again) or beyond the keep most recently used. It returns the names
// removed.
func (m *Manager) Prune(ctx context.Context, keep int) ([]string, error) {
	infos, err := m.List(ctx)
	if err != nil {
		return nil, err
	}
	// The image file of the latest parent of each image name.
	latest := map[string]Record{}
	for _, p := range infos {
		if l, ok := latest[p.Image]; !ok || p.BuiltAt.After(l.BuiltAt) {
			latest[p.Image] = p.Record
		}
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].LastUsed.After(infos[j].LastUsed) })
	var removed []string
	kept := 0
	for _, p := range infos {
		_, imgErr := os.Stat(p.ImagePath)
		stale := imgErr != nil || p.ImagePath != latest[p.Image].ImagePath
		if !stale && kept < keep {
			kept++
			continue
		}
		if len(p.Clones) > 0 {
			continue
		}
		if err := m.Remove(ctx, p.Name); err != nil {
			if errors.Is(err, ErrInUse) {
				continue
			}
			return removed, err
		}
		removed = append(removed, p.Name)
	}
	return removed, nil
}

// Clean removes what an interrupted build left: parent domains (a parent
// has a domain only while it is built) and directories without a record.
// Call it at start, before anything else uses the manager.
func (m *Manager) Clean(ctx context.Context) error {
	doms, err := m.Engine.Driver.List(ctx)
	if err != nil {
		return fmt.Errorf("clean parents: %w", err)
	}
	for _, d := range doms {
		if !strings.HasPrefix(d.Name, NamePrefix) {
			continue
		}
		if _, err := m.read(d.Name); err == nil {
			// Built, but its domain survived an interrupted undefine.
			if err := m.Engine.Delete(ctx, d.Name, vm.DeleteOptions{KeepDisk: true}); err != nil {
				return fmt.Errorf("clean parent %s: %w", d.Name, err)
			}
			continue
		}
		if err := m.Engine.Delete(ctx, d.Name, vm.DeleteOptions{}); err != nil && !errors.Is(err, vm.ErrNotFound) {
			return fmt.Errorf("clean parent %s: %w", d.Name, err)
		}
		m.log().WithField("parent", d.Name).Warn("removed unfinished parent build")
	}
	ents, err := os.ReadDir(m.dir())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("clean parents: %w", err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), NamePrefix) {
			continue
		}
		if _, err := m.read(e.Name()); errors.Is(err, ErrNotFound) {
			if err := os.RemoveAll(filepath.Join(m.dir(), e.Name())); err != nil {
				return fmt.Errorf("clean parent %s: %w", e.Name(), err)
			}
			m.log().WithField("parent", e.Name()).Warn("removed unfinished parent directory")
		}
	}
	return nil
}

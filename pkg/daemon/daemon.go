package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/disk"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/hypervisor/libvirt"
	"github.com/galevm/gale/pkg/lb"
	"github.com/galevm/gale/pkg/metrics"
	"github.com/galevm/gale/pkg/network"
	"github.com/galevm/gale/pkg/operation"
	"github.com/galevm/gale/pkg/parent"
	"github.com/galevm/gale/pkg/server"
	"github.com/galevm/gale/pkg/server/httpapi"
	"github.com/galevm/gale/pkg/store"
	"github.com/galevm/gale/pkg/version"
	"github.com/galevm/gale/pkg/vm"
)

// LockTimeout is how long start-up waits for the data directory's lock.
const LockTimeout = 2 * time.Second

// Run starts galed and serves until ctx ends, then shuts down gracefully.
// Start order: lock, store, libvirt driver, default network (created or
// started if need be), reconcile (which starts VMs on it), socket, serve. A hypervisor that is down at start is retried until ctx ends.
func Run(ctx context.Context, cfg Config, log *logrus.Logger) error {
	lock, err := store.Lock(cfg.DataDir, LockTimeout)
	if err != nil {
		return err
	}
	defer lock.Unlock()

	st, err := store.Open(cfg.DataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	if n, err := st.FailRunningOperations(ctx, api.OpRunning, api.OpFailed, "galed stopped while the operation ran"); err != nil {
		return err
	} else if n > 0 {
		log.WithField("count", n).Warn("marked interrupted operations failed")
	}
	_ = st.PruneOperations(ctx, time.Now().Add(-30*24*time.Hour))

	drv, err := connect(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer drv.Close()

	pub, err := EnsureSSHKey(cfg.DataDir)
	if err != nil {
		return err
	}
	ops := operation.New(512, storeRecorder{st: st, log: log})
	ops.SetLogger(log)
	disks := disk.NewQemuImg(disk.ExecRunner{})
	engine := &vm.Engine{Driver: drv, Disks: disks, Dir: filepath.Join(cfg.DataDir, "vms"), Log: log}
	parents := &parent.Manager{
		Engine: &vm.Engine{Driver: drv, Disks: disks, Dir: filepath.Join(cfg.DataDir, "parents"), Log: log},
		Usage:  cloneRecords{st},
		Log:    log,
	}
	// Before reconcile: an interrupted parent build leaves a domain that
	// is the parent manager's to remove, not a VM to adopt.
	if err := parents.Clean(ctx); err != nil {
		log.WithError(err).Warn("clean unfinished parents")
	} else if removed, err := parents.Prune(ctx, parent.DefaultKeep); err != nil {
		log.WithError(err).Warn("prune parents")
	} else if len(removed) > 0 {
		log.WithField("removed", removed).Info("pruned parents")
	}
	images, err := newImages(cfg, ops, disks, engine, parents, st, log)
	if err != nil {
		return err
	}
	defer images.Close()
	kernelLB, err := lb.New()
	if err != nil {
		log.WithError(err).Warn("nftables unavailable: scale sets get no load balancer, open networks no isolation")
		kernelLB = nil
	} else {
		defer kernelLB.Close()
	}
	var nets *network.Service
	nets, err = network.New(network.Config{Driver: drv, Store: st, Log: log,
		Changed: func(ctx context.Context) { isolateOpen(ctx, kernelLB, nets, log) }})
	if err != nil {
		return err
	}
	svc, err := vm.NewService(vm.ServiceConfig{
		Engine:         engine,
		Networks:       nets,
		Store:          st,
		Ops:            ops,
		Images:         images,
		DefaultNetwork: cfg.DefaultNetwork.Name,
		SSHKeys:        []string{pub},
		StallTimeout:   cfg.StallTimeout,
		Parents:        parents,
		Log:            log,
	})
	if err != nil {
		return err
	}
	defer svc.Close()

	// The default network first: reconcile starts VMs that are on it.
	if err := ensureDefaultNetwork(ctx, nets, cfg.DefaultNetwork, log); err != nil {
		return err
	}
	// Before reconcile starts guests: open networks are isolated by gale.
	isolateOpen(ctx, kernelLB, nets, log)
	if rep, err := svc.Reconcile(ctx, vm.ReconcileOptions{StartStopped: true}); err != nil {
		log.WithError(err).Warn("reconcile at start failed; the periodic resync will retry")
	} else {
		log.WithField("report", fmt.Sprintf("%+v", rep)).Info("reconciled")
	}

	// Metrics: one bulk stats call per interval, history kept across
	// restarts for the autoscaler's windows.
	mstore := metrics.NewStore(time.Hour)
	mpath := filepath.Join(cfg.DataDir, "metrics.gob")
	if err := mstore.Load(mpath); err != nil {
		log.WithError(err).Warn("load saved metrics")
	}
	sets, err := newSets(ctx, st, svc, nets, kernelLB, mstore, engine, log)
	if err != nil {
		return err
	}
	defer sets.Close()

	l, err := Listen(cfg.Socket)
	if err != nil {
		return err
	}
	defer os.Remove(cfg.Socket)
	handler := server.New(server.Config{
		Services:    []httpapi.Service{svc, nets, images, parentRoutes{parents}, sets, newMetricRoutes(mstore, svc, sets)},
		Operations:  svc,
		Version:     version.Version,
		Accel:       string(drv.Accel()),
		Log:         log,
		SSHIdentity: filepath.Join(cfg.DataDir, "ssh", "id_ed25519"),
		Doctor:      func(ctx context.Context) []api.Check { return doctor(ctx, drv, cfg, images) },
	})
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ConnContext: server.ConnContext}

	rctx, stopResync := context.WithCancel(ctx)
	defer stopResync()
	go resync(rctx, svc, cfg.ResyncInterval, log)
	go notifySets(rctx, drv, sets, log)
	collector := metrics.NewCollector(drv, mstore, cfg.MetricsInterval, time.Now)
	collector.OnError = func(err error) { log.WithError(err).Debug("collect metrics") }
	go collector.Run(rctx)
	go saveMetrics(rctx, mstore, mpath, time.Minute, log)
	defer func() {
		if err := mstore.Save(mpath); err != nil {
			log.WithError(err).Warn("save metrics")
		}
	}()

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	log.WithFields(logrus.Fields{"socket": cfg.Socket, "data_dir": cfg.DataDir, "accel": drv.Accel()}).Info("galed ready")
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx) // event streams end when their client or the timeout does
	return nil
}

// ensureDefaultNetwork makes galed's default network usable: created when
// configured to and missing, started when it is defined but inactive (as
// libvirtd started without network autostart leaves it). A network galed
// may not create and cannot start is logged, not fatal: doctor reports it.
func ensureDefaultNetwork(ctx context.Context, nets *network.Service, dn NetworkConfig, log logrus.FieldLogger) error {
	fields := logrus.Fields{"network": dn.Name, "mode": dn.Mode, "cidr": dn.CIDR}
	if *dn.Create {
		created, err := nets.Ensure(ctx, dn.Name, dn.Mode, dn.CIDR)
		if err != nil {
			return fmt.Errorf("default network %q: %w", dn.Name, err)
		}
		if created {
			log.WithFields(fields).Info("created default network")
		}
		return nil
	}
	if _, err := nets.EnsureActive(ctx, dn.Name); err != nil {
		log.WithFields(fields).WithError(err).Warn("default network unusable; see gale doctor")
	}
	return nil
}

// connect opens the libvirt driver, retrying while libvirtd is unreachable.
func connect(ctx context.Context, cfg Config, log *logrus.Logger) (hypervisor.Driver, error) {
	delay := time.Second
	for {
		drv, err := libvirt.New(cfg.LibvirtURI, libvirt.Options{Accel: hypervisor.Accel(cfg.Accel), Log: log})
		if err == nil {
			return drv, nil
		}
		if !errors.Is(err, hypervisor.ErrUnavailable) {
			return nil, err
		}
		log.WithError(err).WithField("uri", cfg.LibvirtURI).Warn("libvirt unavailable; retrying")
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// resync runs a light reconcile every interval (no auto-start), so state
// changed behind galed's back, or while libvirtd was down, is picked up once
// the connection is back.
func resync(ctx context.Context, svc *vm.Service, interval time.Duration, log *logrus.Logger) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	down := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rep, err := svc.Reconcile(ctx, vm.ReconcileOptions{})
		switch {
		case errors.Is(err, hypervisor.ErrUnavailable):
			if !down {
				log.WithError(err).Warn("libvirt unavailable; API answers 503 until it is back")
			}
			down = true
		case err != nil:
			log.WithError(err).Warn("resync")
		default:
			if down {
				log.Info("libvirt is back; resynced")
			}
			down = false
			if len(rep.Adopted)+len(rep.Broken)+len(rep.Updated)+len(rep.Failed) > 0 {
				log.WithField("report", fmt.Sprintf("%+v", rep)).Info("resync changed state")
			}
		}
	}
}

// storeRecorder persists operations; failures are logged only.
type storeRecorder struct {
	st  *store.Store
	log logrus.FieldLogger
}

func (r storeRecorder) Record(op api.Operation, detail string) {
	row := store.Operation{ID: op.ID, Kind: op.Kind, Target: op.Target, Status: op.Status, Stage: op.Stage,
		Error: op.Error, Detail: detail, CreatedAt: op.CreatedAt}
	if op.FinishedAt != nil {
		row.FinishedAt = *op.FinishedAt
	}
	if op.Kind == string(operation.KindReconcile) && op.Status == api.OpSucceeded {
		return // internal bookkeeping; keep the table about user work and failures
	}
	if err := r.st.PutOperation(context.Background(), row); err != nil {
		r.log.WithField("op", op.ID).WithError(err).Warn("record operation")
	}
}

package libvirt

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	lv "libvirt.org/go/libvirt"

	"github.com/galevm/gale/pkg/hypervisor"
)

// shutdownPoll is how often Shutdown checks whether the guest powered off.
const shutdownPoll = 250 * time.Millisecond

// Define validates spec, resolves AccelAuto to Accel(), fills missing MACs
// and defines the domain. libvirt's own schema check (DOMAIN_DEFINE_VALIDATE)
// is left out: the XML comes from typed structs whose every shape the unit
// tests check with virt-xml-validate, and the check costs tens of
// milliseconds on every create (docs/benchmarks.md).
// An existing name is hypervisor.ErrExists and nothing is changed.
func (d *Driver) Define(ctx context.Context, spec hypervisor.DomainSpec) error {
	op := fmt.Sprintf("define domain %q", spec.Name)
	if err := hypervisor.ValidateDomainSpec(spec); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	spec, err := withDefaults(spec, d.accel)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	dx, err := domainXML(spec)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	doc, err := dx.Marshal()
	if err != nil {
		return fmt.Errorf("%s: marshal XML: %w", op, err)
	}
	err = d.with(ctx, func(c *lv.Connect) error {
		if err := refuseTaken(c, spec.Name); err != nil {
			return err
		}
		dom, err := c.DomainDefineXMLFlags(doc, 0)
		if err != nil {
			return err
		}
		return dom.Free()
	})
	if err != nil {
		return wrapErr(op, err)
	}
	d.log.WithFields(logrus.Fields{"vm": spec.Name, "op": "define", "accel": spec.Accel}).Debug("domain defined")
	return nil
}

// withDomain looks name up and runs fn on it.
func (d *Driver) withDomain(ctx context.Context, name string, fn func(c *lv.Connect, dom *lv.Domain) error) error {
	return d.with(ctx, func(c *lv.Connect) error {
		dom, err := c.LookupDomainByName(name)
		if err != nil {
			return err
		}
		defer func() { _ = dom.Free() }()
		return fn(c, dom)
	})
}

// Start boots a defined domain; a running (or paused) domain is left as is.
func (d *Driver) Start(ctx context.Context, name string) error {
	err := d.withDomain(ctx, name, func(_ *lv.Connect, dom *lv.Domain) error {
		active, err := dom.IsActive()
		if err != nil {
			return err
		}
		if active {
			return nil
		}
		if err := dom.Create(); err != nil {
			// OPERATION_INVALID also covers real failures ("network is not
			// active"): it is benign only when someone else started it.
			if isCode(err, lv.ERR_OPERATION_INVALID) {
				if active, aerr := dom.IsActive(); aerr == nil && active {
					return nil
				}
			}
			return err
		}
		return nil
	})
	return wrapErr(fmt.Sprintf("start domain %q", name), err)
}

// Destroy forces the domain off; a stopped domain is not an error.
func (d *Driver) Destroy(ctx context.Context, name string) error {
	err := d.withDomain(ctx, name, func(_ *lv.Connect, dom *lv.Domain) error {
		return destroy(dom)
	})
	return wrapErr(fmt.Sprintf("destroy domain %q", name), err)
}

// destroy powers dom off unless it is already off.
func destroy(dom *lv.Domain) error {
	if active, err := dom.IsActive(); err != nil || !active {
		return err
	}
	if err := dom.Destroy(); err != nil && !isCode(err, lv.ERR_OPERATION_INVALID) {
		return err
	}
	return nil
}

// Shutdown presses the ACPI power button, polls until the domain is off or
// timeout passes, then destroys it. It returns ctx's error (leaving the
// domain as it is) when ctx ends first.
func (d *Driver) Shutdown(ctx context.Context, name string, timeout time.Duration) error {
	op := fmt.Sprintf("shut down domain %q", name)
	log := d.log.WithFields(logrus.Fields{"vm": name, "op": "shutdown"})
	var running bool
	err := d.withDomain(ctx, name, func(_ *lv.Connect, dom *lv.Domain) error {
		active, err := dom.IsActive()
		if err != nil || !active {
			return err
		}
		running = true
		if err := dom.ShutdownFlags(lv.DOMAIN_SHUTDOWN_ACPI_POWER_BTN); err != nil {
			if isCode(err, lv.ERR_OPERATION_INVALID) { // stopped meanwhile
				running = false
				return nil
			}
			// The test driver and some hypervisors lack the ACPI flag.
			if isCode(err, lv.ERR_INVALID_ARG, lv.ERR_NO_SUPPORT, lv.ERR_ARGUMENT_UNSUPPORTED) {
				return dom.Shutdown()
			}
			return err
		}
		return nil
	})
	if err != nil || !running {
		return wrapErr(op, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		var off bool
		err := d.withDomain(ctx, name, func(_ *lv.Connect, dom *lv.Domain) error {
			active, err := dom.IsActive()
			off = !active
			return err
		})
		if isCode(err, lv.ERR_NO_DOMAIN) {
			return nil // a transient domain vanishes when it stops
		}
		if err != nil {
			return wrapErr(op, err)
		}
		if off {
			return nil
		}
		if !time.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", op, ctx.Err())
		case <-time.After(min(shutdownPoll, time.Until(deadline))):
		}
	}
	log.WithField("timeout", timeout).Warn("guest did not power off in time; destroying it")
	return wrapErr(op, d.withDomain(ctx, name, func(_ *lv.Connect, dom *lv.Domain) error {
		return destroy(dom)
	}))
}

// undefineFlagSets are tried in order until libvirt accepts one: older
// libvirt or other drivers refuse flags they do not know.
var undefineFlagSets = []lv.DomainUndefineFlagsValues{
	lv.DOMAIN_UNDEFINE_NVRAM | lv.DOMAIN_UNDEFINE_MANAGED_SAVE |
		lv.DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | lv.DOMAIN_UNDEFINE_CHECKPOINTS_METADATA,
	lv.DOMAIN_UNDEFINE_NVRAM | lv.DOMAIN_UNDEFINE_MANAGED_SAVE | lv.DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
	lv.DOMAIN_UNDEFINE_NVRAM | lv.DOMAIN_UNDEFINE_MANAGED_SAVE,
	lv.DOMAIN_UNDEFINE_NVRAM,
	0,
}

// Undefine removes a stopped domain's definition with its NVRAM, managed
// save image and snapshot/checkpoint metadata. It never touches disks. A
// running domain is refused with hypervisor.ErrDomainRunning, since libvirt would only
// make it transient.
func (d *Driver) Undefine(ctx context.Context, name string) error {
	err := d.withDomain(ctx, name, func(_ *lv.Connect, dom *lv.Domain) error {
		active, err := dom.IsActive()
		if err != nil {
			return err
		}
		if active {
			return fmt.Errorf("%w; stop it first", hypervisor.ErrDomainRunning)
		}
		for _, flags := range undefineFlagSets {
			err = dom.UndefineFlags(flags)
			if err == nil || !isCode(err, lv.ERR_INVALID_ARG, lv.ERR_NO_SUPPORT, lv.ERR_ARGUMENT_UNSUPPORTED) {
				return err
			}
			d.log.WithError(err).WithField("vm", name).Debugf("undefine flags %#x refused; retrying with fewer", flags)
		}
		return err
	})
	return wrapErr(fmt.Sprintf("undefine domain %q", name), err)
}

// refuseTaken returns hypervisor.ErrExists (wrapped) when a domain named
// name is defined: DefineXML would silently redefine it.
func refuseTaken(c *lv.Connect, name string) error {
	dom, err := c.LookupDomainByName(name)
	if err == nil {
		_ = dom.Free()
		return fmt.Errorf("domain %q: %w", name, hypervisor.ErrExists)
	}
	if !isCode(err, lv.ERR_NO_DOMAIN) {
		return err
	}
	return nil
}

package libvirt

/*
#cgo pkg-config: libvirt
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

// galeGetAllDomainStats is virConnectGetAllDomainStats that copies the
// error in the same C call: libvirt's last error is thread-local and a
// goroutine may move to another thread between two cgo calls.
static int galeGetAllDomainStats(virConnectPtr conn, unsigned int stats,
                                 virDomainStatsRecordPtr **records,
                                 unsigned int flags, virErrorPtr err)
{
	int n = virConnectGetAllDomainStats(conn, stats, records, flags);
	if (n < 0)
		virCopyLastError(err);
	return n;
}
*/
import "C"

import (
	"bytes"
	"context"
	"strings"
	"time"
	"unsafe"

	lv "libvirt.org/go/libvirt"

	"github.com/galevm/gale/pkg/hypervisor"
)

// allStatsTypes are the stats groups AllStats asks for.
const allStatsTypes = lv.DOMAIN_STATS_STATE | lv.DOMAIN_STATS_CPU_TOTAL | lv.DOMAIN_STATS_VCPU |
	lv.DOMAIN_STATS_INTERFACE | lv.DOMAIN_STATS_BLOCK | lv.DOMAIN_STATS_BALLOON

// allStatsFlags: all domains, without waiting for busy ones (see AllStats).
const allStatsFlags = lv.CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT

// AllStats returns the counters of every domain, running or not, with
// exactly one RPC: virConnectGetAllDomainStats with STATE, CPU_TOTAL, VCPU,
// INTERFACE, BLOCK and BALLOON. Names come from the returned handles
// (virDomainGetName is local). There is no per-domain fallback: a libvirt
// driver without bulk stats makes AllStats fail.
//
// It calls libvirt's C API directly instead of the Go binding's
// Connect.GetAllDomainStats, which makes one extra virDomainGetVcpusFlags
// RPC per domain (for dirty-rate stats gale does not ask for) and builds
// maps of formatted field names for every field of every record.
//
// The call passes CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT: a domain busy with
// another job (a save, a hung QEMU monitor) is reported without the stats
// that need its monitor (block I/O, the guest's balloon statistics), which
// then read as zero, instead of stalling the whole call for up to 30 s per
// such domain. Stats groups the driver does not support are left out
// (zero), not an error: libvirt's test driver, for one, reports state only.
func (d *Driver) AllStats(ctx context.Context) ([]hypervisor.DomainStats, error) {
	var out []hypervisor.DomainStats
	err := d.with(ctx, func(c *lv.Connect) error {
		var err error
		out, err = getAllDomainStats(c, allStatsTypes, allStatsFlags)
		return err
	})
	if err != nil {
		return nil, wrapErr("get all domain stats", err)
	}
	return out, nil
}

// getAllDomainStats makes the one virConnectGetAllDomainStats call and
// converts its records. Errors are lv.Error values, as the binding's.
func getAllDomainStats(c *lv.Connect, types lv.DomainStatsTypes, flags lv.ConnectGetAllDomainStatsFlags) ([]hypervisor.DomainStats, error) {
	raw, err := c.RawPtr() // takes a reference on the connection
	if err != nil {
		return nil, err
	}
	defer func() { _, _ = lv.CloseRawPtr(raw) }()
	conn := C.virConnectPtr(unsafe.Pointer(raw))

	var records *C.virDomainStatsRecordPtr
	var cerr C.virError
	n := C.galeGetAllDomainStats(conn, C.uint(types), &records, C.uint(flags), &cerr)
	if n < 0 {
		return nil, libvirtError(&cerr)
	}
	defer C.virDomainStatsRecordListFree(records)

	out := make([]hypervisor.DomainStats, 0, int(n))
	for _, r := range unsafe.Slice(records, int(n)) {
		name := C.virDomainGetName(r.dom)
		if name == nil {
			continue // an unusable handle: nothing to report for it
		}
		acc := statsAcc{name: C.GoString(name)}
		params := unsafe.Slice(r.params, int(r.nparams))
		for i := range params {
			if v, ok := paramValue(&params[i]); ok {
				acc.add(paramField(&params[i]), v)
			}
		}
		out = append(out, acc.result())
	}
	return out, nil
}

// libvirtError converts and resets a copied libvirt error.
func libvirtError(cerr *C.virError) lv.Error {
	e := lv.Error{
		Code:    lv.ErrorNumber(cerr.code),
		Domain:  lv.ErrorDomain(cerr.domain),
		Message: C.GoString(cerr.message),
		Level:   lv.ErrorLevel(cerr.level),
	}
	C.virResetError(cerr)
	return e
}

// paramField returns p's field name without copying it: the string is
// valid only while p is, and must not be kept.
func paramField(p *C.virTypedParameter) string {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&p.field[0])), len(p.field))
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// paramValue returns p's value when it is an integer (negative ones as 0).
func paramValue(p *C.virTypedParameter) (uint64, bool) {
	v := unsafe.Pointer(&p.value)
	switch p._type {
	case C.VIR_TYPED_PARAM_INT:
		return uint64(max(*(*C.int)(v), 0)), true
	case C.VIR_TYPED_PARAM_UINT:
		return uint64(*(*C.uint)(v)), true
	case C.VIR_TYPED_PARAM_LLONG:
		return uint64(max(*(*C.longlong)(v), 0)), true
	case C.VIR_TYPED_PARAM_ULLONG:
		return uint64(*(*C.ulonglong)(v)), true
	}
	return 0, false
}

// statsAcc folds the typed parameters of one stats record (libvirt's
// field names, see virConnectGetAllDomainStats) into a DomainStats.
type statsAcc struct {
	name                     string
	state                    int
	stateSet                 bool
	cpuTime                  uint64
	vcpuCurrent, vcpuMaximum int
	rx, tx, rd, wr           uint64
	available, unused, cur   uint64
}

// add takes one integer field. Per-device counters are summed: net.<n>.*
// over interfaces, block.<n>.* over the disks the record lists (backing
// chains are not requested). Unknown fields are ignored. field is not kept.
func (a *statsAcc) add(field string, v uint64) {
	switch field {
	case "state.state":
		a.state, a.stateSet = int(v), true
	case "cpu.time":
		a.cpuTime = v
	case "vcpu.current":
		a.vcpuCurrent = int(v)
	case "vcpu.maximum":
		a.vcpuMaximum = int(v)
	case "balloon.current":
		a.cur = v
	case "balloon.available":
		a.available = v
	case "balloon.unused":
		a.unused = v
	default:
		switch {
		case deviceField(field, "net.", ".rx.bytes"):
			a.rx += v
		case deviceField(field, "net.", ".tx.bytes"):
			a.tx += v
		case deviceField(field, "block.", ".rd.bytes"):
			a.rd += v
		case deviceField(field, "block.", ".wr.bytes"):
			a.wr += v
		}
	}
}

// deviceField reports whether field is prefix<index>suffix, e.g.
// "net.0.rx.bytes".
func deviceField(field, prefix, suffix string) bool {
	rest, ok := strings.CutPrefix(field, prefix)
	if !ok {
		return false
	}
	idx, ok := strings.CutSuffix(rest, suffix)
	if !ok || idx == "" {
		return false
	}
	for i := 0; i < len(idx); i++ {
		if idx[i] < '0' || idx[i] > '9' {
			return false
		}
	}
	return true
}

// result returns the record as gale reports it. VCPUs is vcpu.current
// (the online vCPUs), else vcpu.maximum.
func (a *statsAcc) result() hypervisor.DomainStats {
	s := hypervisor.DomainStats{
		Name:            a.name,
		Running:         a.stateSet && stateOf(lv.DomainState(a.state)) == hypervisor.StateRunning,
		VCPUs:           a.vcpuCurrent,
		CPUTime:         time.Duration(a.cpuTime), // nanoseconds
		NetRxBytes:      a.rx,
		NetTxBytes:      a.tx,
		BlockRdBytes:    a.rd,
		BlockWrBytes:    a.wr,
		MemAvailableKiB: a.available,
		MemUnusedKiB:    a.unused,
		MemCurrentKiB:   a.cur,
	}
	if s.VCPUs == 0 {
		s.VCPUs = a.vcpuMaximum
	}
	return s
}

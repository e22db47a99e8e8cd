package lb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// Manager programs the sets' tables in one network namespace. It is safe
// for concurrent use; its calls are serialized.
type Manager struct {
	mu    sync.Mutex
	conn  *nftables.Conn
	netns int // -1: the namespace of the caller
}

// Option configures New.
type Option func(*Manager)

// WithNetNS makes the Manager program the network namespace that fd (an
// open /run/netns/NAME or /proc/PID/ns/net, > 0) refers to, instead of the
// current one. The Manager does not own fd: keep it open until Close.
func WithNetNS(fd int) Option {
	return func(m *Manager) { m.netns = fd }
}

// New opens a netlink connection to nftables in the current network
// namespace (or the one of WithNetNS). Close releases it.
func New(opts ...Option) (*Manager, error) {
	m := &Manager{netns: -1}
	for _, o := range opts {
		o(m)
	}
	if m.netns != -1 && m.netns <= 0 {
		return nil, fmt.Errorf("lb: network namespace fd %d is not a valid descriptor", m.netns)
	}
	conn, err := m.dial()
	if err != nil {
		return nil, err
	}
	m.conn = conn
	return m, nil
}

// dial opens a lasting netlink connection in the Manager's namespace.
func (m *Manager) dial() (*nftables.Conn, error) {
	copts := []nftables.ConnOption{nftables.AsLasting()}
	if m.netns != -1 {
		copts = append(copts, nftables.WithNetNSFd(m.netns))
	}
	conn, err := nftables.New(copts...)
	if err != nil {
		return nil, fmt.Errorf("lb: open nftables netlink connection: %w", err)
	}
	return conn, nil
}

// reset replaces the connection after a failed batch: an nftables.Conn
// keeps an expression encoding error for good (every later Flush returns
// it) and keeps queued messages until a Flush sends them, so the next call
// starts from a clean one. The caller holds mu.
func (m *Manager) reset() {
	conn, err := m.dial()
	if err != nil {
		return // keep the old one; the next call reports the problem
	}
	_ = m.conn.CloseLasting()
	m.conn = conn
}

// Close closes the netlink connection; the Manager is not to be used after.
// The tables stay.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.conn.CloseLasting(); err != nil {
		return fmt.Errorf("lb: close nftables netlink connection: %w", err)
	}
	return nil
}

// Apply makes the set's table exactly what c describes, atomically: one
// netlink transaction deletes the table if it exists and builds it anew
// (chains, backend map, rules), so no packet ever sees a half-built table and a
// failed Apply leaves the previous table as it was. c is validated first;
// an invalid c changes nothing and the error wraps ErrInvalid.
//
// Connections established before keep their backend (conntrack), also
// when Apply drops that backend. With a frontend on 127.0.0.0/8, Apply then
// sets route_localnet=1 on c.Bridge (and never resets it).
func (m *Manager) Apply(c Config) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("lb: apply: %w", err)
	}
	p := build(c)
	m.mu.Lock()
	defer m.mu.Unlock()
	// add (creates it when absent) + delete + add: replace without a
	// "no such table" error, in one transaction.
	m.conn.AddTable(p.table)
	m.conn.DelTable(p.table)
	m.conn.AddTable(p.table)
	for _, ch := range p.chains {
		m.conn.AddChain(ch)
	}
	if bm := p.m; bm != nil {
		if err := m.conn.AddSet(bm.set, bm.elems); err != nil {
			m.reset()
			return fmt.Errorf("lb: apply table %s: encode backend map: %w", p.table.Name, err)
		}
	}
	for _, r := range p.rules {
		m.conn.AddRule(r)
	}
	if err := m.conn.Flush(); err != nil {
		m.reset()
		return fmt.Errorf("lb: apply table %s: %w", p.table.Name, err)
	}
	if p.localnet {
		path := filepath.Join("/proc/sys/net/ipv4/conf", c.Bridge, "route_localnet")
		if err := m.writeSysctl(path, "1"); err != nil {
			return fmt.Errorf("lb: apply table %s: loopback frontend needs route_localnet on bridge %q: %w", p.table.Name, c.Bridge, err)
		}
	}
	return nil
}

// Delete removes the set's table, atomically. An absent table is not an
// error. Connections that were DNATed by it keep their translation only
// while some nat chain remains in the namespace.
func (m *Manager) Delete(set string) error {
	if err := validateSetName(set); err != nil {
		return fmt.Errorf("lb: delete: %w", err)
	}
	t := &nftables.Table{Name: TableName(set), Family: nftables.TableFamilyIPv4}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.conn.AddTable(t) // so that the delete never fails for an absent table
	m.conn.DelTable(t)
	if err := m.conn.Flush(); err != nil {
		m.reset()
		return fmt.Errorf("lb: delete table %s: %w", t.Name, err)
	}
	return nil
}

// Sets returns the names of the sets that have a table (family ip, name
// starting with TablePrefix), sorted. Other tables are not reported.
func (m *Manager) Sets() ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tables, err := m.conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("lb: list tables: %w", err)
	}
	var sets []string
	for _, t := range tables {
		if name, ok := strings.CutPrefix(t.Name, TablePrefix); ok && name != "" {
			sets = append(sets, name)
		}
	}
	sort.Strings(sets)
	return sets, nil
}

// writeSysctl writes val to path (under /proc/sys/net, whose entries belong
// to the namespace of the thread that opens them) in the Manager's network
// namespace.
func (m *Manager) writeSysctl(path, val string) error {
	if m.netns == -1 {
		return writeFile(path, val)
	}
	errc := make(chan error, 1)
	go func() {
		// The thread never returns to the pool: the goroutine ends locked,
		// so the runtime ends the thread with its changed namespace.
		runtime.LockOSThread()
		if err := unix.Setns(m.netns, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		errc <- writeFile(path, val)
	}()
	return <-errc
}

// writeFile writes val to an existing file (a sysctl).
func writeFile(path, val string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: no such device (is the bridge up?): %w", path, err)
		}
		return err
	}
	if _, err := f.WriteString(val); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

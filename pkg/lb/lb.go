// Package lb is the kernel data path of a scale set's load balancer: one
// nftables table per set, programmed over netlink (never by running nft).
//
// # Data path
//
// The table of set S is "ip gale-set-S" (TableName). It holds:
//
//   - chain prerouting (nat, hook prerouting, priority dstnat): traffic that
//     enters the host from other hosts, namespaces or guests;
//   - chain output (nat, hook output, priority dstnat): traffic the host
//     itself originates;
//   - chain postrouting (nat, hook postrouting, priority srcnat): the
//     hairpin and loopback masquerades;
//   - chain input (filter, hook input, priority filter), when Config.Bridge
//     is set: the guard that route_localnet needs (below).
//
// Each Rule becomes, in prerouting and output,
//
//	ip daddr FRONT <proto> dport FRONTPORT dnat to <selector> map { 0 : b0, 1 : b1, ... } : BACKPORT
//
// with an anonymous constant map built in the same batch. The backends are
// numbered by Name (sorted), so the same healthy set always gets the same
// indexes. The selector is the Mode:
//
//   - ModeHash: jhash of ip saddr . ip daddr . meta l4proto . th sport .
//     th dport, mod N (a connection's backend is a function of its 5-tuple);
//   - ModeSourceIP: jhash of ip saddr, mod N (one client address, one
//     backend, as long as the number of backends does not change);
//   - ModeRoundRobin: numgen inc mod N (new connections in turn).
//
// The hash seed is fixed per set (derived from its name), so an Apply with
// the same backends keeps every hash-selected mapping; a change of N remaps
// connections (this is mod N, not consistent hashing). Only the first
// packet of a connection traverses nat chains: conntrack keeps the chosen
// backend for the life of the connection, also across Apply calls that
// remove that backend (established connections keep working, new ones go to
// the remaining backends).
//
// A Rule whose set has no backend gets no DNAT rule at all: its traffic is
// not translated and reaches whatever the host has at FRONT:FRONTPORT,
// normally nothing, so TCP connections are refused (RST) and UDP gets ICMP
// port unreachable. A reject rule is not possible in nat chains.
//
// # Hairpin and loopback
//
// A guest of Config.Network connecting to a frontend would be DNATed to a
// backend on the same bridge, which would answer it directly and be
// dropped. postrouting therefore masquerades connections that this table
// DNATed (ct status dnat, ct original daddr FRONT, ct original proto-dst
// FRONTPORT) whose source is in Network: backends then see the host address
// on the bridge as the client of such connections.
//
// A frontend on 127.0.0.0/8 is served to the host itself only (its rule is
// in output, never in prerouting, so no packet from outside can be DNATed
// from a loopback address). It needs route_localnet=1 on Config.Bridge,
// which Apply sets (and never resets), and a masquerade of the DNATed
// connections whose source is 127.0.0.0/8. Because route_localnet would also
// let neighbours on the bridge reach the host's loopback services
// (CVE-2020-8558), a table with a Bridge drops new connections that arrive
// on it for 127.0.0.0/8 (chain input; replies of established connections
// pass), whether or not it has a loopback frontend now. Delete removes that
// guard but leaves route_localnet as it is: whoever deletes a set that had
// a loopback frontend and keeps its bridge should set it back to 0.
//
// # What the host must provide
//
// Traffic DNATed from prerouting is forwarded: net.ipv4.ip_forward must be
// 1 and no other table (libvirt's, iptables-nft's) may drop it in forward;
// an accept here cannot override a drop elsewhere. This package never
// flushes the ruleset and never reads or changes tables other than its own.
package lb

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/galevm/gale/pkg/errdefs"
)

// ErrInvalid is wrapped by every validation error: the Config is unusable
// and nothing was changed. Match it with errors.Is.
var ErrInvalid = errdefs.New(errdefs.Invalid, "invalid load balancer config")

// TablePrefix starts the name of every table this package owns; it never
// lists, changes or deletes a table without it.
const TablePrefix = "gale-set-"

// TableName is the name of the nftables table (family ip) of set.
func TableName(set string) string { return TablePrefix + set }

// Proto is a frontend's transport protocol.
type Proto string

// The protocols.
const (
	ProtoTCP Proto = "tcp"
	ProtoUDP Proto = "udp"
)

// Mode is how a frontend picks the backend of a new connection.
type Mode string

// The modes. The empty Mode means ModeHash.
const (
	// ModeHash: jhash of the 5-tuple mod N.
	ModeHash Mode = "hash"
	// ModeSourceIP: jhash of the source address mod N (client affinity).
	ModeSourceIP Mode = "sourceip"
	// ModeRoundRobin: a counter mod N, per rule.
	ModeRoundRobin Mode = "roundrobin"
)

// Rule is one frontend: connections of Proto to FrontAddr:FrontPort are
// sent to a backend's Addr:BackPort.
type Rule struct {
	Proto     Proto
	FrontAddr netip.Addr // IPv4; 127.0.0.0/8 only with Config.Bridge
	FrontPort uint16
	BackPort  uint16
	Mode      Mode // "" is ModeHash
}

// Backend is one healthy instance of the set.
type Backend struct {
	Name string     // unique in the Config; orders the backends
	Addr netip.Addr // IPv4, unique in the Config
}

// Config is the whole desired data path of one set: Apply replaces the
// set's table with exactly this.
type Config struct {
	// Set is the set's name; its table is TableName(Set). It is 1 to 63
	// characters of a-z, A-Z, 0-9, '-', '_' and '.'.
	Set   string
	Rules []Rule
	// Backends are the healthy instances, in any order (Apply sorts them by
	// Name). None: no DNAT rule (see the package doc).
	Backends []Backend
	// Network is the set network's subnet, its address the host's on it
	// (e.g. 10.77.0.1/24). Guests of it get hairpin masquerade. The zero
	// Prefix means no hairpin rule.
	Network netip.Prefix
	// Bridge is the set network's bridge device. Required when a frontend
	// is on 127.0.0.0/8 (route_localnet is set on it).
	Bridge string
}

// maxSetName bounds Config.Set; the table name stays well under nftables'
// 256 byte limit.
const maxSetName = 63

// Validate reports the first problem of c, as an error wrapping ErrInvalid,
// or nil when Apply can program it.
func (c Config) Validate() error {
	if err := validateSetName(c.Set); err != nil {
		return err
	}
	if c.Bridge != "" {
		if err := validateIfName(c.Bridge); err != nil {
			return fmt.Errorf("set %q: %w", c.Set, err)
		}
	}
	if c.Network.IsValid() {
		if !c.Network.Addr().Is4() {
			return fmt.Errorf("%w: set %q: network %s is not IPv4", ErrInvalid, c.Set, c.Network)
		}
	} else if c.Network != (netip.Prefix{}) {
		return fmt.Errorf("%w: set %q: network %s is not a valid prefix", ErrInvalid, c.Set, c.Network)
	}
	type front struct {
		proto Proto
		addr  netip.Addr
		port  uint16
	}
	seen := make(map[front]int, len(c.Rules))
	for i, r := range c.Rules {
		if err := r.validate(); err != nil {
			return fmt.Errorf("set %q: rule %d: %w", c.Set, i, err)
		}
		if r.FrontAddr.IsLoopback() && c.Bridge == "" {
			return fmt.Errorf("%w: set %q: rule %d: frontend %s is on 127.0.0.0/8, which needs Bridge (route_localnet); or use the network's host address",
				ErrInvalid, c.Set, i, r.FrontAddr)
		}
		f := front{r.Proto, r.FrontAddr, r.FrontPort}
		if j, ok := seen[f]; ok {
			return fmt.Errorf("%w: set %q: rules %d and %d have the same frontend %s %s",
				ErrInvalid, c.Set, j, i, r.Proto, netip.AddrPortFrom(r.FrontAddr, r.FrontPort))
		}
		seen[f] = i
	}
	names := make(map[string]bool, len(c.Backends))
	addrs := make(map[netip.Addr]string, len(c.Backends))
	for _, b := range c.Backends {
		if b.Name == "" {
			return fmt.Errorf("%w: set %q: backend %s has no name", ErrInvalid, c.Set, b.Addr)
		}
		if names[b.Name] {
			return fmt.Errorf("%w: set %q: backend name %q appears twice", ErrInvalid, c.Set, b.Name)
		}
		names[b.Name] = true
		if err := checkUnicast4(b.Addr); err != nil {
			return fmt.Errorf("%w: set %q: backend %q: %v", ErrInvalid, c.Set, b.Name, err)
		}
		if b.Addr.IsLoopback() {
			return fmt.Errorf("%w: set %q: backend %q: address %s is a loopback address", ErrInvalid, c.Set, b.Name, b.Addr)
		}
		if other, ok := addrs[b.Addr]; ok {
			return fmt.Errorf("%w: set %q: backends %q and %q have the same address %s", ErrInvalid, c.Set, other, b.Name, b.Addr)
		}
		addrs[b.Addr] = b.Name
	}
	return nil
}

// validate checks one rule on its own.
func (r Rule) validate() error {
	switch r.Proto {
	case ProtoTCP, ProtoUDP:
	default:
		return fmt.Errorf("%w: unknown protocol %q (want %q or %q)", ErrInvalid, r.Proto, ProtoTCP, ProtoUDP)
	}
	switch r.Mode {
	case "", ModeHash, ModeSourceIP, ModeRoundRobin:
	default:
		return fmt.Errorf("%w: unknown mode %q (want %q, %q or %q)", ErrInvalid, r.Mode, ModeHash, ModeSourceIP, ModeRoundRobin)
	}
	if err := checkUnicast4(r.FrontAddr); err != nil {
		return fmt.Errorf("%w: frontend: %v", ErrInvalid, err)
	}
	if r.FrontPort == 0 {
		return fmt.Errorf("%w: frontend %s: port 0", ErrInvalid, r.FrontAddr)
	}
	if r.BackPort == 0 {
		return fmt.Errorf("%w: frontend %s: backend port 0", ErrInvalid, netip.AddrPortFrom(r.FrontAddr, r.FrontPort))
	}
	return nil
}

// checkUnicast4 accepts an IPv4 address a connection can be made to.
func checkUnicast4(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return errors.New("no address")
	case !a.Is4():
		return fmt.Errorf("address %s is not IPv4", a)
	case a.IsUnspecified():
		return fmt.Errorf("address %s is unspecified", a)
	case a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("address %s is not unicast", a)
	}
	return nil
}

// validateSetName accepts 1 to maxSetName characters of a-z, A-Z, 0-9,
// '-', '_' and '.'.
func validateSetName(s string) error {
	const allowed = "1-63 characters of a-z, A-Z, 0-9, '-', '_' and '.'"
	if s == "" || len(s) > maxSetName {
		return fmt.Errorf("%w: set name %q: want %s", ErrInvalid, s, allowed)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' {
			continue
		}
		return fmt.Errorf("%w: set name %q has %q at offset %d: want %s", ErrInvalid, s, c, i, allowed)
	}
	return nil
}

// validateIfName accepts a Linux interface name usable in a /proc/sys path.
func validateIfName(s string) error {
	if len(s) > 15 || s == "." || s == ".." || strings.ContainsAny(s, "/ \t\n\x00:") {
		return fmt.Errorf("%w: bridge %q is not a valid interface name", ErrInvalid, s)
	}
	return nil
}

// sortedBackends returns a copy of bs sorted by Name: index i of the result
// is key i of the backend maps.
func sortedBackends(bs []Backend) []Backend {
	out := append([]Backend(nil), bs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Package guestid makes a restored clone of a saved, running guest a
// distinct machine.
//
// A clone restored from a parent's saved state is a byte-for-byte copy of
// the parent's RAM: same clock, kernel random state, machine-id, host name,
// SSH host keys, MAC inside the guest, DHCP lease and cloud-init instance.
// New draws a fresh identity for one clone (the secrets are generated here,
// on the host, with crypto/rand) and Script renders the one POSIX shell
// script that gale runs as root in the guest through the guest agent
// (guest-exec of /bin/sh with the script on standard input) before anyone
// may use the clone. The script also runs the per-clone hooks (HookDir).
//
// The guest is expected to be a Debian 12 like system: systemd,
// systemd-networkd, cloud-init with a NoCloud seed, OpenSSH, coreutils and
// GNU sed, find and iproute2.
package guestid

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// HookDir is the per-clone hook directory in the guest. It is cloud-init's
// per-instance scripts directory, so the same executables run once on a
// guest that boots as a new instance and once in every clone (Script runs
// them, in the same order, after the clone has its identity).
const HookDir = "/var/lib/cloud/scripts/per-instance"

// HookLog is the guest file that the per-clone hooks' standard output and
// standard error are appended to.
const HookLog = "/var/log/gale-clone-hooks.log"

// HookFailedExit is the exit status of the script when a per-clone hook
// failed; the clone's identity is complete then. Any other failure of the
// script exits with another non-zero status.
const HookFailedExit = 3

// SeedSize is the number of random bytes in Identity.RandomSeed.
const SeedSize = 512

// RSABits is the size of the generated RSA host key.
const RSABits = 3072

// Host key types, in the order New generates them and Script writes them.
const (
	KeyEd25519 = "ed25519"
	KeyECDSA   = "ecdsa"
	KeyRSA     = "rsa"
)

var keyTypes = []string{KeyEd25519, KeyECDSA, KeyRSA}

// HostKey is one SSH host key of the clone.
type HostKey struct {
	// Type is "ed25519", "ecdsa" (NIST P-256) or "rsa"; the key goes to
	// /etc/ssh/ssh_host_<Type>_key and ssh_host_<Type>_key.pub.
	Type string
	// Private is the private key in OpenSSH PEM form
	// ("-----BEGIN OPENSSH PRIVATE KEY-----"), unencrypted. Secret.
	Private []byte
	// Public is the public key as an authorized_keys line,
	// "<ssh type> <base64> root@<hostname>\n".
	Public []byte
}

// Identity is what makes one clone distinct. New fills it; Script checks
// every field again before it renders anything.
type Identity struct {
	// Hostname is the clone's host name: one RFC 1123 label, 1..63
	// lowercase letters, digits and hyphens, neither starting nor ending
	// with a hyphen.
	Hostname string
	// InstanceID is the clone's cloud-init instance-id: 1..128 of
	// A-Z a-z 0-9 . _ -, and neither "." nor "..".
	InstanceID string
	// ParentInstanceID is the parent's cloud-init instance-id, which the
	// restored guest still has; same rules as InstanceID, and different
	// from it.
	ParentInstanceID string
	// ParentMAC is the MAC that the guest's NIC still carries (the
	// parent's); MAC is the clone's, which the hypervisor now presents.
	// Both are unicast 6-byte MACs in lowercase colon form
	// ("52:54:00:12:34:56"), and they differ.
	ParentMAC, MAC string
	// MachineID is the clone's /etc/machine-id: 32 lowercase hex digits,
	// random, a version-4 UUID like `systemd-id128 new` makes. Secret-ish:
	// systemd asks that it be treated as confidential.
	MachineID string
	// HostKeys are the clone's SSH host keys, one of each type: ed25519,
	// ecdsa (P-256) and rsa (at least 2048 bits; New makes RSABits).
	HostKeys []HostKey
	// RandomSeed is mixed into the guest's kernel random pool and becomes
	// systemd's random seed file. SeedSize bytes. Secret.
	RandomSeed []byte
	// Now is the time the guest clock is set to (whole seconds).
	Now time.Time
}

// New draws a new identity for a clone called hostname, with cloud-init
// instance-id instanceID, restored from a parent whose instance-id is
// parentInstanceID and whose NIC had parentMAC; mac is the clone's new MAC.
// The MACs may be in any form net.ParseMAC accepts; they are stored in
// lowercase colon form. MachineID, HostKeys and RandomSeed come from
// crypto/rand. now is the time Script sets the guest clock to.
func New(hostname, instanceID, parentInstanceID, parentMAC, mac string, now time.Time) (*Identity, error) {
	id := &Identity{
		Hostname:         hostname,
		InstanceID:       instanceID,
		ParentInstanceID: parentInstanceID,
		Now:              now,
	}
	var err error
	if id.ParentMAC, err = normalizeMAC(parentMAC); err != nil {
		return nil, fmt.Errorf("parent MAC: %w", err)
	}
	if id.MAC, err = normalizeMAC(mac); err != nil {
		return nil, fmt.Errorf("MAC: %w", err)
	}
	if err := id.validateNames(); err != nil {
		return nil, err
	}
	if id.MachineID, err = newMachineID(); err != nil {
		return nil, err
	}
	id.RandomSeed = make([]byte, SeedSize)
	if _, err := rand.Read(id.RandomSeed); err != nil {
		return nil, fmt.Errorf("random seed: %w", err)
	}
	for _, t := range keyTypes {
		k, err := newHostKey(t, "root@"+hostname)
		if err != nil {
			return nil, fmt.Errorf("%s host key: %w", t, err)
		}
		id.HostKeys = append(id.HostKeys, k)
	}
	if err := id.Validate(); err != nil {
		return nil, err
	}
	return id, nil
}

// Validate checks every field of id against the rules in Identity's
// documentation. Script calls it.
func (id *Identity) Validate() error {
	if id == nil {
		return errors.New("guestid: nil identity")
	}
	if err := id.validateNames(); err != nil {
		return err
	}
	if err := validateMAC(id.ParentMAC); err != nil {
		return fmt.Errorf("parent MAC: %w", err)
	}
	if err := validateMAC(id.MAC); err != nil {
		return fmt.Errorf("MAC: %w", err)
	}
	if id.MAC == id.ParentMAC {
		return fmt.Errorf("MAC %s is the parent's", id.MAC)
	}
	if err := validateMachineID(id.MachineID); err != nil {
		return err
	}
	if len(id.RandomSeed) != SeedSize {
		return fmt.Errorf("random seed is %d bytes, want %d", len(id.RandomSeed), SeedSize)
	}
	if id.Now.Unix() <= 0 {
		return fmt.Errorf("clock time %v is not after 1970", id.Now)
	}
	if len(id.HostKeys) != len(keyTypes) {
		return fmt.Errorf("%d host keys, want %d (%s)", len(id.HostKeys), len(keyTypes), strings.Join(keyTypes, ", "))
	}
	seen := map[string]bool{}
	for i := range id.HostKeys {
		k := &id.HostKeys[i]
		if seen[k.Type] {
			return fmt.Errorf("two %q host keys", k.Type)
		}
		seen[k.Type] = true
		if err := k.validate(); err != nil {
			return fmt.Errorf("%q host key: %w", k.Type, err)
		}
	}
	return nil
}

func (id *Identity) validateNames() error {
	if err := validateHostname(id.Hostname); err != nil {
		return err
	}
	if err := validateInstanceID(id.InstanceID); err != nil {
		return fmt.Errorf("instance-id: %w", err)
	}
	if err := validateInstanceID(id.ParentInstanceID); err != nil {
		return fmt.Errorf("parent instance-id: %w", err)
	}
	if id.InstanceID == id.ParentInstanceID {
		return fmt.Errorf("instance-id %q is the parent's", id.InstanceID)
	}
	return nil
}

// hostKey returns the key of type t; Validate has checked there is one.
func (id *Identity) hostKey(t string) *HostKey {
	for i := range id.HostKeys {
		if id.HostKeys[i].Type == t {
			return &id.HostKeys[i]
		}
	}
	return nil
}

// Fingerprints returns the SHA256 fingerprint of each host key's public
// half by type ("ed25519", "ecdsa", "rsa"), in the form ssh-keygen -l
// prints ("SHA256:" and unpadded base64). A key whose Public line does not
// parse is left out.
func (id *Identity) Fingerprints() map[string]string {
	fps := make(map[string]string, len(id.HostKeys))
	for _, k := range id.HostKeys {
		pub, _, _, _, err := ssh.ParseAuthorizedKey(k.Public)
		if err != nil {
			continue
		}
		fps[k.Type] = ssh.FingerprintSHA256(pub)
	}
	return fps
}

var (
	hostnameRE   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	instanceIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	macRE        = regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){5}$`)
	machineIDRE  = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

func validateHostname(h string) error {
	if !hostnameRE.MatchString(h) {
		return fmt.Errorf("hostname %q: want 1..63 lowercase letters, digits and hyphens, not starting or ending with a hyphen", h)
	}
	return nil
}

func validateInstanceID(s string) error {
	if !instanceIDRE.MatchString(s) || s == "." || s == ".." {
		return fmt.Errorf("%q: want 1..128 of A-Z a-z 0-9 . _ - (and not . or ..)", s)
	}
	return nil
}

// normalizeMAC parses s as a unicast 6-byte MAC and returns it in
// lowercase colon form.
func normalizeMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return "", fmt.Errorf("%q: %w", s, err)
	}
	if len(hw) != 6 {
		return "", fmt.Errorf("%q: want a 6-byte MAC, have %d bytes", s, len(hw))
	}
	if hw[0]&1 != 0 {
		return "", fmt.Errorf("%q is a multicast MAC", s)
	}
	if bytes.Equal(hw, make(net.HardwareAddr, 6)) {
		return "", fmt.Errorf("%q is the zero MAC", s)
	}
	return hw.String(), nil
}

func validateMAC(s string) error {
	if !macRE.MatchString(s) {
		return fmt.Errorf("%q: want lowercase colon form like 52:54:00:12:34:56", s)
	}
	n, err := normalizeMAC(s)
	if err != nil {
		return err
	}
	if n != s {
		return fmt.Errorf("%q: not normalised (%s)", s, n)
	}
	return nil
}

func validateMachineID(s string) error {
	if !machineIDRE.MatchString(s) || s == strings.Repeat("0", 32) {
		return fmt.Errorf("machine-id %q: want 32 lowercase hex digits, not all zero", s)
	}
	return nil
}

// newMachineID returns a random version-4 UUID in machine-id form, as
// systemd's sd_id128_randomize does.
func newMachineID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("machine-id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:]), nil
}

func newHostKey(t, comment string) (HostKey, error) {
	var priv any
	switch t {
	case KeyEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return HostKey{}, err
		}
		priv = k
	case KeyECDSA:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return HostKey{}, err
		}
		priv = k
	case KeyRSA:
		k, err := rsa.GenerateKey(rand.Reader, RSABits)
		if err != nil {
			return HostKey{}, err
		}
		priv = k
	default:
		return HostKey{}, fmt.Errorf("unknown key type %q", t)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return HostKey{}, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return HostKey{}, err
	}
	return HostKey{
		Type:    t,
		Private: pem.EncodeToMemory(block),
		Public:  authorizedLine(signer.PublicKey(), comment),
	}, nil
}

func authorizedLine(pub ssh.PublicKey, comment string) []byte {
	line := bytes.TrimSuffix(ssh.MarshalAuthorizedKey(pub), []byte("\n"))
	return append(append(line, ' '), comment+"\n"...)
}

// sshKeyType is the SSH algorithm name each HostKey.Type must carry.
var sshKeyType = map[string]string{
	KeyEd25519: ssh.KeyAlgoED25519,
	KeyECDSA:   ssh.KeyAlgoECDSA256,
	KeyRSA:     ssh.KeyAlgoRSA,
}

func (k *HostKey) validate() error {
	want, ok := sshKeyType[k.Type]
	if !ok {
		return fmt.Errorf("unknown type, want one of %s", strings.Join(keyTypes, ", "))
	}
	block, rest := pem.Decode(k.Private)
	if block == nil || block.Type != "OPENSSH PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return errors.New("private key is not one OpenSSH PEM block")
	}
	signer, err := ssh.ParsePrivateKey(k.Private)
	if err != nil {
		return fmt.Errorf("private key: %w", err)
	}
	if got := signer.PublicKey().Type(); got != want {
		return fmt.Errorf("private key is %s, want %s", got, want)
	}
	if k.Type == KeyRSA {
		if ck, ok := signer.PublicKey().(ssh.CryptoPublicKey); ok {
			if rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 {
				return fmt.Errorf("RSA key has %d bits, want at least 2048", rk.N.BitLen())
			}
		}
	}
	if !bytes.HasSuffix(k.Public, []byte("\n")) || bytes.Count(k.Public, []byte("\n")) != 1 {
		return errors.New("public key is not one line ending in a newline")
	}
	pub, _, _, rest2, err := ssh.ParseAuthorizedKey(k.Public)
	if err != nil {
		return fmt.Errorf("public key: %w", err)
	}
	if len(rest2) != 0 {
		return errors.New("public key has trailing data")
	}
	if !bytes.Equal(pub.Marshal(), signer.PublicKey().Marshal()) {
		return errors.New("public key does not match the private key")
	}
	return nil
}

package cloudinit

import (
	"errors"
	"fmt"
	"net"
	"regexp"
)

// Config is what goes into a seed.
type Config struct {
	// InstanceID identifies this instance to cloud-init; a new value makes
	// cloud-init run its per-instance modules again. Required. cloud-init
	// uses it as a directory name (/var/lib/cloud/instances/<id>), so it is
	// limited to 1..128 letters, digits, '.', '_', ':' and '-', starting
	// with a letter or digit.
	InstanceID string
	// Hostname is the guest's host name (meta-data local-hostname).
	// Required; a single DNS label: 1..63 lowercase letters, digits and
	// hyphens, neither starting nor ending with a hyphen.
	Hostname string
	// SSHAuthorizedKeys are OpenSSH public keys, one per element, each a
	// single line "TYPE BASE64 [COMMENT]" without options or surrounding
	// white space (trim the newline a .pub file ends with). They go into
	// meta-data public-keys, which cloud-init installs for the image's
	// default user; user-data is never rewritten to add them.
	SSHAuthorizedKeys []string
	// UserData is passed to the guest byte for byte. Empty means
	// DefaultUserData. At most MaxUserDataBytes. If it starts with
	// "#cloud-config" it must be a YAML mapping.
	UserData []byte
	// Network, if non-nil, adds a network-config file. If nil, cloud-init
	// falls back to its default (DHCP on the first NIC it finds).
	Network *NetworkConfig
}

// NetworkConfig configures one NIC with DHCPv4.
type NetworkConfig struct {
	// MAC is the NIC's unicast Ethernet address ("52:54:00:12:34:56").
	// Required.
	MAC string
	// Name is the interface name the NIC gets in the guest (set-name).
	// Empty means DefaultInterfaceName. At most 15 characters: lowercase
	// letters, digits, '_' and '-', starting with a letter.
	Name string
}

// DefaultInterfaceName is the guest interface name when NetworkConfig.Name is empty.
const DefaultInterfaceName = "eth0"

// Limits on SSH keys.
const (
	// MaxSSHKeys bounds the number of authorized keys in one seed.
	MaxSSHKeys = 100
	// MaxSSHKeyBytes bounds one key line; a 16384-bit RSA key is ~2.8 KiB.
	MaxSSHKeyBytes = 8 * 1024
)

var (
	hostnameRE   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	instanceIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
	ifnameRE     = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,14}$`)
)

// Validate checks every field and returns nil or one error per problem,
// joined; each wraps ErrInvalidConfig (user-data problems also wrap
// ErrInvalidUserData). It has no side effects.
func (c Config) Validate() error {
	var errs []error
	if !instanceIDRE.MatchString(c.InstanceID) {
		errs = append(errs, invalid("instance-id", "%q must be 1..128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit", c.InstanceID))
	}
	if !hostnameRE.MatchString(c.Hostname) {
		errs = append(errs, invalid("hostname", "%q must be a DNS label: 1..63 lowercase letters, digits and '-', not starting or ending with '-'", c.Hostname))
	}
	if len(c.SSHAuthorizedKeys) > MaxSSHKeys {
		errs = append(errs, invalid("ssh keys", "%d keys, at most %d allowed", len(c.SSHAuthorizedKeys), MaxSSHKeys))
	}
	for i, k := range c.SSHAuthorizedKeys {
		if err := ValidateSSHKey(k); err != nil {
			errs = append(errs, fmt.Errorf("ssh key %d: %w", i+1, err))
		}
	}
	if err := ValidateUserData(c.UserData); err != nil {
		errs = append(errs, err)
	}
	if c.Network != nil {
		if _, err := c.Network.normalize(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// normalize validates n and returns it with the MAC in lowercase
// colon-separated form and the default interface name filled in.
func (n NetworkConfig) normalize() (NetworkConfig, error) {
	hw, err := net.ParseMAC(n.MAC)
	if err != nil || len(hw) != 6 {
		return n, invalid("network mac", "%q is not an Ethernet MAC address (xx:xx:xx:xx:xx:xx)", n.MAC)
	}
	if hw[0]&1 != 0 {
		return n, invalid("network mac", "%q is a multicast address", n.MAC)
	}
	out := NetworkConfig{MAC: hw.String(), Name: n.Name}
	if out.Name == "" {
		out.Name = DefaultInterfaceName
	}
	if !ifnameRE.MatchString(out.Name) {
		return n, invalid("network interface name", "%q must be 1..15 lowercase letters, digits, '_' or '-', starting with a letter", out.Name)
	}
	return out, nil
}

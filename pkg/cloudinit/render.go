package cloudinit

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Seed holds the contents of the files in a seed ISO.
type Seed struct {
	UserData []byte
	MetaData []byte
	// NetworkConfig is nil when Config.Network is nil.
	NetworkConfig []byte
}

// Render validates c and returns the seed files' contents. It is what
// WriteSeed puts on the ISO.
func (c Config) Render() (Seed, error) {
	if err := c.Validate(); err != nil {
		return Seed{}, err
	}
	md, err := renderMetaData(c)
	if err != nil {
		return Seed{}, err
	}
	s := Seed{UserData: userData(c.UserData), MetaData: md}
	if c.Network != nil {
		n, err := c.Network.normalize()
		if err != nil {
			return Seed{}, err
		}
		if s.NetworkConfig, err = renderNetworkConfig(n); err != nil {
			return Seed{}, err
		}
	}
	return s, nil
}

// quoted is a string that is always emitted as a double-quoted YAML
// scalar. Plain scalars are read differently by YAML 1.1 parsers such as
// cloud-init's PyYAML: "no" becomes false, "52:54:00:12:34:56" a base-60
// integer. Double quotes also escape every control character.
type quoted string

// MarshalYAML implements yaml.Marshaler. It refuses invalid UTF-8, which
// YAML cannot represent as a string.
func (q quoted) MarshalYAML() (any, error) {
	if !utf8.ValidString(string(q)) {
		return nil, fmt.Errorf("invalid UTF-8 in %q", string(q))
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: string(q)}, nil
}

// metaData is the NoCloud meta-data document.
type metaData struct {
	InstanceID    quoted   `yaml:"instance-id"`
	LocalHostname quoted   `yaml:"local-hostname"`
	PublicKeys    []quoted `yaml:"public-keys,omitempty"`
}

// renderMetaData encodes c's meta-data. It does not validate c; the
// encoding is safe for any valid UTF-8 values.
func renderMetaData(c Config) ([]byte, error) {
	md := metaData{InstanceID: quoted(c.InstanceID), LocalHostname: quoted(c.Hostname)}
	for _, k := range c.SSHAuthorizedKeys {
		md.PublicKeys = append(md.PublicKeys, quoted(k))
	}
	b, err := encodeYAML(md)
	if err != nil {
		return nil, fmt.Errorf("encode meta-data: %w", err)
	}
	return b, nil
}

// networkConfigV2 is a network-config file, version 2.
type networkConfigV2 struct {
	Version   int                 `yaml:"version"`
	Ethernets map[quoted]ethernet `yaml:"ethernets"`
}

type ethernet struct {
	Match   ethernetMatch `yaml:"match"`
	SetName quoted        `yaml:"set-name"`
	DHCP4   bool          `yaml:"dhcp4"`
}

type ethernetMatch struct {
	MACAddress quoted `yaml:"macaddress"`
}

// renderNetworkConfig encodes DHCPv4 on the NIC with n.MAC, renamed to
// n.Name. Matching by MAC and setting the name keeps every cloud-init
// renderer (networkd, netplan, ENI, sysconfig) in agreement about which
// interface is meant. n must be normalized.
func renderNetworkConfig(n NetworkConfig) ([]byte, error) {
	nc := networkConfigV2{
		Version: 2,
		Ethernets: map[quoted]ethernet{
			quoted(n.Name): {Match: ethernetMatch{MACAddress: quoted(n.MAC)}, SetName: quoted(n.Name), DHCP4: true},
		},
	}
	b, err := encodeYAML(nc)
	if err != nil {
		return nil, fmt.Errorf("encode network-config: %w", err)
	}
	return b, nil
}

func encodeYAML(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

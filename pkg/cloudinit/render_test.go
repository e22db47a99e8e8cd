package cloudinit

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// parseMetaData decodes meta-data the way a YAML reader would.
func parseMetaData(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("meta-data does not parse: %v\n%s", err, b)
	}
	return m
}

// wantMetaData is what meta-data for c must decode to.
func wantMetaData(c Config) map[string]any {
	m := map[string]any{"instance-id": c.InstanceID, "local-hostname": c.Hostname}
	if len(c.SSHAuthorizedKeys) > 0 {
		var keys []any
		for _, k := range c.SSHAuthorizedKeys {
			keys = append(keys, k)
		}
		m["public-keys"] = keys
	}
	return m
}

func TestMetaDataRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "no keys", cfg: Config{InstanceID: "i-1", Hostname: "vm"}},
		{name: "keys", cfg: validConfig()},
		// Values a YAML 1.1 reader would not read as strings if unquoted.
		{name: "yaml 1.1 booleans", cfg: Config{InstanceID: "yes", Hostname: "no"}},
		{name: "numbers", cfg: Config{InstanceID: "1:30:00", Hostname: "0123"}},
		{name: "null-ish", cfg: Config{InstanceID: "null", Hostname: "y"}},
		{name: "comment metachars", cfg: Config{InstanceID: "i-1", Hostname: "vm", SSHAuthorizedKeys: []string{
			testKey("ssh-rsa", `"quoted" 'single' #hash: colon & <xml> {flow} [seq] *alias !tag %pct @at `+"`tick`"),
			testKey("ecdsa-sha2-nistp256", "ünïcødé ☃"),
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err != nil {
				t.Fatalf("test config invalid: %v", err)
			}
			seed, err := tt.cfg.Render()
			if err != nil {
				t.Fatal(err)
			}
			got := parseMetaData(t, seed.MetaData)
			if want := wantMetaData(tt.cfg); !reflect.DeepEqual(got, want) {
				t.Errorf("meta-data round trip:\n got %#v\nwant %#v\n%s", got, want, seed.MetaData)
			}
			// One line per value: nothing can have added a line of its own.
			if lines := bytes.Count(seed.MetaData, []byte("\n")); lines != 2+boolInt(len(tt.cfg.SSHAuthorizedKeys) > 0)+len(tt.cfg.SSHAuthorizedKeys) {
				t.Errorf("meta-data has %d lines:\n%s", lines, seed.MetaData)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestNetworkConfig(t *testing.T) {
	tests := []struct {
		name     string
		net      NetworkConfig
		wantMAC  string
		wantName string
	}{
		{name: "defaults", net: NetworkConfig{MAC: "52:54:00:12:34:56"}, wantMAC: "52:54:00:12:34:56", wantName: "eth0"},
		{name: "normalized mac", net: NetworkConfig{MAC: "52-54-00-AB-CD-EF", Name: "lan0"}, wantMAC: "52:54:00:ab:cd:ef", wantName: "lan0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			c.Network = &tt.net
			seed, err := c.Render()
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := yaml.Unmarshal(seed.NetworkConfig, &got); err != nil {
				t.Fatalf("network-config does not parse: %v\n%s", err, seed.NetworkConfig)
			}
			want := map[string]any{
				"version": 2,
				"ethernets": map[string]any{
					tt.wantName: map[string]any{
						"match":    map[string]any{"macaddress": tt.wantMAC},
						"set-name": tt.wantName,
						"dhcp4":    true,
					},
				},
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("network-config:\n got %#v\nwant %#v\n%s", got, want, seed.NetworkConfig)
			}
			// An all-digit MAC unquoted is a base-60 integer to YAML 1.1.
			if !bytes.Contains(seed.NetworkConfig, []byte(`macaddress: "`+tt.wantMAC+`"`)) {
				t.Errorf("MAC not double-quoted:\n%s", seed.NetworkConfig)
			}
		})
	}
	c := validConfig()
	c.Network = nil
	if seed, err := c.Render(); err != nil || seed.NetworkConfig != nil {
		t.Errorf("Render() without network = %q, %v; want no network-config", seed.NetworkConfig, err)
	}
}

func TestUserDataUntouched(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{name: "empty gets default", in: nil, want: DefaultUserData},
		{name: "cloud-config kept byte for byte", in: []byte("#cloud-config\r\n# c\r\nusers: [ {name: x} ]  \r\n"), want: []byte("#cloud-config\r\n# c\r\nusers: [ {name: x} ]  \r\n")},
		{name: "script kept", in: []byte("#!/bin/sh\nexit 0"), want: []byte("#!/bin/sh\nexit 0")},
		{name: "binary kept", in: []byte{0x1f, 0x8b, 0x08, 0x00}, want: []byte{0x1f, 0x8b, 0x08, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			c.UserData = tt.in
			seed, err := c.Render()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(seed.UserData, tt.want) {
				t.Errorf("user-data = %q, want %q", seed.UserData, tt.want)
			}
		})
	}
	if err := ValidateUserData(DefaultUserData); err != nil {
		t.Errorf("DefaultUserData invalid: %v", err)
	}
}

// FuzzMetaData checks that whatever strings reach the meta-data encoder,
// the document decodes to exactly those strings and no other keys, and
// that a config passing Validate yields one line per value.
func FuzzMetaData(f *testing.F) {
	f.Add("i-1", "vm", testKey("ssh-ed25519", "a@b"))
	f.Add("i-1\ninstance-id: x", "vm\nlocal-hostname: evil", "ssh-rsa AAAA\nssh-rsa BBBB")
	f.Add("yes", "no", "- x")
	f.Add(`"'\`, "#", "\x00\x1b[0m\u2028\ufeff")
	f.Fuzz(func(t *testing.T, iid, host, key string) {
		c := Config{InstanceID: iid, Hostname: host, SSHAuthorizedKeys: []string{key}}
		if utf8.ValidString(iid) && utf8.ValidString(host) && utf8.ValidString(key) {
			md, err := renderMetaData(c)
			if err != nil {
				t.Fatalf("renderMetaData: %v", err)
			}
			if got, want := parseMetaData(t, md), wantMetaData(c); !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip:\n got %#v\nwant %#v\n%s", got, want, md)
			}
		} else if _, err := renderMetaData(c); err == nil {
			t.Fatalf("renderMetaData accepted invalid UTF-8")
		}
		if c.Validate() != nil {
			return
		}
		seed, err := c.Render()
		if err != nil {
			t.Fatalf("Render after Validate: %v", err)
		}
		if lines := strings.Count(string(seed.MetaData), "\n"); lines != 4 {
			t.Fatalf("valid config gave %d meta-data lines:\n%s", lines, seed.MetaData)
		}
	})
}

// FuzzValidateUserData checks that validation never panics, never changes
// the user's bytes, is deterministic, refuses only a cloud-config or
// oversized user-data, with an error wrapping ErrInvalidUserData, and that
// accepted user-data reaches the seed unchanged.
func FuzzValidateUserData(f *testing.F) {
	f.Add([]byte("#cloud-config\na: [1\n"))
	f.Add([]byte("#cloud-config\n- a\n---\nb: 1\n"))
	f.Add([]byte("#!/bin/sh\n"))
	f.Fuzz(func(t *testing.T, ud []byte) {
		orig := bytes.Clone(ud)
		err := ValidateUserData(ud)
		if !bytes.Equal(ud, orig) {
			t.Fatal("ValidateUserData changed its input")
		}
		if again := ValidateUserData(ud); fmt.Sprint(again) != fmt.Sprint(err) {
			t.Fatalf("not deterministic: %v, then %v", err, again)
		}
		if err != nil && !errors.Is(err, ErrInvalidUserData) {
			t.Fatalf("error does not wrap ErrInvalidUserData: %v", err)
		}
		if err != nil && !isCloudConfig(ud) && len(ud) <= MaxUserDataBytes {
			t.Fatalf("refused user-data that is not a cloud-config: %v", err)
		}
		if err == nil && len(ud) > 0 {
			c := Config{InstanceID: "i", Hostname: "h", UserData: ud}
			seed, err := c.Render()
			if err != nil || !bytes.Equal(seed.UserData, orig) {
				t.Fatalf("Render() user-data = %q, %v; want input", seed.UserData, err)
			}
		}
	})
}

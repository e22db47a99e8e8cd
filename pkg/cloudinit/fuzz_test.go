package cloudinit

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// FuzzValidateSSHKey checks that a refused key is refused with an error
// wrapping ErrInvalidConfig, deterministically, and that an accepted key
// is one line "TYPE BASE64 [COMMENT]" of a known type whose blob names
// that type.
func FuzzValidateSSHKey(f *testing.F) {
	for typ := range sshKeyTypes {
		f.Add(testKey(typ, "user@host"))
	}
	f.Add("ssh-dss AAAAB3NzaC1kc3MAAAA= old")
	f.Add(`command="/bin/sh" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== x`)
	f.Add("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==\nssh-rsa AAAA")
	f.Add("ssh-rsa AAAAB3NzaC1yc2EAAAAD")
	f.Fuzz(func(t *testing.T, key string) {
		err := ValidateSSHKey(key)
		if again := ValidateSSHKey(key); fmt.Sprint(again) != fmt.Sprint(err) {
			t.Fatalf("not deterministic: %v, then %v", err, again)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error does not wrap ErrInvalidConfig: %v", err)
			}
			return
		}
		if len(key) > MaxSSHKeyBytes || strings.ContainsAny(key, "\r\n\x00") || strings.TrimSpace(key) != key {
			t.Fatalf("accepted %q", key)
		}
		fields := strings.Fields(key)
		if len(fields) < 2 || !sshKeyTypes[fields[0]] {
			t.Fatalf("accepted %q: no known type and key data", key)
		}
		blob, err := base64.StdEncoding.DecodeString(fields[1])
		if err != nil || len(blob) < 4 {
			t.Fatalf("accepted %q: key data %v", key, err)
		}
		n := binary.BigEndian.Uint32(blob)
		if uint64(n) > uint64(len(blob)-4) || string(blob[4:4+n]) != fields[0] {
			t.Fatalf("accepted %q: the blob does not name %s", key, fields[0])
		}
	})
}

// FuzzValidate checks Config.Validate on every field at once: it has no
// side effects, is deterministic, refuses with errors that each wrap
// ErrInvalidConfig (ErrInvalidUserData for user-data), agrees with
// ValidateUserData and ValidateSSHKey, and a config it accepts renders.
func FuzzValidate(f *testing.F) {
	c := validConfig()
	f.Add(c.InstanceID, c.Hostname, c.SSHAuthorizedKeys[0], c.UserData, c.Network.MAC, "", true)
	f.Add("iid-1", "-bad-", "ssh-rsa x", []byte("#cloud-config\n- a\n"), "01:00:5e:00:00:01", "eth0", true)
	f.Add("", "", "", []byte(nil), "", "", false)
	f.Add("a:b", "a", testKey("ssh-rsa", ""), []byte("#!/bin/sh\necho hi\n"), "52-54-00-AB-CD-EF", "enp1s0", true)
	f.Fuzz(func(t *testing.T, iid, host, key string, ud []byte, mac, ifname string, withNet bool) {
		c := Config{InstanceID: iid, Hostname: host, SSHAuthorizedKeys: []string{key}, UserData: ud}
		if withNet {
			c.Network = &NetworkConfig{MAC: mac, Name: ifname}
		}
		orig := Config{InstanceID: iid, Hostname: host, SSHAuthorizedKeys: []string{key}, UserData: bytes.Clone(ud)}
		if withNet {
			orig.Network = &NetworkConfig{MAC: mac, Name: ifname}
		}
		err := c.Validate()
		if !reflect.DeepEqual(c, orig) {
			t.Fatalf("Validate changed the config: %+v", c)
		}
		if again := c.Validate(); fmt.Sprint(again) != fmt.Sprint(err) {
			t.Fatalf("not deterministic: %v, then %v", err, again)
		}
		if (ValidateUserData(ud) != nil) != errors.Is(err, ErrInvalidUserData) {
			t.Fatalf("Validate = %v, ValidateUserData = %v", err, ValidateUserData(ud))
		}
		if ValidateSSHKey(key) != nil && err == nil {
			t.Fatalf("Validate accepted a key ValidateSSHKey refuses: %q", key)
		}
		if err != nil {
			errs := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			for _, e := range errs {
				if !errors.Is(e, ErrInvalidConfig) {
					t.Fatalf("an error does not wrap ErrInvalidConfig: %v", e)
				}
			}
			if _, rerr := c.Render(); rerr == nil {
				t.Fatal("Render accepted a config Validate refuses")
			}
			return
		}
		seed, err := c.Render()
		if err != nil {
			t.Fatalf("Render after Validate: %v", err)
		}
		if !bytes.Equal(seed.UserData, userData(ud)) {
			t.Fatalf("user-data %q, want %q", seed.UserData, userData(ud))
		}
		if (seed.NetworkConfig != nil) != withNet {
			t.Fatalf("network-config %q with Network %v", seed.NetworkConfig, withNet)
		}
	})
}

package cloudinit

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantErr string // substring of the error; "" means valid
	}{
		{name: "valid", mutate: func(c *Config) {}},
		{name: "minimal", mutate: func(c *Config) { *c = Config{InstanceID: "x", Hostname: "h"} }},
		{name: "63-char hostname", mutate: func(c *Config) { c.Hostname = long[:63] }},
		{name: "numeric hostname", mutate: func(c *Config) { c.Hostname = "123" }},
		{name: "uuid instance-id", mutate: func(c *Config) { c.InstanceID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301" }},

		// hostname
		{name: "empty hostname", mutate: func(c *Config) { c.Hostname = "" }, wantErr: "hostname"},
		{name: "hostname too long", mutate: func(c *Config) { c.Hostname = long }, wantErr: "hostname"},
		{name: "uppercase hostname", mutate: func(c *Config) { c.Hostname = "Web" }, wantErr: "hostname"},
		{name: "hostname leading hyphen", mutate: func(c *Config) { c.Hostname = "-web" }, wantErr: "hostname"},
		{name: "hostname trailing hyphen", mutate: func(c *Config) { c.Hostname = "web-" }, wantErr: "hostname"},
		{name: "hostname underscore", mutate: func(c *Config) { c.Hostname = "web_1" }, wantErr: "hostname"},
		{name: "hostname fqdn", mutate: func(c *Config) { c.Hostname = "web.example.com" }, wantErr: "hostname"},
		{name: "hostname newline injection", mutate: func(c *Config) { c.Hostname = "web\ninstance-id: evil" }, wantErr: "hostname"},
		{name: "hostname trailing newline", mutate: func(c *Config) { c.Hostname = "web\n" }, wantErr: "hostname"},
		{name: "hostname path traversal", mutate: func(c *Config) { c.Hostname = "../x" }, wantErr: "hostname"},
		{name: "hostname xml metachars", mutate: func(c *Config) { c.Hostname = "<a&b>" }, wantErr: "hostname"},
		{name: "hostname yaml flow", mutate: func(c *Config) { c.Hostname = "{a: b}" }, wantErr: "hostname"},

		// instance-id
		{name: "empty instance-id", mutate: func(c *Config) { c.InstanceID = "" }, wantErr: "instance-id"},
		{name: "instance-id NUL", mutate: func(c *Config) { c.InstanceID = "i-1\x00" }, wantErr: "instance-id"},
		{name: "instance-id newline injection", mutate: func(c *Config) { c.InstanceID = "i-1\nlocal-hostname: evil" }, wantErr: "instance-id"},
		{name: "instance-id CR", mutate: func(c *Config) { c.InstanceID = "i-1\r" }, wantErr: "instance-id"},
		{name: "instance-id tab", mutate: func(c *Config) { c.InstanceID = "i-1\tx" }, wantErr: "instance-id"},
		{name: "instance-id path traversal", mutate: func(c *Config) { c.InstanceID = "../x" }, wantErr: "instance-id"},
		{name: "instance-id dotdot", mutate: func(c *Config) { c.InstanceID = ".." }, wantErr: "instance-id"},
		{name: "instance-id slash", mutate: func(c *Config) { c.InstanceID = "a/b" }, wantErr: "instance-id"},
		{name: "instance-id xml metachars", mutate: func(c *Config) { c.InstanceID = `<x a="1">&amp;` }, wantErr: "instance-id"},
		{name: "instance-id too long", mutate: func(c *Config) { c.InstanceID = strings.Repeat("i", 129) }, wantErr: "instance-id"},

		// ssh keys
		{name: "all key types", mutate: func(c *Config) {
			c.SSHAuthorizedKeys = nil
			for typ := range sshKeyTypes {
				c.SSHAuthorizedKeys = append(c.SSHAuthorizedKeys, testKey(typ, ""))
			}
		}},
		{name: "key comment with spaces and quotes", mutate: func(c *Config) {
			c.SSHAuthorizedKeys = []string{testKey("ssh-rsa", `Bob "the admin" #1: yes`)}
		}},
		{name: "two keys in one entry", mutate: func(c *Config) {
			c.SSHAuthorizedKeys = []string{testKey("ssh-ed25519", "a") + "\n" + testKey("ssh-rsa", "b")}
		}, wantErr: "line break"},
		{name: "key newline injection", mutate: func(c *Config) {
			c.SSHAuthorizedKeys = []string{testKey("ssh-ed25519", "a\ninstance-id: evil")}
		}, wantErr: "line break"},
		{name: "key CR injection", mutate: func(c *Config) {
			c.SSHAuthorizedKeys = []string{testKey("ssh-ed25519", "a\rb")}
		}, wantErr: "line break"},
		{name: "key trailing newline", mutate: func(c *Config) {
			c.SSHAuthorizedKeys = []string{testKey("ssh-ed25519", "a") + "\n"}
		}, wantErr: "line break"},
		{name: "key leading space", mutate: func(c *Config) {
			c.SSHAuthorizedKeys = []string{" " + testKey("ssh-ed25519", "")}
		}, wantErr: "white space"},
		{name: "key with tab", mutate: func(c *Config) {
			c.SSHAuthorizedKeys = []string{testKey("ssh-ed25519", "a\tb")}
		}, wantErr: "non-printable"},
		{name: "key with NUL", mutate: func(c *Config) {
			c.SSHAuthorizedKeys = []string{testKey("ssh-ed25519", "a\x00")}
		}, wantErr: "non-printable"},
		{name: "key with options", mutate: func(c *Config) {
			c.SSHAuthorizedKeys = []string{`command="/bin/sh" ` + testKey("ssh-ed25519", "")}
		}, wantErr: "key type"},
		{name: "dsa key", mutate: func(c *Config) { c.SSHAuthorizedKeys = []string{testKey("ssh-dss", "")} }, wantErr: "key type"},
		{name: "key type only", mutate: func(c *Config) { c.SSHAuthorizedKeys = []string{"ssh-ed25519"} }, wantErr: "base64"},
		{name: "key bad base64", mutate: func(c *Config) { c.SSHAuthorizedKeys = []string{"ssh-ed25519 AAAA$$$$"} }, wantErr: "base64"},
		{name: "key type mismatch", mutate: func(c *Config) {
			c.SSHAuthorizedKeys = []string{"ssh-rsa " + strings.Fields(testKey("ssh-ed25519", ""))[1]}
		}, wantErr: "does not hold"},
		{name: "key truncated blob", mutate: func(c *Config) { c.SSHAuthorizedKeys = []string{"ssh-rsa AAAA"} }, wantErr: "truncated"},
		{name: "empty key", mutate: func(c *Config) { c.SSHAuthorizedKeys = []string{""} }, wantErr: "empty"},
		{name: "key too long", mutate: func(c *Config) {
			c.SSHAuthorizedKeys = []string{testKey("ssh-ed25519", strings.Repeat("c", MaxSSHKeyBytes))}
		}, wantErr: "at most"},
		{name: "too many keys", mutate: func(c *Config) {
			c.SSHAuthorizedKeys = make([]string, MaxSSHKeys+1)
			for i := range c.SSHAuthorizedKeys {
				c.SSHAuthorizedKeys[i] = testKey("ssh-ed25519", "")
			}
		}, wantErr: "keys, at most"},

		// user-data
		{name: "empty user-data", mutate: func(c *Config) { c.UserData = nil }},
		{name: "header-only cloud-config", mutate: func(c *Config) { c.UserData = []byte("#cloud-config\n# nothing yet\n") }},
		{name: "null cloud-config", mutate: func(c *Config) { c.UserData = []byte("#cloud-config\n~\n") }},
		{name: "shell script passes untouched", mutate: func(c *Config) { c.UserData = []byte("#!/bin/sh\necho '{[: not yaml\n") }},
		{name: "mime multipart", mutate: func(c *Config) {
			c.UserData = []byte("Content-Type: multipart/mixed; boundary=\"X\"\nMIME-Version: 1.0\n\n--X\n--X--\n")
		}},
		{name: "include", mutate: func(c *Config) { c.UserData = []byte("#include\nhttp://example.invalid/x\n") }},
		{name: "cloud-config-archive is a list", mutate: func(c *Config) {
			c.UserData = []byte("#cloud-config-archive\n- type: text/cloud-config\n  content: '{}'\n")
		}},
		{name: "binary user-data", mutate: func(c *Config) { c.UserData = []byte{0x1f, 0x8b, 0, 0xff, '\n'} }},
		{name: "user-data at limit", mutate: func(c *Config) { c.UserData = bytes.Repeat([]byte("#"), MaxUserDataBytes) }},
		{name: "huge user-data", mutate: func(c *Config) { c.UserData = bytes.Repeat([]byte("#"), MaxUserDataBytes+1) }, wantErr: "at most 65536"},
		{name: "malformed cloud-config shows line", mutate: func(c *Config) {
			c.UserData = []byte("#cloud-config\npackages:\n  - nginx\n bad: [\n")
		}, wantErr: "line 4"},
		{name: "unclosed flow list shows line", mutate: func(c *Config) {
			c.UserData = []byte("#cloud-config\na: 1\nb: 2\nc: 3\nd: [1, 2\ne: 5\n")
		}, wantErr: "line 5"},
		{name: "list item after mapping shows line", mutate: func(c *Config) {
			c.UserData = []byte("#cloud-config\na: 1\nb: 2\nc: 3\n- d\n")
		}, wantErr: "line 5"},
		{name: "multi-line flow list is fine", mutate: func(c *Config) {
			c.UserData = []byte("#cloud-config\npackages: [\n  nginx,\n  curl]\n")
		}},
		{name: "long broken cloud-config stays cheap", mutate: func(c *Config) {
			c.UserData = append([]byte("#cloud-config\na: [\n"), bytes.Repeat([]byte("b: 1\n"), (MaxUserDataBytes-20)/5)...)
		}, wantErr: "not valid YAML"},
		{name: "cloud-config tab indent shows line", mutate: func(c *Config) {
			c.UserData = []byte("#cloud-config\nruncmd:\n\t- ls\n")
		}, wantErr: "line 3"},
		{name: "cloud-config list", mutate: func(c *Config) {
			c.UserData = []byte("#cloud-config\n\n- a\n- b\n")
		}, wantErr: "line 3: top level must be a mapping"},
		{name: "cloud-config scalar", mutate: func(c *Config) {
			c.UserData = []byte("#cloud-config\nhello\n")
		}, wantErr: "line 2: top level must be a mapping"},
		{name: "cloud-config two documents", mutate: func(c *Config) {
			c.UserData = []byte("#cloud-config\na: 1\n---\nb: 2\n")
		}, wantErr: "line 3: a second YAML document"},
		{name: "cloud-config broken second document", mutate: func(c *Config) {
			c.UserData = []byte("#cloud-config\na: 1\n---\nb: [\n")
		}, wantErr: "line 4: invalid YAML"},

		// network
		{name: "no network", mutate: func(c *Config) { c.Network = nil }},
		{name: "uppercase mac and name", mutate: func(c *Config) { c.Network = &NetworkConfig{MAC: "52-54-00-AB-CD-EF", Name: "lan0"} }},
		{name: "bad mac", mutate: func(c *Config) { c.Network.MAC = "52:54:00:12:34" }, wantErr: "network mac"},
		{name: "mac injection", mutate: func(c *Config) { c.Network.MAC = "52:54:00:12:34:56\n  dhcp6: true" }, wantErr: "network mac"},
		{name: "eui64 mac", mutate: func(c *Config) { c.Network.MAC = "52:54:00:12:34:56:78:9a" }, wantErr: "network mac"},
		{name: "multicast mac", mutate: func(c *Config) { c.Network.MAC = "01:00:5e:00:00:01" }, wantErr: "multicast"},
		{name: "interface name too long", mutate: func(c *Config) { c.Network.Name = "abcdefghijklmnop" }, wantErr: "interface name"},
		{name: "interface name traversal", mutate: func(c *Config) { c.Network.Name = "../eth0" }, wantErr: "interface name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want error containing %q", tt.wantErr)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Validate() = %v, does not match ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Config{InstanceID: "", Hostname: "BAD", SSHAuthorizedKeys: []string{"x"}, UserData: []byte("#cloud-config\n- 1\n")}
	err := c.Validate()
	for _, want := range []string{"instance-id", "hostname", "ssh key 1", "user-data"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	if !errors.Is(err, ErrInvalidUserData) {
		t.Errorf("Validate() = %v, does not match ErrInvalidUserData", err)
	}
}

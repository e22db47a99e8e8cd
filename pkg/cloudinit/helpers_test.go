package cloudinit

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
)

// sshString encodes s as an SSH wire-format string.
func sshString(s string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(s)))
	return append(b, s...)
}

// testKey returns a syntactically valid public key line of type typ
// (the key material is not a real key).
func testKey(typ, comment string) string {
	blob := append(sshString(typ), sshString(strings.Repeat("k", 32))...)
	k := typ + " " + base64.StdEncoding.EncodeToString(blob)
	if comment != "" {
		k += " " + comment
	}
	return k
}

// validConfig returns a Config that passes Validate.
func validConfig() Config {
	return Config{
		InstanceID:        "i-0123abcd",
		Hostname:          "web-1",
		SSHAuthorizedKeys: []string{testKey("ssh-ed25519", "alice@laptop")},
		UserData:          []byte("#cloud-config\npackages: [nginx]\n"),
		Network:           &NetworkConfig{MAC: "52:54:00:12:34:56"},
	}
}

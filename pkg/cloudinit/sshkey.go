package cloudinit

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
	"unicode"
	"unicode/utf8"
)

// sshKeyTypes are the public key types ValidateSSHKey accepts. DSA keys are
// left out: OpenSSH no longer accepts them.
var sshKeyTypes = map[string]bool{
	"ssh-ed25519":                        true,
	"ssh-rsa":                            true,
	"ecdsa-sha2-nistp256":                true,
	"ecdsa-sha2-nistp384":                true,
	"ecdsa-sha2-nistp521":                true,
	"sk-ssh-ed25519@openssh.com":         true,
	"sk-ecdsa-sha2-nistp256@openssh.com": true,
}

// ValidateSSHKey checks that key is one OpenSSH public key line,
// "TYPE BASE64 [COMMENT]": no line breaks or other control characters, no
// leading or trailing white space, no authorized_keys options, a known
// TYPE, and BASE64 decoding to a key blob of that same type. Errors wrap
// ErrInvalidConfig.
func ValidateSSHKey(key string) error {
	switch {
	case key == "":
		return invalid("ssh key", "empty")
	case len(key) > MaxSSHKeyBytes:
		return invalid("ssh key", "%d bytes, at most %d allowed", len(key), MaxSSHKeyBytes)
	case !utf8.ValidString(key):
		return invalid("ssh key", "not valid UTF-8")
	case strings.ContainsAny(key, "\r\n"):
		return invalid("ssh key", "contains a line break; give one key per entry")
	case strings.TrimSpace(key) != key:
		return invalid("ssh key", "leading or trailing white space")
	}
	for _, r := range key {
		if !unicode.IsPrint(r) {
			return invalid("ssh key", "contains the non-printable character %U", r)
		}
	}
	typ, rest, _ := strings.Cut(key, " ")
	if !sshKeyTypes[typ] {
		return invalid("ssh key", "must start with a key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521, sk-...), got %.40q", typ)
	}
	b64, _, _ := strings.Cut(rest, " ")
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || b64 == "" {
		return invalid("ssh key", "%s key data is not base64", typ)
	}
	// The blob starts with the key type as an SSH string: uint32 length, bytes.
	if len(blob) < 4 {
		return invalid("ssh key", "%s key data is truncated", typ)
	}
	n := binary.BigEndian.Uint32(blob)
	if uint64(n) > uint64(len(blob)-4) || string(blob[4:4+n]) != typ {
		return invalid("ssh key", "key data does not hold a %s key", typ)
	}
	return nil
}

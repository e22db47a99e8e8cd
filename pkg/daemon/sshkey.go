package daemon

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// EnsureSSHKey returns galed's public key (authorized_keys format), making
// the pair DATADIR/ssh/id_ed25519{,.pub} first if missing. The pair is made in
// process with crypto/ed25519 and encoded with golang.org/x/crypto/ssh (no
// ssh-keygen needed). The private key is mode 0640 and group gale when that
// group exists, so members can use it for `gale vm ssh`.
func EnsureSSHKey(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, "ssh")
	priv := filepath.Join(dir, "id_ed25519")
	pub := priv + ".pub"
	if b, err := os.ReadFile(pub); err == nil {
		if _, err := os.Stat(priv); err == nil {
			return strings.TrimSpace(string(b)), nil
		}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("ssh key dir: %w", err)
	}
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(sk, "galed")
	if err != nil {
		return "", fmt.Errorf("encode ssh key: %w", err)
	}
	spk, err := ssh.NewPublicKey(pk)
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spk))) + " galed"
	tmp := priv + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", fmt.Errorf("write ssh key: %w", err)
	}
	if g, err := user.LookupGroup("gale"); err == nil {
		if gid, err := strconv.Atoi(g.Gid); err == nil {
			_ = os.Chown(tmp, -1, gid)
			_ = os.Chown(dir, -1, gid)
		}
	}
	if err := os.Chmod(tmp, 0o640); err != nil {
		return "", err
	}
	if err := os.WriteFile(pub, []byte(line+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write ssh public key: %w", err)
	}
	if err := os.Rename(tmp, priv); err != nil {
		return "", fmt.Errorf("write ssh key: %w", err)
	}
	return line, nil
}

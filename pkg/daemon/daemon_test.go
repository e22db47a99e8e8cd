package daemon

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, body string
		missing    bool
		check      func(Config) bool
		wantErr    string
	}{
		{"missing default file", "", true, func(c Config) bool {
			return c.Socket == "/run/gale/gale.sock" && c.DefaultNetwork.Mode == "isolated" && *c.DefaultNetwork.Create
		}, ""},
		{"empty file", "\n", false, func(c Config) bool { return c.DataDir == "/var/lib/gale" && c.StallTimeout == 5*time.Minute }, ""},
		{"overrides", "data_dir: /tmp/g\nstall_timeout: 10m\ndefault_network: {name: lab, mode: nat, cidr: 10.9.0.1/24, create: false}\n", false,
			func(c Config) bool {
				return c.DataDir == "/tmp/g" && c.StallTimeout == 10*time.Minute && c.DefaultNetwork.Mode == "nat" && !*c.DefaultNetwork.Create && c.LibvirtURI == "qemu:///system"
			}, ""},
		{"unknown key", "sokcet: /x\n", false, nil, "sokcet"},
		{"bad accel", "accel: hvf\n", false, nil, "accel"},
		{"bad mode", "default_network: {mode: bridge}\n", false, nil, "mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".yaml")
			if !tt.missing {
				if err := os.WriteFile(path, []byte(tt.body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := LoadConfig(path, tt.missing)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(cfg) {
				t.Fatalf("cfg = %+v, %v", cfg, err)
			}
		})
	}
}

func TestEnsureSSHKey(t *testing.T) {
	dir := t.TempDir()
	pub, err := EnsureSSHKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub)); err != nil {
		t.Fatalf("public key %q: %v", pub, err)
	}
	priv := filepath.Join(dir, "ssh", "id_ed25519")
	b, err := os.ReadFile(priv)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatalf("private key: %v", err)
	}
	if !strings.HasPrefix(pub, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))) {
		t.Fatal("public and private key do not match")
	}
	if st, _ := os.Stat(priv); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode = %v, want 0640", st.Mode().Perm())
	}
	again, err := EnsureSSHKey(dir)
	if err != nil || again != pub {
		t.Fatalf("second call made a new key: %v", err)
	}
}

func TestListen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		setup   func(path string) func()
		wantErr bool
	}{
		{"fresh", func(string) func() { return func() {} }, false},
		{"stale socket file", func(p string) func() {
			l, _ := net.Listen("unix", p)
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			l.Close()
			return func() {}
		}, false},
		{"live socket", func(p string) func() {
			l, _ := net.Listen("unix", p)
			return func() { l.Close() }
		}, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "s"+string(rune('0'+i)), "gale.sock")
			_ = os.MkdirAll(filepath.Dir(path), 0o755)
			defer tt.setup(path)()
			l, err := Listen(path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Listen = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil {
				defer l.Close()
				if st, _ := os.Stat(path); st.Mode().Perm() != 0o660 {
					t.Fatalf("mode = %v", st.Mode().Perm())
				}
			}
		})
	}
}

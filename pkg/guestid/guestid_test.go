package guestid

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/galevm/gale/pkg/internal/testtool"
)

const (
	testParentMAC = "52:54:00:aa:bb:cc"
	testMAC       = "52:54:00:de:ad:01"
	testParentIID = "i-parent.0"
	testIID       = "i-0123456789abcdef"
	testHostname  = "gale-clone-1"
)

var testNow = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

var (
	sharedOnce sync.Once
	sharedID   *Identity
	sharedErr  error
)

// testIdentity returns a deep copy of one identity made by New, so the
// tests pay for one RSA key only.
func testIdentity(t *testing.T) *Identity {
	t.Helper()
	sharedOnce.Do(func() {
		sharedID, sharedErr = New(testHostname, testIID, testParentIID, testParentMAC, testMAC, testNow)
	})
	if sharedErr != nil {
		t.Fatalf("New: %v", sharedErr)
	}
	c := *sharedID
	c.HostKeys = append([]HostKey(nil), sharedID.HostKeys...)
	c.RandomSeed = append([]byte(nil), sharedID.RandomSeed...)
	return &c
}

func TestNewValidation(t *testing.T) {
	long := strings.Repeat("a", 64)
	type args struct{ host, iid, piid, pmac, mac string }
	good := args{testHostname, testIID, testParentIID, testParentMAC, testMAC}
	tests := []struct {
		name    string
		mutate  func(a *args)
		wantErr string // substring; "" means valid
	}{
		{"valid", func(a *args) {}, ""},
		{"one-letter hostname", func(a *args) { a.host = "h" }, ""},
		{"63-char hostname", func(a *args) { a.host = long[:63] }, ""},
		{"numeric hostname", func(a *args) { a.host = "123" }, ""},
		{"uppercase MAC is normalised", func(a *args) { a.mac = "52:54:00:AB:CD:EF" }, ""},
		{"dashed MAC", func(a *args) { a.mac = "52-54-00-ab-cd-ef" }, ""},

		{"empty hostname", func(a *args) { a.host = "" }, "hostname"},
		{"64-char hostname", func(a *args) { a.host = long }, "hostname"},
		{"uppercase hostname", func(a *args) { a.host = "Gale" }, "hostname"},
		{"path hostname", func(a *args) { a.host = "../x" }, "hostname"},
		{"dotted hostname", func(a *args) { a.host = "a.b" }, "hostname"},
		{"leading hyphen", func(a *args) { a.host = "-a" }, "hostname"},
		{"trailing hyphen", func(a *args) { a.host = "a-" }, "hostname"},
		{"underscore hostname", func(a *args) { a.host = "a_b" }, "hostname"},
		{"hostname with newline", func(a *args) { a.host = "a\nb" }, "hostname"},
		{"hostname with command", func(a *args) { a.host = "$(reboot)" }, "hostname"},

		{"empty instance-id", func(a *args) { a.iid = "" }, "instance-id"},
		{"instance-id quote", func(a *args) { a.iid = "i-'x" }, "instance-id"},
		{"instance-id double quote", func(a *args) { a.iid = `i-"x` }, "instance-id"},
		{"instance-id space", func(a *args) { a.iid = "i x" }, "instance-id"},
		{"instance-id command", func(a *args) { a.iid = "$(reboot)" }, "instance-id"},
		{"instance-id backtick", func(a *args) { a.iid = "`reboot`" }, "instance-id"},
		{"instance-id slash", func(a *args) { a.iid = "../x" }, "instance-id"},
		{"instance-id dot", func(a *args) { a.iid = "." }, "instance-id"},
		{"instance-id dotdot", func(a *args) { a.iid = ".." }, "instance-id"},
		{"instance-id too long", func(a *args) { a.iid = strings.Repeat("i", 129) }, "instance-id"},
		{"parent instance-id quote", func(a *args) { a.piid = "p'" }, "parent instance-id"},
		{"parent instance-id space", func(a *args) { a.piid = "p q" }, "parent instance-id"},
		{"parent instance-id command", func(a *args) { a.piid = "$(id)" }, "parent instance-id"},
		{"parent instance-id empty", func(a *args) { a.piid = "" }, "parent instance-id"},
		{"same instance-id", func(a *args) { a.iid = a.piid }, "parent's"},

		{"empty MAC", func(a *args) { a.mac = "" }, "MAC"},
		{"garbage MAC", func(a *args) { a.mac = "52:54:00:zz:00:01" }, "MAC"},
		{"short MAC", func(a *args) { a.mac = "52:54:00:00:01" }, "MAC"},
		{"EUI-64", func(a *args) { a.mac = "52:54:00:00:00:00:00:01" }, "6-byte"},
		{"multicast MAC", func(a *args) { a.mac = "01:00:5e:00:00:01" }, "multicast"},
		{"zero MAC", func(a *args) { a.mac = "00:00:00:00:00:00" }, "zero"},
		{"MAC with command", func(a *args) { a.mac = "$(reboot)" }, "MAC"},
		{"bad parent MAC", func(a *args) { a.pmac = "52:54:00:aa:bb" }, "parent MAC"},
		{"same MAC", func(a *args) { a.mac = strings.ToUpper(a.pmac) }, "parent's"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := good
			tc.mutate(&a)
			if tc.wantErr == "" {
				// The valid cases share the checks with Validate; New's key
				// generation is tested elsewhere.
				id := &Identity{Hostname: a.host, InstanceID: a.iid, ParentInstanceID: a.piid}
				var err error
				if id.ParentMAC, err = normalizeMAC(a.pmac); err != nil {
					t.Fatal(err)
				}
				if id.MAC, err = normalizeMAC(a.mac); err != nil {
					t.Fatal(err)
				}
				if err := id.validateNames(); err != nil {
					t.Fatal(err)
				}
				if err := validateMAC(id.MAC); err != nil {
					t.Fatal(err)
				}
				return
			}
			id, err := New(a.host, a.iid, a.piid, a.pmac, a.mac, testNow)
			if err == nil {
				t.Fatalf("New succeeded: %+v", id)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
}

func TestNewNormalisesMAC(t *testing.T) {
	if testing.Short() {
		t.Skip("generates keys")
	}
	id, err := New("h", "i-1", "i-0", "52-54-00-AA-BB-CC", "5254.0012.3456", testNow)
	if err != nil {
		t.Fatal(err)
	}
	if id.ParentMAC != "52:54:00:aa:bb:cc" || id.MAC != "52:54:00:12:34:56" {
		t.Fatalf("MACs %q %q", id.ParentMAC, id.MAC)
	}
}

func TestValidate(t *testing.T) {
	other := testIdentity(t)
	otherEd, err := newHostKey(KeyEd25519, "root@other")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mutate  func(id *Identity)
		wantErr string
	}{
		{"valid", func(id *Identity) {}, ""},
		{"bad hostname", func(id *Identity) { id.Hostname = "a'b" }, "hostname"},
		{"bad instance-id", func(id *Identity) { id.InstanceID = "a b" }, "instance-id"},
		{"uppercase MAC", func(id *Identity) { id.MAC = strings.ToUpper(id.MAC) }, "MAC"},
		{"dashed MAC", func(id *Identity) { id.MAC = strings.ReplaceAll(id.MAC, ":", "-") }, "MAC"},
		{"MAC is parent's", func(id *Identity) { id.MAC = id.ParentMAC }, "parent's"},
		{"empty machine-id", func(id *Identity) { id.MachineID = "" }, "machine-id"},
		{"zero machine-id", func(id *Identity) { id.MachineID = strings.Repeat("0", 32) }, "machine-id"},
		{"uppercase machine-id", func(id *Identity) { id.MachineID = strings.ToUpper(id.MachineID) }, "machine-id"},
		{"short machine-id", func(id *Identity) { id.MachineID = id.MachineID[:31] }, "machine-id"},
		{"machine-id with quote", func(id *Identity) { id.MachineID = id.MachineID[:31] + "'" }, "machine-id"},
		{"short seed", func(id *Identity) { id.RandomSeed = id.RandomSeed[:511] }, "seed"},
		{"no seed", func(id *Identity) { id.RandomSeed = nil }, "seed"},
		{"zero time", func(id *Identity) { id.Now = time.Time{} }, "clock"},
		{"no keys", func(id *Identity) { id.HostKeys = nil }, "host keys"},
		{"two keys", func(id *Identity) { id.HostKeys = id.HostKeys[:2] }, "host keys"},
		{"duplicate key type", func(id *Identity) { id.HostKeys[2] = id.HostKeys[0] }, "two"},
		{"unknown key type", func(id *Identity) { id.HostKeys[0].Type = "dsa" }, "unknown type"},
		{"key type mismatch", func(id *Identity) { id.HostKeys[0].Type, id.HostKeys[1].Type = KeyECDSA, KeyEd25519 }, "want"},
		{"garbage private key", func(id *Identity) { id.HostKeys[0].Private = []byte("x") }, "PEM"},
		{"mismatched public key", func(id *Identity) {
			id.HostKeys[0].Public = otherEd.Public
		}, "does not match"},
		{"public key without newline", func(id *Identity) {
			id.HostKeys[0].Public = bytes.TrimSuffix(id.HostKeys[0].Public, []byte("\n"))
		}, "one line"},
		{"public key two lines", func(id *Identity) {
			id.HostKeys[0].Public = append(append([]byte(nil), id.HostKeys[0].Public...), other.HostKeys[0].Public...)
		}, "one line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := testIdentity(t)
			tc.mutate(id)
			err := id.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tc.wantErr)
			}
			if _, err := id.Script(); err == nil {
				t.Fatal("Script succeeded on an invalid identity")
			}
		})
	}
}

func TestNewDistinct(t *testing.T) {
	if testing.Short() {
		t.Skip("generates keys")
	}
	a := testIdentity(t)
	b, err := New(testHostname, testIID, testParentIID, testParentMAC, testMAC, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if a.MachineID == b.MachineID {
		t.Error("same machine-id twice")
	}
	if bytes.Equal(a.RandomSeed, b.RandomSeed) {
		t.Error("same random seed twice")
	}
	for i := range a.HostKeys {
		if bytes.Equal(a.HostKeys[i].Private, b.HostKeys[i].Private) || bytes.Equal(a.HostKeys[i].Public, b.HostKeys[i].Public) {
			t.Errorf("same %s key twice", a.HostKeys[i].Type)
		}
	}
	fa, fb := a.Fingerprints(), b.Fingerprints()
	for k := range fa {
		if fa[k] == fb[k] {
			t.Errorf("same %s fingerprint twice", k)
		}
	}
}

func TestMachineIDForm(t *testing.T) {
	id := testIdentity(t)
	b, err := hex.DecodeString(id.MachineID)
	if err != nil || len(b) != 16 {
		t.Fatalf("machine-id %q", id.MachineID)
	}
	if b[6]>>4 != 4 || b[8]>>6 != 2 {
		t.Errorf("machine-id %s is not a version-4 UUID", id.MachineID)
	}
	if bytes.Equal(id.RandomSeed, make([]byte, SeedSize)) {
		t.Error("zero seed")
	}
}

func TestHostKeys(t *testing.T) {
	id := testIdentity(t)
	want := map[string]string{
		KeyEd25519: ssh.KeyAlgoED25519,
		KeyECDSA:   ssh.KeyAlgoECDSA256,
		KeyRSA:     ssh.KeyAlgoRSA,
	}
	if len(id.HostKeys) != 3 {
		t.Fatalf("%d host keys", len(id.HostKeys))
	}
	fps := id.Fingerprints()
	if len(fps) != 3 {
		t.Fatalf("fingerprints %v", fps)
	}
	for i, k := range id.HostKeys {
		if k.Type != keyTypes[i] {
			t.Errorf("key %d is %s, want %s", i, k.Type, keyTypes[i])
		}
		signer, err := ssh.ParsePrivateKey(k.Private)
		if err != nil {
			t.Fatalf("%s: %v", k.Type, err)
		}
		if got := signer.PublicKey().Type(); got != want[k.Type] {
			t.Errorf("%s: private key is %s", k.Type, got)
		}
		if !bytes.HasPrefix(k.Private, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n")) {
			t.Errorf("%s: private key is not OpenSSH PEM", k.Type)
		}
		pub, comment, _, rest, err := ssh.ParseAuthorizedKey(k.Public)
		if err != nil || len(rest) != 0 {
			t.Fatalf("%s: public line %q: %v", k.Type, k.Public, err)
		}
		if comment != "root@"+testHostname {
			t.Errorf("%s: comment %q", k.Type, comment)
		}
		wantLine := want[k.Type] + " " + base64.StdEncoding.EncodeToString(signer.PublicKey().Marshal()) + " root@" + testHostname + "\n"
		if string(k.Public) != wantLine {
			t.Errorf("%s: public line %q, want %q", k.Type, k.Public, wantLine)
		}
		if !bytes.Equal(pub.Marshal(), signer.PublicKey().Marshal()) {
			t.Errorf("%s: public key does not match private key", k.Type)
		}
		if fps[k.Type] != ssh.FingerprintSHA256(signer.PublicKey()) || !strings.HasPrefix(fps[k.Type], "SHA256:") {
			t.Errorf("%s: fingerprint %q", k.Type, fps[k.Type])
		}
		if k.Type == KeyRSA {
			ck := signer.PublicKey().(ssh.CryptoPublicKey).CryptoPublicKey()
			if n := ck.(interface{ Size() int }).Size() * 8; n != RSABits {
				t.Errorf("RSA key has %d bits", n)
			}
		}
	}
}

// TestFingerprintsMatchSSHKeygen compares with ssh-keygen -l (package
// openssh-client; a missing one fails under GALE_REQUIRE_TOOLS=1).
func TestFingerprintsMatchSSHKeygen(t *testing.T) {
	keygen := testtool.Need(t, "openssh-client", "ssh-keygen")[0]
	id := testIdentity(t)
	fps := id.Fingerprints()
	dir := t.TempDir()
	for _, k := range id.HostKeys {
		for _, half := range []struct {
			name string
			data []byte
		}{{"pub", k.Public}, {"key", k.Private}} {
			p := filepath.Join(dir, k.Type+"."+half.name)
			if err := os.WriteFile(p, half.data, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(keygen, "-l", "-E", "sha256", "-f", p).Output()
			if err != nil {
				t.Fatalf("ssh-keygen -l %s: %v", p, err)
			}
			f := strings.Fields(string(out))
			if len(f) < 2 || f[1] != fps[k.Type] {
				t.Errorf("%s %s: ssh-keygen says %q, Fingerprints %q", k.Type, half.name, out, fps[k.Type])
			}
		}
	}
}

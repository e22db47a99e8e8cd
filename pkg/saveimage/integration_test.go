//go:build e2e

package saveimage

// TestE2ESaveRestoreRoundTrip runs against a real libvirtd: it saves a tiny
// diskless domain with virDomainSaveFlags, checks that Open understands the
// result, rewrites it under a new name and UUID and restores the copy.
//
// Run it with, for example:
//
//	sudo LIBVIRT_DEFAULT_URI=qemu:///system go test -tags e2e -run TestE2ESaveRestoreRoundTrip -v ./pkg/saveimage/   (scripts/e2e.sh runs it in the test environment)
//
// libvirtd must be local (the save file is a path on this host) and the test
// must be able to read the file libvirt writes: run it as root with
// qemu:///system, or as the user of a qemu:///session daemon.

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirt"
)

var (
	nameRE = regexp.MustCompile(`<name>([^<]+)</name>`)
	uuidRE = regexp.MustCompile(`<uuid>([^<]+)</uuid>`)
)

func randomUUID(t *testing.T) string {
	t.Helper()
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		t.Fatal(err)
	}
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// cleanupDomain destroys (if running) and undefines the domain called name,
// if there is one.
func cleanupDomain(t *testing.T, conn *libvirt.Connect, name string) {
	t.Cleanup(func() {
		dom, err := conn.LookupDomainByName(name)
		if err != nil {
			return // never defined, or already gone
		}
		defer dom.Free()
		if active, err := dom.IsActive(); err == nil && active {
			if err := dom.Destroy(); err != nil {
				t.Errorf("destroy %s: %v", name, err)
			}
		}
		if err := dom.Undefine(); err != nil {
			t.Errorf("undefine %s: %v", name, err)
		}
	})
}

func TestE2ESaveRestoreRoundTrip(t *testing.T) {
	if os.Getenv("LIBVIRT_DEFAULT_URI") == "" {
		t.Skip("LIBVIRT_DEFAULT_URI not set: no libvirtd to test against")
	}
	conn, err := libvirt.NewConnect("")
	if err != nil {
		t.Fatalf("connect to libvirt: %v", err)
	}
	t.Cleanup(func() { conn.Close() })

	suffix := randomUUID(t)[:8]
	name := "gale-saveimage-it-" + suffix
	newName := "gale-saveimage-it-copy-" + suffix
	// Registered first so that it runs last, after the domains are gone.
	dir := t.TempDir()
	cleanupDomain(t, conn, name)
	cleanupDomain(t, conn, newName)

	domXML := fmt.Sprintf(`<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <on_crash>destroy</on_crash>
  <devices/>
</domain>`, name)
	dom, err := conn.DomainDefineXML(domXML)
	if err != nil {
		t.Fatalf("define %s: %v", name, err)
	}
	defer dom.Free()
	if err := dom.Create(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}

	// The directory must be reachable by the qemu user (t.TempDir's
	// parent is created 0700).
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	saved := filepath.Join(dir, "saved.img")
	if err := dom.SaveFlags(saved, "", libvirt.DOMAIN_SAVE_RUNNING); err != nil {
		t.Fatalf("save %s: %v", name, err)
	}

	im, err := Open(saved)
	if err != nil {
		t.Fatalf("Open(%s): %v", saved, err)
	}
	t.Logf("saved image: %+v, XML %d bytes, cookie %d bytes, stream %d bytes",
		im.Header, len(im.XML), len(im.Cookie), im.StreamLen())
	if im.Header.Version != 2 || im.Header.Format != 0 {
		t.Errorf("header %+v: want version 2, format 0 (raw)", im.Header)
	}
	if im.Header.WasRunning != 1 {
		t.Errorf("was_running = %d, want 1", im.Header.WasRunning)
	}
	if !strings.Contains(string(im.XML), "<name>"+name+"</name>") {
		t.Errorf("saved XML does not name %s:\n%s", name, im.XML)
	}
	f, err := os.Open(saved)
	if err != nil {
		t.Fatal(err)
	}
	var magic [4]byte
	_, err = f.ReadAt(magic[:], im.StreamOffset)
	f.Close()
	if err != nil || string(magic[:]) != "QEVM" {
		t.Fatalf("stream at %d starts with %q (err %v), want QEVM", im.StreamOffset, magic, err)
	}

	m := uuidRE.FindStringSubmatch(string(im.XML))
	if n := nameRE.FindStringSubmatch(string(im.XML)); m == nil || n == nil || n[1] != name {
		t.Fatalf("saved XML lacks the expected <name>/<uuid>:\n%s", im.XML)
	}
	oldUUID, newUUID := m[1], randomUUID(t)
	newXML := strings.Replace(string(im.XML), "<name>"+name+"</name>", "<name>"+newName+"</name>", 1)
	newXML = strings.Replace(newXML, "<uuid>"+oldUUID+"</uuid>", "<uuid>"+newUUID+"</uuid>", 1)

	copyPath := filepath.Join(dir, "copy.img")
	if err := Rewrite(t.Context(), saved, copyPath, []byte(newXML)); err != nil {
		t.Fatalf("Rewrite: %v", err)
	}
	cim, err := Open(copyPath)
	if err != nil {
		t.Fatalf("Open(rewritten): %v", err)
	}
	if string(cim.XML) != newXML || string(cim.Cookie) != string(im.Cookie) || cim.StreamLen() != im.StreamLen() {
		t.Fatalf("rewritten image does not match: %+v", cim.Header)
	}

	ndom, err := conn.DomainDefineXML(newXML)
	if err != nil {
		t.Fatalf("define %s: %v", newName, err)
	}
	ndom.Free()
	if err := conn.DomainRestoreFlags(copyPath, "", libvirt.DOMAIN_SAVE_RUNNING); err != nil {
		t.Fatalf("restore %s: %v", copyPath, err)
	}
	ndom, err = conn.LookupDomainByName(newName)
	if err != nil {
		t.Fatalf("look up restored domain: %v", err)
	}
	defer ndom.Free()
	if got, err := ndom.GetUUIDString(); err != nil || got != newUUID {
		t.Errorf("restored domain UUID = %q (err %v), want %s", got, err, newUUID)
	}
	var state libvirt.DomainState
	for deadline := time.Now().Add(10 * time.Second); ; {
		state, _, err = ndom.GetState()
		if err != nil {
			t.Fatalf("state of %s: %v", newName, err)
		}
		if state == libvirt.DOMAIN_RUNNING || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if state != libvirt.DOMAIN_RUNNING {
		t.Errorf("restored domain %s is in state %d, want running", newName, state)
	}

	// The original domain is still defined, shut off, and untouched.
	if active, err := dom.IsActive(); err != nil || active {
		t.Errorf("original domain active = %v (err %v), want shut off after save", active, err)
	}
}

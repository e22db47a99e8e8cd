package store

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func openTest(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func TestOpenMigratesAndReopens(t *testing.T) {
	ctx := context.Background()
	s, dir := openTest(t)
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != LatestSchema() {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, LatestSchema())
	}
	var mode string
	if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	if err := s.InsertVM(ctx, VM{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	if _, err := s2.GetVM(ctx, "a"); err != nil {
		t.Fatalf("row lost across reopen: %v", err)
	}
	if _, err := s2.db.ExecContext(ctx, `UPDATE schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if _, err := Open(dir); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

func TestVMRows(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	created := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	full := VM{Name: "web", ID: "i-1", Image: "debian-12", CPUs: 2, MemoryMiB: 512, DiskBytes: 1 << 30,
		Network: "n", MAC: "52:54:00:00:00:01", State: "creating", Desired: DesiredRunning,
		UserData: []byte("#cloud-config\n"), SSHKeys: []string{"ssh-ed25519 AAAA x"}, CreatedAt: created,
		ReadyAfter: 1500 * time.Millisecond, Phase: PhaseCreating, CloudInit: "pending", Addresses: []string{"10.0.0.2"},
		ReadyPort: 8080, ImagePath: "/var/lib/gale/images/debian-12.qcow2", Made: MadeClone, Parent: "gale-parent-0123456789ab"}
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"insert", func() error { return s.InsertVM(ctx, full) }, nil},
		{"insert again", func() error { return s.InsertVM(ctx, full) }, ErrExists},
		{"get", func() error {
			got, err := s.GetVM(ctx, "web")
			if err != nil {
				return err
			}
			if got.ID != full.ID || got.CPUs != 2 || string(got.UserData) != string(full.UserData) ||
				len(got.SSHKeys) != 1 || !got.CreatedAt.Equal(created) || got.ReadyAfter != full.ReadyAfter ||
				got.Phase != PhaseCreating || got.Addresses[0] != "10.0.0.2" || got.ReadyPort != 8080 || got.ImagePath != full.ImagePath ||
				got.Made != MadeClone || got.Parent != full.Parent {
				return errors.New("round trip mismatch")
			}
			return nil
		}, nil},
		{"update", func() error {
			v, err := s.UpdateVM(ctx, "web", func(v *VM) { v.Phase = PhaseNone; v.State = "running" })
			if err == nil && (v.Phase != "" || v.State != "running" || v.ID != "i-1") {
				return errors.New("update lost fields")
			}
			return err
		}, nil},
		{"update missing", func() error { _, err := s.UpdateVM(ctx, "nope", func(*VM) {}); return err }, ErrNotFound},
		{"get missing", func() error { _, err := s.GetVM(ctx, "nope"); return err }, ErrNotFound},
		{"put new", func() error { return s.PutVM(ctx, VM{Name: "db"}) }, nil},
		{"list", func() error {
			l, err := s.ListVMs(ctx)
			if err == nil && (len(l) != 2 || l[0].Name != "db" || l[1].Name != "web" || l[0].Desired != DesiredRunning) {
				return errors.New("list mismatch")
			}
			return err
		}, nil},
		{"delete", func() error { return s.DeleteVM(ctx, "web") }, nil},
		{"delete again", func() error { return s.DeleteVM(ctx, "web") }, nil},
		{"gone", func() error { _, err := s.GetVM(ctx, "web"); return err }, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if (tt.want == nil && err != nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestMigrateRecordsImagePath opens a database at schema 2 (before image
// paths were recorded): its rows survive with no image path, which
// SetVMImagePath then records once.
func TestMigrateRecordsImagePath(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old := migrations
	migrations = old[:2]
	s, err := Open(dir)
	migrations = old
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO vms (name, image) VALUES ('old', 'debian-12')`); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(dir)
	if err != nil {
		t.Fatalf("open schema 2: %v", err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != LatestSchema() {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, LatestSchema())
	}
	for _, c := range []struct {
		name string
		set  string // "" means: do not call SetVMImagePath
		want string
	}{
		{"migrated row has no path", "", ""},
		{"first record is kept", "/img/a.qcow2", "/img/a.qcow2"},
		{"a recorded path is never replaced", "/img/b.qcow2", "/img/a.qcow2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.set != "" {
				if err := s.SetVMImagePath(ctx, "old", c.set); err != nil {
					t.Fatal(err)
				}
			}
			v, err := s.GetVM(ctx, "old")
			if err != nil || v.ImagePath != c.want || v.Image != "debian-12" {
				t.Errorf("GetVM() = %+v, %v; want image debian-12 at %q", v, err, c.want)
			}
		})
	}
	if err := s.SetVMImagePath(ctx, "gone", "/img/a.qcow2"); err != nil {
		t.Errorf("SetVMImagePath() of a missing row = %v, want nil", err)
	}
}

func TestOperationRows(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	now := time.Now().UTC()
	for _, op := range []Operation{
		{ID: "o1", Kind: "create", Target: "a", Status: "running", CreatedAt: now},
		{ID: "o2", Kind: "delete", Target: "b", Status: "succeeded", CreatedAt: now, FinishedAt: now.Add(-48 * time.Hour)},
	} {
		if err := s.PutOperation(ctx, op); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.FailRunningOperations(ctx, "running", "failed", "galed restarted")
	if err != nil || n != 1 {
		t.Fatalf("FailRunningOperations = %d, %v", n, err)
	}
	o1, err := s.GetOperation(ctx, "o1")
	if err != nil || o1.Status != "failed" || o1.Error != "galed restarted" || o1.FinishedAt.IsZero() {
		t.Fatalf("o1 = %+v, %v", o1, err)
	}
	if err := s.PruneOperations(ctx, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetOperation(ctx, "o2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pruned o2: %v", err)
	}
	if _, err := s.GetOperation(ctx, "o1"); err != nil {
		t.Fatalf("o1 pruned too early: %v", err)
	}
}

// TestLockHelper is run as a child process by TestLockExcludesSecondProcess.
func TestLockHelper(t *testing.T) {
	dir := os.Getenv("GALE_LOCK_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	if _, err := Lock(dir, time.Second); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("locked\n")
	time.Sleep(30 * time.Second)
}

func TestLockExcludesSecondProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelper$")
	cmd.Env = append(os.Environ(), "GALE_LOCK_HELPER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("helper: %q, %v", buf, err)
	}
	tests := []struct {
		name    string
		timeout time.Duration
	}{
		{"no wait", 0},
		{"short wait", 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Lock(dir, tt.timeout)
			if !errors.Is(err, ErrLocked) {
				t.Fatalf("Lock = %v, want ErrLocked", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, filepath.Join(dir, LockFile)) || !strings.Contains(msg, "pid "+strconv.Itoa(cmd.Process.Pid)) {
				t.Fatalf("message %q does not name the lock file and pid %d", msg, cmd.Process.Pid)
			}
		})
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	l, err := Lock(dir, time.Second)
	if err != nil {
		t.Fatalf("Lock after holder exited: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
}

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Desired states of a VM.
const (
	DesiredRunning = "running"
	DesiredStopped = "stopped"
)

// Phases of half-done work recorded in VM.Phase. Empty means no work in flight.
const (
	PhaseNone     = ""
	PhaseCreating = "creating" // resources may be partly made; undo on restart
	PhaseDeleting = "deleting" // resources may be partly removed; finish on restart
)

// VM is one row of the vms table.
type VM struct {
	Name       string
	ID         string
	Image      string
	CPUs       int
	MemoryMiB  int
	DiskBytes  int64
	Network    string
	MAC        string
	State      string // last known state (api.State*)
	Desired    string // DesiredRunning or DesiredStopped
	UserData   []byte
	SSHKeys    []string
	Error      string
	CreatedAt  time.Time
	ReadyAfter time.Duration // stored in milliseconds
	Phase      string
	CloudInit  string   // api.CloudInit*
	Addresses  []string // cached from the last readiness check or Get
	// ReadyPort, when not 0, is a guest TCP port whose accepting
	// connections means the VM is ready (images without cloud-init).
	ReadyPort int
	// ImagePath is the absolute path of the image file the VM's disk is
	// an overlay of (its backing file), recorded at create. It is "" for
	// VMs created before schema 3 until SetVMImagePath records it.
	ImagePath string
	// Made says how the VM was made: MadeColdBoot, MadeClone, or "" for
	// VMs created before schema 4 (all cold boots).
	Made string
	// Parent is the saved parent a clone was restored from ("" otherwise).
	Parent string
	// Owner is what manages the VM: "set/<name>" for a scale set's
	// instance, "" for a VM of the user's own.
	Owner string
}

// Values of VM.Made (the same as api.MadeColdBoot and api.MadeClone).
const (
	MadeColdBoot = "cold-boot"
	MadeClone    = "clone"
)

const vmColumns = `name, id, image, cpus, memory_mib, disk_bytes, network, mac, state, desired,
	user_data, ssh_keys, error, created_at, ready_after_ms, phase, cloud_init, addresses, ready_port, image_path, made, parent, owner`

// vmPlaceholders has one ? per column of vmColumns.
var vmPlaceholders = strings.TrimSuffix(strings.Repeat("?,", strings.Count(vmColumns, ",")+1), ",")

func vmArgs(v VM) []any {
	keys, _ := json.Marshal(nonNil(v.SSHKeys))
	addrs, _ := json.Marshal(nonNil(v.Addresses))
	desired := v.Desired
	if desired == "" {
		desired = DesiredRunning
	}
	return []any{v.Name, v.ID, v.Image, v.CPUs, v.MemoryMiB, v.DiskBytes, v.Network, v.MAC, v.State, desired,
		v.UserData, string(keys), v.Error, unixNano(v.CreatedAt), v.ReadyAfter.Milliseconds(), v.Phase, v.CloudInit, string(addrs), v.ReadyPort, v.ImagePath, v.Made, v.Parent, v.Owner}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type scanner interface{ Scan(dest ...any) error }

func scanVM(r scanner) (VM, error) {
	var v VM
	var keys, addrs string
	var created, readyMS int64
	err := r.Scan(&v.Name, &v.ID, &v.Image, &v.CPUs, &v.MemoryMiB, &v.DiskBytes, &v.Network, &v.MAC, &v.State, &v.Desired,
		&v.UserData, &keys, &v.Error, &created, &readyMS, &v.Phase, &v.CloudInit, &addrs, &v.ReadyPort, &v.ImagePath, &v.Made, &v.Parent, &v.Owner)
	if err != nil {
		return VM{}, err
	}
	_ = json.Unmarshal([]byte(keys), &v.SSHKeys)
	_ = json.Unmarshal([]byte(addrs), &v.Addresses)
	v.CreatedAt = fromUnixNano(created)
	v.ReadyAfter = time.Duration(readyMS) * time.Millisecond
	return v, nil
}

// InsertVM adds a row; it fails with ErrExists when the name is taken. The
// insert is a VM name's claim: two creates of one name cannot both succeed.
func (s *Store) InsertVM(ctx context.Context, v VM) error {
	q := `INSERT INTO vms (` + vmColumns + `) VALUES (` + vmPlaceholders + `)`
	if _, err := s.db.ExecContext(ctx, q, vmArgs(v)...); err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed") || strings.Contains(err.Error(), "PRIMARY KEY") {
			return fmt.Errorf("vm %q: %w", v.Name, ErrExists)
		}
		return fmt.Errorf("insert vm %q: %w", v.Name, err)
	}
	return nil
}

// PutVM replaces the row of v.Name, inserting it if missing.
func (s *Store) PutVM(ctx context.Context, v VM) error {
	q := `INSERT OR REPLACE INTO vms (` + vmColumns + `) VALUES (` + vmPlaceholders + `)`
	if _, err := s.db.ExecContext(ctx, q, vmArgs(v)...); err != nil {
		return fmt.Errorf("put vm %q: %w", v.Name, err)
	}
	return nil
}

// UpdateVM reads the row of name, applies fn to it and writes it back, in
// one transaction. It fails with ErrNotFound when there is no such row.
func (s *Store) UpdateVM(ctx context.Context, name string, fn func(*VM)) (VM, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return VM{}, fmt.Errorf("update vm %q: %w", name, err)
	}
	defer tx.Rollback()
	v, err := scanVM(tx.QueryRowContext(ctx, `SELECT `+vmColumns+` FROM vms WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return VM{}, fmt.Errorf("vm %q: %w", name, ErrNotFound)
	} else if err != nil {
		return VM{}, fmt.Errorf("update vm %q: %w", name, err)
	}
	fn(&v)
	v.Name = name
	q := `INSERT OR REPLACE INTO vms (` + vmColumns + `) VALUES (` + vmPlaceholders + `)`
	if _, err := tx.ExecContext(ctx, q, vmArgs(v)...); err != nil {
		return VM{}, fmt.Errorf("update vm %q: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return VM{}, fmt.Errorf("update vm %q: %w", name, err)
	}
	return v, nil
}

// GetVM returns the row of name or ErrNotFound.
func (s *Store) GetVM(ctx context.Context, name string) (VM, error) {
	v, err := scanVM(s.db.QueryRowContext(ctx, `SELECT `+vmColumns+` FROM vms WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return VM{}, fmt.Errorf("vm %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return VM{}, fmt.Errorf("get vm %q: %w", name, err)
	}
	return v, nil
}

// ListVMs returns all rows ordered by name, with one query.
func (s *Store) ListVMs(ctx context.Context) ([]VM, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+vmColumns+` FROM vms ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list vms: %w", err)
	}
	defer rows.Close()
	var out []VM
	for rows.Next() {
		v, err := scanVM(rows)
		if err != nil {
			return nil, fmt.Errorf("list vms: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// DeleteVM removes the row of name; a missing row is not an error.
func (s *Store) DeleteVM(ctx context.Context, name string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM vms WHERE name = ?`, name); err != nil {
		return fmt.Errorf("delete vm %q: %w", name, err)
	}
	return nil
}

// SetVMImagePath records path as the image file of the VM name's disk when
// none is recorded yet; a recorded path is never replaced. A missing row
// is not an error (the VM was deleted meanwhile).
func (s *Store) SetVMImagePath(ctx context.Context, name, path string) error {
	q := `UPDATE vms SET image_path = ? WHERE name = ? AND image_path = ''`
	if _, err := s.db.ExecContext(ctx, q, path, name); err != nil {
		return fmt.Errorf("record image of vm %q: %w", name, err)
	}
	return nil
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Set is one row of the sets table. Spec is the set's desired state as
// JSON; its shape belongs to pkg/scaleset.
type Set struct {
	Name      string
	Spec      []byte
	Phase     string // PhaseNone, or PhaseDeleting while the set is removed
	CreatedAt time.Time
}

// SetModel is one model version of a set (JSON owned by pkg/scaleset).
type SetModel struct {
	Set       string
	Version   int
	Model     []byte
	CreatedAt time.Time
}

// SetInstance is one instance of a set. Its VM has the same name; the row
// is written before the VM is created and removed after it is deleted.
type SetInstance struct {
	Name       string
	Set        string
	Ordinal    int
	Version    int
	Protect    string // comma-separated protections (pkg/scaleset)
	Phase      string // PhaseCreating, PhaseDeleting or PhaseNone
	CreatedAt  time.Time
	RepairedAt time.Time
}

// InsertSet adds a set and its first model in one transaction; ErrExists
// when the name is taken.
func (s *Store) InsertSet(ctx context.Context, set Set, model SetModel) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("insert set %q: %w", set.Name, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO sets (name, spec, phase, created_at) VALUES (?,?,?,?)`,
		set.Name, string(set.Spec), set.Phase, unixNano(set.CreatedAt)); err != nil {
		if isUnique(err) {
			return fmt.Errorf("set %q: %w", set.Name, ErrExists)
		}
		return fmt.Errorf("insert set %q: %w", set.Name, err)
	}
	if err := putSetModel(ctx, tx, model); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("insert set %q: %w", set.Name, err)
	}
	return nil
}

func isUnique(err error) bool {
	return strings.Contains(err.Error(), "UNIQUE constraint failed") || strings.Contains(err.Error(), "PRIMARY KEY")
}

func putSetModel(ctx context.Context, tx *sql.Tx, m SetModel) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO set_models (set_name, version, model, created_at) VALUES (?,?,?,?)`,
		m.Set, m.Version, string(m.Model), unixNano(m.CreatedAt)); err != nil {
		if isUnique(err) {
			return fmt.Errorf("set %q model %d: %w", m.Set, m.Version, ErrExists)
		}
		return fmt.Errorf("insert set %q model %d: %w", m.Set, m.Version, err)
	}
	return nil
}

// UpdateSet reads the set name, applies fn to it and writes it back in one
// transaction; a model fn returns (non-nil) is inserted in the same
// transaction. ErrNotFound when there is no such set.
func (s *Store) UpdateSet(ctx context.Context, name string, fn func(*Set) (*SetModel, error)) (Set, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Set{}, fmt.Errorf("update set %q: %w", name, err)
	}
	defer tx.Rollback()
	set, err := scanSet(tx.QueryRowContext(ctx, `SELECT name, spec, phase, created_at FROM sets WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Set{}, fmt.Errorf("set %q: %w", name, ErrNotFound)
	} else if err != nil {
		return Set{}, fmt.Errorf("update set %q: %w", name, err)
	}
	model, err := fn(&set)
	if err != nil {
		return Set{}, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sets SET spec = ?, phase = ? WHERE name = ?`, string(set.Spec), set.Phase, name); err != nil {
		return Set{}, fmt.Errorf("update set %q: %w", name, err)
	}
	if model != nil {
		if err := putSetModel(ctx, tx, *model); err != nil {
			return Set{}, err
		}
	}
	if err := tx.Commit(); err != nil {
		return Set{}, fmt.Errorf("update set %q: %w", name, err)
	}
	return set, nil
}

func scanSet(r scanner) (Set, error) {
	var set Set
	var spec string
	var created int64
	if err := r.Scan(&set.Name, &spec, &set.Phase, &created); err != nil {
		return Set{}, err
	}
	set.Spec, set.CreatedAt = []byte(spec), fromUnixNano(created)
	return set, nil
}

// GetSet returns the set name or ErrNotFound.
func (s *Store) GetSet(ctx context.Context, name string) (Set, error) {
	set, err := scanSet(s.db.QueryRowContext(ctx, `SELECT name, spec, phase, created_at FROM sets WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Set{}, fmt.Errorf("set %q: %w", name, ErrNotFound)
	} else if err != nil {
		return Set{}, fmt.Errorf("get set %q: %w", name, err)
	}
	return set, nil
}

// ListSets returns every set ordered by name.
func (s *Store) ListSets(ctx context.Context) ([]Set, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, spec, phase, created_at FROM sets ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	defer rows.Close()
	var out []Set
	for rows.Next() {
		set, err := scanSet(rows)
		if err != nil {
			return nil, fmt.Errorf("list sets: %w", err)
		}
		out = append(out, set)
	}
	return out, rows.Err()
}

// DeleteSet removes a set with its models, instances rows and activity.
// A missing set is not an error.
func (s *Store) DeleteSet(ctx context.Context, name string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete set %q: %w", name, err)
	}
	defer tx.Rollback()
	for _, q := range []string{
		`DELETE FROM set_instances WHERE set_name = ?`,
		`DELETE FROM set_models WHERE set_name = ?`,
		`DELETE FROM set_activity WHERE set_name = ?`,
		`DELETE FROM sets WHERE name = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, name); err != nil {
			return fmt.Errorf("delete set %q: %w", name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete set %q: %w", name, err)
	}
	return nil
}

// SetModels returns every model version of set, oldest first.
func (s *Store) SetModels(ctx context.Context, set string) ([]SetModel, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT set_name, version, model, created_at FROM set_models WHERE set_name = ? ORDER BY version`, set)
	if err != nil {
		return nil, fmt.Errorf("models of set %q: %w", set, err)
	}
	defer rows.Close()
	var out []SetModel
	for rows.Next() {
		var m SetModel
		var model string
		var created int64
		if err := rows.Scan(&m.Set, &m.Version, &model, &created); err != nil {
			return nil, fmt.Errorf("models of set %q: %w", set, err)
		}
		m.Model, m.CreatedAt = []byte(model), fromUnixNano(created)
		out = append(out, m)
	}
	return out, rows.Err()
}

// DeleteSetModel removes one model version (one no instance uses any more).
func (s *Store) DeleteSetModel(ctx context.Context, set string, version int) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM set_models WHERE set_name = ? AND version = ?`, set, version); err != nil {
		return fmt.Errorf("delete model %d of set %q: %w", version, set, err)
	}
	return nil
}

const instanceColumns = `name, set_name, ordinal, version, protect, phase, created_at, repaired_at`

func scanInstance(r scanner) (SetInstance, error) {
	var in SetInstance
	var created, repaired int64
	if err := r.Scan(&in.Name, &in.Set, &in.Ordinal, &in.Version, &in.Protect, &in.Phase, &created, &repaired); err != nil {
		return SetInstance{}, err
	}
	in.CreatedAt, in.RepairedAt = fromUnixNano(created), fromUnixNano(repaired)
	return in, nil
}

// PutSetInstance writes an instance row (insert or replace).
func (s *Store) PutSetInstance(ctx context.Context, in SetInstance) error {
	q := `INSERT OR REPLACE INTO set_instances (` + instanceColumns + `) VALUES (?,?,?,?,?,?,?,?)`
	if _, err := s.db.ExecContext(ctx, q, in.Name, in.Set, in.Ordinal, in.Version, in.Protect, in.Phase,
		unixNano(in.CreatedAt), unixNano(in.RepairedAt)); err != nil {
		return fmt.Errorf("put instance %q: %w", in.Name, err)
	}
	return nil
}

// InsertSetInstance adds an instance row; ErrExists when the name is taken.
func (s *Store) InsertSetInstance(ctx context.Context, in SetInstance) error {
	q := `INSERT INTO set_instances (` + instanceColumns + `) VALUES (?,?,?,?,?,?,?,?)`
	if _, err := s.db.ExecContext(ctx, q, in.Name, in.Set, in.Ordinal, in.Version, in.Protect, in.Phase,
		unixNano(in.CreatedAt), unixNano(in.RepairedAt)); err != nil {
		if isUnique(err) {
			return fmt.Errorf("instance %q: %w", in.Name, ErrExists)
		}
		return fmt.Errorf("insert instance %q: %w", in.Name, err)
	}
	return nil
}

// SetInstances returns the instances of set by ordinal.
func (s *Store) SetInstances(ctx context.Context, set string) ([]SetInstance, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+instanceColumns+` FROM set_instances WHERE set_name = ? ORDER BY ordinal`, set)
	if err != nil {
		return nil, fmt.Errorf("instances of set %q: %w", set, err)
	}
	defer rows.Close()
	var out []SetInstance
	for rows.Next() {
		in, err := scanInstance(rows)
		if err != nil {
			return nil, fmt.Errorf("instances of set %q: %w", set, err)
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// DeleteSetInstance removes an instance row; a missing row is not an error.
func (s *Store) DeleteSetInstance(ctx context.Context, name string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM set_instances WHERE name = ?`, name); err != nil {
		return fmt.Errorf("delete instance %q: %w", name, err)
	}
	return nil
}

// AddSetActivity appends one activity record (JSON owned by pkg/scaleset)
// and returns its id, which grows with every record.
func (s *Store) AddSetActivity(ctx context.Context, set string, at time.Time, record []byte) (int64, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO set_activity (set_name, at, record) VALUES (?,?,?)`, set, unixNano(at), string(record))
	if err != nil {
		return 0, fmt.Errorf("add activity of set %q: %w", set, err)
	}
	return res.LastInsertId()
}

// SetActivity returns the records of set with id > after, oldest first, at
// most limit of them (the newest ones when more match).
func (s *Store) SetActivity(ctx context.Context, set string, after int64, limit int) (ids []int64, records [][]byte, err error) {
	q := `SELECT id, record FROM (SELECT id, record FROM set_activity WHERE set_name = ? AND id > ? ORDER BY id DESC LIMIT ?) ORDER BY id`
	rows, err := s.db.QueryContext(ctx, q, set, after, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("activity of set %q: %w", set, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var rec string
		if err := rows.Scan(&id, &rec); err != nil {
			return nil, nil, fmt.Errorf("activity of set %q: %w", set, err)
		}
		ids, records = append(ids, id), append(records, []byte(rec))
	}
	return ids, records, rows.Err()
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Operation is one row of the operations table.
type Operation struct {
	ID         string
	Kind       string
	Target     string
	Status     string // api.Op*
	Stage      string
	Error      string
	Detail     string
	CreatedAt  time.Time
	FinishedAt time.Time // zero while running
}

const opColumns = `id, kind, target, status, stage, error, detail, created_at, finished_at`

// PutOperation inserts or replaces an operation row.
func (s *Store) PutOperation(ctx context.Context, op Operation) error {
	var finished any
	if !op.FinishedAt.IsZero() {
		finished = op.FinishedAt.UnixNano()
	}
	_, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO operations (`+opColumns+`) VALUES (?,?,?,?,?,?,?,?,?)`,
		op.ID, op.Kind, op.Target, op.Status, op.Stage, op.Error, op.Detail, unixNano(op.CreatedAt), finished)
	if err != nil {
		return fmt.Errorf("put operation %s: %w", op.ID, err)
	}
	return nil
}

func scanOp(r scanner) (Operation, error) {
	var op Operation
	var created int64
	var finished sql.NullInt64
	if err := r.Scan(&op.ID, &op.Kind, &op.Target, &op.Status, &op.Stage, &op.Error, &op.Detail, &created, &finished); err != nil {
		return Operation{}, err
	}
	op.CreatedAt = fromUnixNano(created)
	if finished.Valid {
		op.FinishedAt = fromUnixNano(finished.Int64)
	}
	return op, nil
}

// GetOperation returns one operation or ErrNotFound.
func (s *Store) GetOperation(ctx context.Context, id string) (Operation, error) {
	op, err := scanOp(s.db.QueryRowContext(ctx, `SELECT `+opColumns+` FROM operations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Operation{}, fmt.Errorf("operation %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Operation{}, fmt.Errorf("get operation %s: %w", id, err)
	}
	return op, nil
}

// FailRunningOperations marks every operation still recorded as running as
// failed with reason: after a restart nobody is working on them any more. It
// returns how many it changed.
func (s *Store) FailRunningOperations(ctx context.Context, running, failed, reason string) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE operations SET status = ?, error = ?, finished_at = ? WHERE status = ?`,
		failed, reason, time.Now().UnixNano(), running)
	if err != nil {
		return 0, fmt.Errorf("fail running operations: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// PruneOperations deletes finished operations older than before.
func (s *Store) PruneOperations(ctx context.Context, before time.Time) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM operations WHERE finished_at IS NOT NULL AND finished_at < ?`, before.UnixNano())
	if err != nil {
		return fmt.Errorf("prune operations: %w", err)
	}
	return nil
}

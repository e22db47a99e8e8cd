package store

import "errors"

// Sentinel errors; functions wrap them with context, callers match them with errors.Is.
var (
	// ErrNotFound: no row with that key.
	ErrNotFound = errors.New("not found in store")
	// ErrExists: a row with that key already exists.
	ErrExists = errors.New("already exists in store")
	// ErrLocked: another process holds the data directory's lock.
	ErrLocked = errors.New("data directory is locked")
	// ErrSchemaTooNew: the database was written by a newer galed.
	ErrSchemaTooNew = errors.New("database schema is newer than this galed")
)

// Package store is galed's durable state: an SQLite database (through the
// pure-Go modernc.org/sqlite driver) in the data directory, in WAL mode with a
// busy timeout, with a schema version table and forward-only migrations.
//
// It holds two tables: vms (one row per VM gale manages, including its desired
// state and the phase of half-done work) and operations (long-running work and
// its outcome). Callers write desired state BEFORE they cause side effects, so
// that a daemon restarted after a crash can finish or undo the work.
//
// The data directory is guarded by an exclusive lock (see Lock) so that two
// daemons never share one database.
package store

package store

// migrations are applied in order; migrations[i] takes the schema from
// version i to i+1. Never edit a released migration: append a new one.
var migrations = []string{
	// 1: vms and operations.
	`CREATE TABLE vms (
		name           TEXT PRIMARY KEY,
		id             TEXT NOT NULL DEFAULT '',
		image          TEXT NOT NULL DEFAULT '',
		cpus           INTEGER NOT NULL DEFAULT 0,
		memory_mib     INTEGER NOT NULL DEFAULT 0,
		disk_bytes     INTEGER NOT NULL DEFAULT 0,
		network        TEXT NOT NULL DEFAULT '',
		mac            TEXT NOT NULL DEFAULT '',
		state          TEXT NOT NULL DEFAULT '',
		desired        TEXT NOT NULL DEFAULT 'running',
		user_data      BLOB,
		ssh_keys       TEXT NOT NULL DEFAULT '[]',
		error          TEXT NOT NULL DEFAULT '',
		created_at     INTEGER NOT NULL DEFAULT 0,
		ready_after_ms INTEGER NOT NULL DEFAULT 0,
		phase          TEXT NOT NULL DEFAULT '',
		cloud_init     TEXT NOT NULL DEFAULT '',
		addresses      TEXT NOT NULL DEFAULT '[]'
	);
	CREATE TABLE operations (
		id          TEXT PRIMARY KEY,
		kind        TEXT NOT NULL,
		target      TEXT NOT NULL,
		status      TEXT NOT NULL,
		stage       TEXT NOT NULL DEFAULT '',
		error       TEXT NOT NULL DEFAULT '',
		detail      TEXT NOT NULL DEFAULT '',
		created_at  INTEGER NOT NULL,
		finished_at INTEGER
	);
	CREATE INDEX operations_target ON operations(target, created_at);`,
	// 2: the TCP port that tells a VM without cloud-init is ready.
	`ALTER TABLE vms ADD COLUMN ready_port INTEGER NOT NULL DEFAULT 0;`,
	// 3: the image file a VM's disk was made from (its backing file), so
	// the image service finds an image's users without reading every disk.
	// Rows of VMs created before are '' until the image service records it.
	`ALTER TABLE vms ADD COLUMN image_path TEXT NOT NULL DEFAULT '';`,
	// 4: how a VM was made (cold boot or clone) and the parent of a clone.
	`ALTER TABLE vms ADD COLUMN made TEXT NOT NULL DEFAULT '';
	ALTER TABLE vms ADD COLUMN parent TEXT NOT NULL DEFAULT '';`,
	// 5: scale sets: the set (its spec as JSON, owned by pkg/scaleset), its
	// model versions, its instances, its activity log; and the owner of a VM
	// ("set/<name>" for an instance, "" for a user's own VM).
	`CREATE TABLE sets (
		name       TEXT PRIMARY KEY,
		spec       TEXT NOT NULL,
		phase      TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL
	);
	CREATE TABLE set_models (
		set_name   TEXT NOT NULL,
		version    INTEGER NOT NULL,
		model      TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		PRIMARY KEY (set_name, version)
	);
	CREATE TABLE set_instances (
		name       TEXT PRIMARY KEY,
		set_name   TEXT NOT NULL,
		ordinal    INTEGER NOT NULL,
		version    INTEGER NOT NULL,
		protect    TEXT NOT NULL DEFAULT '',
		phase      TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		repaired_at INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX set_instances_set ON set_instances(set_name, ordinal);
	CREATE TABLE set_activity (
		id          INTEGER PRIMARY KEY AUTOINCREMENT,
		set_name    TEXT NOT NULL,
		at          INTEGER NOT NULL,
		record      TEXT NOT NULL
	);
	CREATE INDEX set_activity_set ON set_activity(set_name, id);
	ALTER TABLE vms ADD COLUMN owner TEXT NOT NULL DEFAULT '';`,
}

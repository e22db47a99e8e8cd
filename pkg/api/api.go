// Package api holds the wire types shared by galed's REST server and the Go
// client: request and response bodies, the error envelope and the paths.
// Everything is JSON over a unix socket; paths are versioned (/v1/...).
//
// Long work (create, delete, start, stop) answers 202 Accepted with an
// Operation; its progress streams as server-sent events from
// OperationEventsPath, one JSON-encoded Event per "data:" line; a client that
// connects late first gets every event so far, and the stream ends after the
// event with Done set.
//
// Status codes: 200 for reads, exec and logs (logs are text/plain); 201 for a
// created network; 202 with an Operation for create, delete, start, stop and
// restart; 204 for a deleted network. Errors carry the Error envelope with a
// Code that maps one-to-one to a status (see the Code constants).
package api

import "time"

// Version is the API version in every path.
const Version = "v1"

// DefaultSocket is where galed listens unless configured otherwise.
const DefaultSocket = "/run/gale/gale.sock"

// Paths. Names in braces are path parameters (net/http ServeMux patterns).
const (
	VersionPath         = "/v1/version"
	VMsPath             = "/v1/vms"
	VMPath              = "/v1/vms/{name}"
	VMActionPath        = "/v1/vms/{name}/{action}" // action: start, stop, restart
	VMExecPath          = "/v1/vms/{name}/exec"
	VMLogsPath          = "/v1/vms/{name}/logs"
	OperationPath       = "/v1/operations/{id}"
	OperationEventsPath = "/v1/operations/{id}/events"
	NetworksPath        = "/v1/networks"
	NetworkPath         = "/v1/networks/{name}"
	ImagesPath          = "/v1/images"
	DoctorPath          = "/v1/doctor"
)

// QueryKeepDisk is the boolean query parameter of DELETE /v1/vms/{name}
// (?keep_disk=true) that deletes the VM but leaves its disk in place.
const QueryKeepDisk = "keep_disk"

// Error codes in the error envelope, each with one HTTP status.
const (
	CodeInvalid      = "invalid"      // 400: bad input; nothing was changed
	CodeNotFound     = "not_found"    // 404
	CodeConflict     = "conflict"     // 409: exists, or another operation holds the VM
	CodeInsufficient = "insufficient" // 422: the host cannot hold it (memory, disk); retry with force
	CodeUnavailable  = "unavailable"  // 503: libvirtd is down; retry later
	CodeInternal     = "internal"     // 500
)

// Error is the body of every non-2xx response.
type Error struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// VM states as galed reports them.
const (
	StateCreating = "creating"
	StateRunning  = "running"
	StateStopped  = "stopped"
	StateDeleting = "deleting"
	StateBroken   = "broken" // state that reconcile could not explain; needs a human
	StateFailed   = "failed" // create or boot failed; see VM.Error
)

// Cloud-init states in VM.CloudInit.
const (
	CloudInitPending = "pending"
	CloudInitRunning = "running"
	CloudInitDone    = "done"
	CloudInitError   = "error"
)

// VM is one VM as galed reports it.
type VM struct {
	Name      string    `json:"name"`
	ID        string    `json:"id"`
	State     string    `json:"state"`
	Image     string    `json:"image"`
	CPUs      int       `json:"cpus"`
	MemoryMiB int       `json:"memory_mib"`
	DiskBytes int64     `json:"disk_bytes"`
	Network   string    `json:"network"`
	MAC       string    `json:"mac,omitempty"`
	Addresses []string  `json:"addresses,omitempty"`
	CloudInit string    `json:"cloud_init"`
	Error     string    `json:"error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// ReadyAfter is how long the VM took from create to ready (0 until ready).
	ReadyAfter Duration `json:"ready_after,omitempty"`
	// Operation is the ID of the operation in progress on this VM, if any.
	Operation string `json:"operation,omitempty"`
}

// CreateVMRequest is the body of POST /v1/vms.
type CreateVMRequest struct {
	Name      string   `json:"name"`
	Image     string   `json:"image"`
	CPUs      int      `json:"cpus,omitempty"`       // default 1
	MemoryMiB int      `json:"memory_mib,omitempty"` // default from the image
	DiskBytes int64    `json:"disk_bytes,omitempty"` // default from the image
	Network   string   `json:"network,omitempty"`    // default galed's default network
	UserData  []byte   `json:"user_data,omitempty"`  // cloud-init user-data, the user's bytes
	SSHKeys   []string `json:"ssh_keys,omitempty"`
	// Force skips the admission check (host memory and disk).
	Force bool `json:"force,omitempty"`
}

// StopVMRequest is the optional body of POST /v1/vms/{name}/stop and restart.
type StopVMRequest struct {
	Force   bool     `json:"force,omitempty"`   // power off at once
	Timeout Duration `json:"timeout,omitempty"` // ACPI grace period before forcing (default 60s)
}

// ExecRequest is the body of POST /v1/vms/{name}/exec.
type ExecRequest struct {
	Command []string `json:"command"` // program and arguments; the program is looked up in the guest's PATH when not absolute
	Stdin   []byte   `json:"stdin,omitempty"`
	Timeout Duration `json:"timeout,omitempty"` // default 5 minutes
}

// ExecResponse is what a command run through the guest agent returned.
type ExecResponse struct {
	ExitCode int    `json:"exit_code"`
	Signal   int    `json:"signal,omitempty"`
	Stdout   []byte `json:"stdout"`
	Stderr   []byte `json:"stderr"`
}

// Operation statuses.
const (
	OpRunning   = "running"
	OpSucceeded = "succeeded"
	OpFailed    = "failed"
)

// Operation is long-running work on one target.
type Operation struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`   // create, delete, start, stop, restart
	Target     string     `json:"target"` // VM name
	Status     string     `json:"status"`
	Stage      string     `json:"stage,omitempty"`
	Error      string     `json:"error,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Event is one progress report of an operation, sent as server-sent events.
// The stream ends after an event with Done set.
type Event struct {
	Operation string   `json:"operation"`
	Stage     string   `json:"stage"`
	Message   string   `json:"message,omitempty"`
	Elapsed   Duration `json:"elapsed"`
	Done      bool     `json:"done,omitempty"`
	Status    string   `json:"status,omitempty"` // with Done: succeeded or failed
	Error     string   `json:"error,omitempty"`
	// Detail carries extra lines on failure, e.g. the tail of cloud-init's output log.
	Detail string `json:"detail,omitempty"`
}

// Network modes.
const (
	NetworkNAT      = "nat"
	NetworkIsolated = "isolated"
)

// Network is a libvirt network.
type Network struct {
	Name   string `json:"name"`
	Mode   string `json:"mode"`
	CIDR   string `json:"cidr"`
	Bridge string `json:"bridge"`
	Active bool   `json:"active"`
}

// CreateNetworkRequest is the body of POST /v1/networks.
type CreateNetworkRequest struct {
	Name string `json:"name"`
	Mode string `json:"mode"` // nat or isolated
	CIDR string `json:"cidr"` // host address and prefix, e.g. 192.168.150.1/24
}

// Image is a template galed can create VMs from.
type Image struct {
	Name      string `json:"name"`
	OS        string `json:"os"`
	Present   bool   `json:"present"`
	Path      string `json:"path,omitempty"`
	SizeBytes int64  `json:"size_bytes,omitempty"`
	Buildable bool   `json:"buildable"`
	Origin    string `json:"origin"` // built, pulled, imported
}

// VersionInfo is the body of GET /v1/version.
type VersionInfo struct {
	Version    string `json:"version"`
	APIVersion string `json:"api_version"`
	Accel      string `json:"accel"`
	Libvirt    string `json:"libvirt,omitempty"`
	// SSHIdentity is the host path of galed's private key, which every VM
	// trusts; `gale vm ssh` uses it unless told otherwise.
	SSHIdentity string `json:"ssh_identity,omitempty"`
}

// Check is one line of GET /v1/doctor.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

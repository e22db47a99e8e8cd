// Package api holds the wire types shared by galed's REST server and the Go
// client: request and response bodies, the error envelope and the paths.
// Everything is JSON over a unix socket; paths are versioned (/v1/...).
//
// Long work (VM create, delete, start, stop, restart; image pull, build,
// import) answers 202 Accepted with an Operation; its progress streams as
// server-sent events from OperationEventsPath, one JSON-encoded Event per
// "data:" line; a client that connects late first gets every event so far,
// and the stream ends after the event with Done set.
//
// Status codes: 200 for reads, exec and logs (logs are text/plain); 201 for a
// created network; 202 with an Operation for long work; 204 for a deleted
// network or image. Errors carry the Error envelope with a
// Code that maps one-to-one to a status (see the Code constants).
package api

import (
	"time"

	"github.com/galevm/gale/pkg/autoscale"
)

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
	ImagePath           = "/v1/images/{name}"
	ImagePullPath       = "/v1/images/pull"
	ImageBuildPath      = "/v1/images/{name}/build"
	ImageImportPath     = "/v1/images/import"
	ImageUploadPath     = "/v1/images/upload" // query: the ImportImageRequest fields
	ImagePrunePath      = "/v1/images/prune"
	DoctorPath          = "/v1/doctor"
	ParentsPath         = "/v1/parents"
	ParentPath          = "/v1/parents/{name}"
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
	CodeTimedOut     = "timed_out"    // 504: the work did not finish in time
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
	CloudInitNone    = "none" // the image has no cloud-init; readiness came from the agent or a port
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
	// Made says how the VM was made: MadeColdBoot or MadeClone ("" when
	// not recorded: VMs made before gale recorded it, or adopted).
	Made string `json:"made,omitempty"`
	// Parent is the saved parent a clone was restored from.
	Parent string `json:"parent,omitempty"`
	// Set is the scale set the VM is an instance of ("" for a VM of the
	// user's own). Instances are deleted through their set.
	Set string `json:"set,omitempty"`
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
	// ReadyPort, when set, is a guest TCP port: the VM is ready when it
	// accepts connections (for images without cloud-init or guest agent).
	ReadyPort int `json:"ready_port,omitempty"`
	// Force skips the admission check (host memory and disk).
	Force bool `json:"force,omitempty"`
	// Clone says whether the VM may be restored from a saved parent of its
	// model instead of booted: CloneAuto (default), CloneAlways, CloneNever.
	Clone string `json:"clone,omitempty"`
}

// Parent is a saved parent: a guest of one VM model booted until ready,
// then saved, that clones of the model are restored from.
type Parent struct {
	Name      string `json:"name"`
	Image     string `json:"image"`
	CPUs      int    `json:"cpus"`
	MemoryMiB int    `json:"memory_mib"`
	DiskBytes int64  `json:"disk_bytes"`
	Network   string `json:"network"`
	// UserData is the SHA-256 of the model's user-data.
	UserData string `json:"user_data_sha256"`
	// StateBytes and DiskUsedBytes are what the parent takes on the host's disk.
	StateBytes    int64     `json:"state_bytes"`
	DiskUsedBytes int64     `json:"disk_used_bytes"`
	BuiltAt       time.Time `json:"built_at"`
	BuildTime     Duration  `json:"build_time"`
	LastUsed      time.Time `json:"last_used"`
	Clones        []string  `json:"clones"`
}

// Values of CreateVMRequest.Clone.
const (
	// CloneAuto clones when a parent of the VM's model is already saved,
	// else boots (and saves no parent).
	CloneAuto = "auto"
	// CloneAlways saves a parent of the model first if there is none, then
	// clones; it boots only when cloning fails (the reason is a stage).
	CloneAlways = "always"
	// CloneNever always boots.
	CloneNever = "never"
)

// Values of VM.Made.
const (
	MadeColdBoot = "cold-boot"
	MadeClone    = "clone"
)

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
	// OpCancelled: the operation was cancelled (e.g. a create by a delete of
	// the same VM) and undid what it had done.
	OpCancelled = "cancelled"
)

// Operation is long-running work on one target.
type Operation struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`   // create, delete, start, stop, restart, reconcile, pull, build, import
	Target     string     `json:"target"` // a VM's name, or "image/<name>" for an image
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
	Status    string   `json:"status,omitempty"` // with Done: succeeded, failed or cancelled
	Error     string   `json:"error,omitempty"`
	// Detail carries extra lines on failure, e.g. the tail of cloud-init's output log.
	Detail string `json:"detail,omitempty"`
}

// Network modes.
const (
	NetworkNAT      = "nat"
	NetworkIsolated = "isolated"
	// NetworkOpen: isolated like NetworkIsolated (gale's own nftables rules),
	// but a scale set's load balancer on it is reachable from other hosts
	// and namespaces.
	NetworkOpen = "open"
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

// Image kinds: where an image comes from.
const (
	ImageKindBuild  = "build"  // a catalog recipe gale builds offline
	ImageKindPull   = "pull"   // a catalog entry for a published cloud image
	ImageKindImport = "import" // a local image: imported, or pulled from a URL
)

// Image is a template galed can create VMs from: a catalog entry (present
// on disk or not) or a local image.
type Image struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"` // build, pull or import
	OS          string `json:"os"`
	Description string `json:"description,omitempty"`
	Present     bool   `json:"present"`
	Path        string `json:"path,omitempty"`
	SizeBytes   int64  `json:"size_bytes,omitempty"` // on disk
	// Origin says how the file on disk was made: built, pulled, imported.
	Origin string `json:"origin,omitempty"`
	// Buildable: `gale image build` can make it (kind build).
	Buildable bool `json:"buildable"`
	// Error is why a catalog file could not be loaded (the entry is unusable).
	Error string `json:"error,omitempty"`
}

// ImageDetail is the body of GET /v1/images/{name}.
type ImageDetail struct {
	Image
	User        string `json:"user,omitempty"`
	Boot        string `json:"boot,omitempty"`
	CPUs        int    `json:"cpus,omitempty"`
	MemoryMiB   int    `json:"memory_mib,omitempty"`
	DiskBytes   int64  `json:"disk_bytes,omitempty"`
	VirtualSize int64  `json:"virtual_size,omitempty"`
	// File is the catalog file the entry comes from.
	File string `json:"file,omitempty"`
	// SourceURL and Checksum say where a pull comes from and how it is verified.
	SourceURL string `json:"source_url,omitempty"`
	Checksum  string `json:"checksum,omitempty"`
	// Readiness is how VMs from the image are judged ready.
	Readiness string `json:"readiness,omitempty"`
	// Record is the origin record of the file on disk (JSON object), if any.
	Record map[string]any `json:"record,omitempty"`
	// UsedBy are the VMs whose disks are overlays of this image.
	UsedBy []string `json:"used_by"`
}

// PullImageRequest is the body of POST /v1/images/pull. Either Name is a
// catalog entry with a source, or URL is given with a way to verify it
// (Digest, or ChecksumURL with Algorithm) and Name names the local image.
type PullImageRequest struct {
	Name        string `json:"name"`
	URL         string `json:"url,omitempty"`
	Digest      string `json:"digest,omitempty"` // sha256:<hex> or sha512:<hex>
	ChecksumURL string `json:"checksum_url,omitempty"`
	Algorithm   string `json:"algorithm,omitempty"`   // with ChecksumURL
	Format      string `json:"format,omitempty"`      // qcow2 (default) or raw
	Compression string `json:"compression,omitempty"` // none, gz, xz, zst; default from the URL
}

// ImportImageRequest is the body of POST /v1/images/import (Path set) and
// the query of POST /v1/images/upload (the image is the request body).
type ImportImageRequest struct {
	Name string `json:"name"`
	// Path is the absolute path of a file or block device on galed's host.
	// Callers other than root may only name files in galed's import area.
	Path string `json:"path,omitempty"`
	// Format of the source: raw, qcow2, vmdk, vpc, vhdx or vdi. Required for
	// uploads and raw sources; never guessed for a raw stream.
	Format string `json:"format,omitempty"`
	// Boot is the firmware: bios (default) or uefi.
	Boot string `json:"boot,omitempty"`
	// Prepare fixes what pre-flight finds, where it can.
	Prepare bool `json:"prepare,omitempty"`
	// NoPreflight skips the readiness report.
	NoPreflight bool `json:"no_preflight,omitempty"`
	// NoChecksum skips the sha256 of a source file (which reads all of
	// it, holes included, and can take longer than the conversion). A
	// stream is always hashed as it arrives.
	NoChecksum bool `json:"no_checksum,omitempty"`
	// ReadyPort is the TCP port that tells a VM from the image is ready
	// when the image has neither cloud-init nor a guest agent.
	ReadyPort int `json:"ready_port,omitempty"`
}

// PruneRequest is the body of POST /v1/images/prune.
type PruneRequest struct {
	// All also removes current images no VM uses (they can be pulled or
	// built again; imported ones cannot).
	All bool `json:"all,omitempty"`
	// DryRun reports what would be removed.
	DryRun bool `json:"dry_run,omitempty"`
}

// PruneResult is what prune removed (or would remove).
type PruneResult struct {
	Removed    []string `json:"removed"`
	FreedBytes int64    `json:"freed_bytes"`
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

// Scale set paths.
const (
	SetsPath           = "/v1/sets"
	SetPath            = "/v1/sets/{name}"
	SetScalePath       = "/v1/sets/{name}/scale"
	SetModelPath       = "/v1/sets/{name}/model" // POST: a new model version
	SetUpgradePath     = "/v1/sets/{name}/upgrade"
	SetInstancesPath   = "/v1/sets/{name}/instances"
	SetInstancePath    = "/v1/sets/{name}/instances/{instance}"
	SetInstanceActPath = "/v1/sets/{name}/instances/{instance}/{action}" // restart, reimage, protect, unprotect
	SetActivityPath    = "/v1/sets/{name}/activity"                      // ?after=ID&follow=true (server-sent events)
	SetAutoscalePath   = "/v1/sets/{name}/autoscale"                     // GET (?explain=true); PUT settings; POST ?enabled=true|false
	SetMetricsPath     = "/v1/sets/{name}/metrics"                       // ?since=10m
	EventsPath         = "/v1/events"                                    // ?kind=set,vm (server-sent events)
)

// SetModel is what every instance of a scale set is made from: one version
// of the set's model.
type SetModel struct {
	Image     string   `json:"image"`
	CPUs      int      `json:"cpus,omitempty"`
	MemoryMiB int      `json:"memory_mib,omitempty"`
	DiskBytes int64    `json:"disk_bytes,omitempty"`
	Network   string   `json:"network,omitempty"`
	UserData  []byte   `json:"user_data,omitempty"`
	SSHKeys   []string `json:"ssh_keys,omitempty"`
	ReadyPort int      `json:"ready_port,omitempty"`
}

// LBRule is one load-balancer rule of a set: connections to Addr:FrontPort
// go to a healthy instance's BackPort.
type LBRule struct {
	Proto     string `json:"proto"` // tcp (default) or udp
	Addr      string `json:"addr,omitempty"`
	FrontPort int    `json:"front_port"`
	BackPort  int    `json:"back_port"`
	// Mode: hash (5-tuple, default), sourceip (affinity) or roundrobin.
	Mode string `json:"mode,omitempty"`
}

// Repair modes of SetPolicy.Repair.
const (
	RepairNone    = "none"
	RepairRestart = "restart"
	RepairReimage = "reimage"
	RepairReplace = "replace"
)

// Upgrade modes of UpgradePolicy.Mode.
const (
	UpgradeManual    = "manual"
	UpgradeAutomatic = "automatic"
	UpgradeRolling   = "rolling"
)

// Scale-in policies of SetPolicy.ScaleIn.
const (
	ScaleInDefault = "default" // unhealthy first, then the highest ordinal
	ScaleInOldest  = "oldest"
	ScaleInNewest  = "newest"
)

// UpgradePolicy says how instances move to a new model version.
type UpgradePolicy struct {
	Mode string `json:"mode"` // manual (default), automatic or rolling
	// Batch is how many instances are replaced at a time: a count ("2") or
	// a share of the capacity ("34%"). Default 20%.
	Batch string `json:"batch,omitempty"`
	// MaxUnhealthyUpgraded is the share (%) of a batch's new instances that
	// may fail health before the batch is rolled back and the upgrade
	// stopped. Default 0: any failure rolls back.
	MaxUnhealthyUpgraded int `json:"max_unhealthy_upgraded,omitempty"`
	// MaxUnhealthy is the share (%) of the set that may be unhealthy before
	// a batch starts; above it the upgrade waits, then stops. Default 20.
	MaxUnhealthy int `json:"max_unhealthy,omitempty"`
	// Pause between batches.
	Pause Duration `json:"pause,omitempty"`
	// Surge is how many extra instances an upgrade may make before it
	// removes old ones (make before break). 0 replaces in place.
	Surge int `json:"surge,omitempty"`
}

// SetPolicy holds a set's policies.
type SetPolicy struct {
	// Repair: none (default), restart, reimage or replace.
	Repair string `json:"repair,omitempty"`
	// Grace after an instance is made or repaired before it may be repaired.
	Grace Duration `json:"grace,omitempty"`
	// ScaleIn: default, oldest or newest.
	ScaleIn string        `json:"scale_in,omitempty"`
	Upgrade UpgradePolicy `json:"upgrade"`
	// Drain: how long an instance leaving the load balancer keeps its
	// established connections before it is deleted (default 30s).
	Drain Duration `json:"drain,omitempty"`
	// TerminateNotice: when set, an instance to be deleted first runs the
	// guest hook /var/lib/gale/hooks/terminate, for at most this long.
	TerminateNotice Duration `json:"terminate_notice,omitempty"`
	// MaxCapacity bounds Capacity (0: only the host's memory bounds it).
	MaxCapacity int `json:"max_capacity,omitempty"`
}

// CreateSetRequest is the body of POST /v1/sets.
type CreateSetRequest struct {
	Name     string    `json:"name"`
	Model    SetModel  `json:"model"`
	Capacity int       `json:"capacity"`
	LB       []LBRule  `json:"lb,omitempty"`
	Probe    string    `json:"probe,omitempty"` // e.g. "http:80/,interval=2s"; see pkg/probe
	Policy   SetPolicy `json:"policy"`
}

// ScaleRequest is the body of POST /v1/sets/{name}/scale.
type ScaleRequest struct {
	Capacity int `json:"capacity"`
}

// UpdateSetRequest is the body of POST /v1/sets/{name}/model: fields set
// change the latest model into a new version; policy fields replace the
// set's policy when Policy is not nil.
type UpdateSetRequest struct {
	Image     string     `json:"image,omitempty"`
	CPUs      int        `json:"cpus,omitempty"`
	MemoryMiB int        `json:"memory_mib,omitempty"`
	UserData  []byte     `json:"user_data,omitempty"`
	Policy    *SetPolicy `json:"policy,omitempty"`
}

// UpgradeRequest is the body of POST /v1/sets/{name}/upgrade. Zero fields
// take the set's upgrade policy.
type UpgradeRequest struct {
	Cancel bool          `json:"cancel,omitempty"`
	Policy UpgradePolicy `json:"policy"`
}

// Set states.
const (
	SetActive    = "active"
	SetUpgrading = "upgrading"
	SetDeleting  = "deleting"
)

// ScaleSet is a set as galed reports it.
type ScaleSet struct {
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Version   int       `json:"version"` // latest model version
	Model     SetModel  `json:"model"`
	Capacity  int       `json:"capacity"`
	Instances int       `json:"instances"`
	Healthy   int       `json:"healthy"`
	Latest    int       `json:"latest"` // instances on the latest version
	LB        []LBRule  `json:"lb"`     // with their addresses resolved
	Probe     string    `json:"probe,omitempty"`
	Policy    SetPolicy `json:"policy"`
	CreatedAt time.Time `json:"created_at"`
	// Upgrade is the upgrade in progress or the last one, if any.
	Upgrade *UpgradeStatus `json:"upgrade,omitempty"`
}

// UpgradeStatus is the progress of a set's upgrade.
type UpgradeStatus struct {
	To        int       `json:"to"` // model version
	State     string    `json:"state"`
	Batch     int       `json:"batch"` // batches done
	Done      int       `json:"done"`
	Remaining int       `json:"remaining"`
	Error     string    `json:"error,omitempty"`
	StartedAt time.Time `json:"started_at"`
}

// Health of a set's instance.
const (
	HealthUnknown   = "unknown" // not probed enough yet
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
	HealthCreating  = "creating"
	HealthDraining  = "draining"
)

// Instance protections.
const (
	ProtectScaleIn    = "scale-in"    // never removed by scale-in
	ProtectSetActions = "set-actions" // never touched by repairs, upgrades or scale-in
)

// SetInstance is one instance of a set.
type SetInstance struct {
	Name      string    `json:"name"`
	Ordinal   int       `json:"ordinal"`
	Version   int       `json:"version"`
	Latest    bool      `json:"latest"`
	State     string    `json:"state"` // the VM's state
	Health    string    `json:"health"`
	Detail    string    `json:"detail,omitempty"` // why unhealthy
	Protect   []string  `json:"protect,omitempty"`
	Address   string    `json:"address,omitempty"`
	Made      string    `json:"made,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// ProtectRequest is the body of POST .../instances/{instance}/protect.
type ProtectRequest struct {
	ScaleIn    bool `json:"scale_in,omitempty"`
	SetActions bool `json:"set_actions,omitempty"`
}

// Activity triggers.
const (
	TriggerUser       = "user"
	TriggerController = "controller" // capacity differs from desired
	TriggerProbe      = "probe"
	TriggerEvent      = "event" // the VM stopped or vanished
	TriggerPolicy     = "policy"
)

// Activity results.
const (
	ResultStarted   = "started"
	ResultSucceeded = "succeeded"
	ResultFailed    = "failed"
	ResultRefused   = "refused"
	ResultSkipped   = "skipped"
)

// Activity is one record of a set's activity log: a decision of its
// controller, or an action a user asked for, and its result.
type Activity struct {
	ID       int64             `json:"id"`
	Set      string            `json:"set"`
	At       time.Time         `json:"at"`
	Trigger  string            `json:"trigger"`
	Action   string            `json:"action"`
	Instance string            `json:"instance,omitempty"`
	Reason   string            `json:"reason"`
	Result   string            `json:"result"`
	Duration Duration          `json:"duration,omitempty"`
	Values   map[string]string `json:"values,omitempty"`
}

// BusEvent is one event of the API's global stream (GET /v1/events).
type BusEvent struct {
	Kind string    `json:"kind"` // set, vm, ...
	Name string    `json:"name"` // the object's name
	At   time.Time `json:"at"`
	// Activity is set for kind "set".
	Activity *Activity `json:"activity,omitempty"`
	Message  string    `json:"message,omitempty"`
}

// Activity trigger of the autoscaler's decisions.
const TriggerAutoscale = "autoscale"

// AutoscaleView is the body of GET /v1/sets/{name}/autoscale.
type AutoscaleView struct {
	Settings autoscale.Settings `json:"settings"`
	State    autoscale.State    `json:"state"`
	// Last is the autoscaler's latest evaluation in this galed.
	Last *autoscale.Decision `json:"last,omitempty"`
	// Explain is an evaluation made for the request (?explain=true):
	// what would happen now, and why. Nothing is changed.
	Explain *autoscale.Decision `json:"explain,omitempty"`
}

// MetricSummary summarises one metric of one instance over a period.
type MetricSummary struct {
	Last    float64 `json:"last"`
	Avg     float64 `json:"avg"`
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	Samples int     `json:"samples"`
}

// InstanceMetrics are one instance's metrics over a period.
type InstanceMetrics struct {
	Name    string                   `json:"name"`
	Metrics map[string]MetricSummary `json:"metrics"`
}

// SetMetrics is the body of GET /v1/sets/{name}/metrics.
type SetMetrics struct {
	Since     Duration          `json:"since"`
	Instances []InstanceMetrics `json:"instances"`
	// Set is the instances' average of each metric's average.
	Set map[string]float64 `json:"set"`
}

// Metrics paths.
const (
	PrometheusPath = "/metrics"    // Prometheus text format
	MetricsPath    = "/v1/metrics" // POST a custom metric
)

// MetricPut is the body of POST /v1/metrics: one sample of a VM's custom
// metric (named custom.<name>), which autoscale rules may use.
type MetricPut struct {
	VM     string    `json:"vm"`
	Metric string    `json:"metric"`
	Value  float64   `json:"value"`
	At     time.Time `json:"at,omitzero"`
}

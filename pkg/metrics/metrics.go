// Package metrics keeps recent per-VM metrics in memory for autoscaling.
//
// A Collector polls the hypervisor with one bulk stats call per interval
// (hypervisor.Driver.AllStats), turns the cumulative counters into rates
// and adds them to a Store. The Store keeps each series, keyed by
// (object, metric) such as ("vm/web-0", "cpu_percent"), in a bounded ring
// of samples no older than its retention, and can be saved to and loaded
// from a file so that a restarted galed keeps its history.
package metrics

import "time"

// Sample is one value of a series at a time.
type Sample struct {
	At    time.Time
	Value float64
}

// LBConnections is the number of open connections a set's load balancer
// sent to an instance (recorded by the set's controller, from conntrack).
const LBConnections = "lb_connections"

// Metric names gale collects for every running VM.
const (
	// CPUPercent is the guest's CPU use over the last interval, 0..100,
	// relative to all its vCPUs (100 is every vCPU busy).
	CPUPercent = "cpu_percent"
	// NetInBytes is what the guest received, in bytes per second, summed
	// over its interfaces.
	NetInBytes = "net_in_bytes_per_s"
	// NetOutBytes is what the guest sent, in bytes per second.
	NetOutBytes = "net_out_bytes_per_s"
	// DiskReadBytes is what the guest read from its disks, in bytes per second.
	DiskReadBytes = "disk_read_bytes_per_s"
	// DiskWriteBytes is what the guest wrote to its disks, in bytes per second.
	DiskWriteBytes = "disk_write_bytes_per_s"
	// MemoryUsedBytes is the guest's memory in use (including its page
	// cache), in bytes, as its balloon driver reports it; absent for guests
	// that do not report memory statistics.
	MemoryUsedBytes = "memory_used_bytes"
)

// VMPrefix starts the object name of every VM series.
const VMPrefix = "vm/"

// VMObject returns the object name of the VM whose domain is name: "vm/<name>".
func VMObject(name string) string { return VMPrefix + name }

package metrics

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// help texts of the metrics a VM has.
var help = map[string]string{
	CPUPercent:      "CPU use of the VM's vCPUs, percent",
	NetInBytes:      "bytes per second received by the VM's interfaces",
	NetOutBytes:     "bytes per second sent by the VM's interfaces",
	DiskReadBytes:   "bytes per second read from the VM's disks",
	DiskWriteBytes:  "bytes per second written to the VM's disks",
	MemoryUsedBytes: "memory in use in the guest, as its balloon driver reports it",
	LBConnections:   "open connections a scale set's load balancer sent to the instance",
}

// promCollector exposes the latest sample of every VM series as a gauge
// gale_vm_<metric>{vm="..."}; custom metrics (any other name) as
// gale_vm_custom{vm="...",metric="..."}.
type promCollector struct{ s *Store }

// Prometheus returns a prometheus.Collector of the store's latest values.
// Nothing is computed per scrape beyond reading the rings' last samples.
func (s *Store) Prometheus() prometheus.Collector { return promCollector{s} }

var customDesc = prometheus.NewDesc("gale_vm_custom", "custom metric of a VM (gale metric put, or read from the guest)", []string{"vm", "metric"}, nil)

func desc(metric string) *prometheus.Desc {
	return prometheus.NewDesc("gale_vm_"+metric, help[metric], []string{"vm"}, nil)
}

// Describe sends nothing: the collector is unchecked (the custom metrics
// are not known in advance).
func (promCollector) Describe(chan<- *prometheus.Desc) {}

// Collect sends one gauge per VM series.
func (c promCollector) Collect(ch chan<- prometheus.Metric) {
	for _, obj := range c.s.Objects(VMPrefix) {
		vm := strings.TrimPrefix(obj, VMPrefix)
		for _, metric := range c.s.MetricsOf(obj) {
			last, ok := c.s.Last(obj, metric)
			if !ok {
				continue
			}
			if _, known := help[metric]; known {
				ch <- prometheus.MustNewConstMetric(desc(metric), prometheus.GaugeValue, last.Value, vm)
			} else {
				ch <- prometheus.MustNewConstMetric(customDesc, prometheus.GaugeValue, last.Value, vm, metric)
			}
		}
	}
}

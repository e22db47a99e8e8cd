package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPrometheusExposesLatestValues(t *testing.T) {
	s := NewStore(time.Hour)
	now := time.Now()
	s.Add(VMObject("web-0"), CPUPercent, now.Add(-time.Second), 10)
	s.Add(VMObject("web-0"), CPUPercent, now, 42.5)
	s.Add(VMObject("web-1"), "custom.queue_depth", now, 7)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Prometheus())
	want := `
# HELP gale_vm_cpu_percent CPU use of the VM's vCPUs, percent
# TYPE gale_vm_cpu_percent gauge
gale_vm_cpu_percent{vm="web-0"} 42.5
# HELP gale_vm_custom custom metric of a VM (gale metric put, or read from the guest)
# TYPE gale_vm_custom gauge
gale_vm_custom{metric="custom.queue_depth",vm="web-1"} 7
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

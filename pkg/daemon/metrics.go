package daemon

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/metrics"
	"github.com/galevm/gale/pkg/scaleset"
	"github.com/galevm/gale/pkg/server/httpapi"
	"github.com/galevm/gale/pkg/vm"
)

// metricRoutes serves GET /metrics (Prometheus text format: every VM's
// latest metrics, the sets, galed's own process) and POST /v1/metrics
// (a custom metric of a VM, for autoscale rules).
type metricRoutes struct {
	store *metrics.Store
	vms   *vm.Service
	reg   *prometheus.Registry
}

func newMetricRoutes(store *metrics.Store, vms *vm.Service, sets *scaleset.Service) metricRoutes {
	reg := prometheus.NewRegistry()
	reg.MustRegister(store.Prometheus(), sets.Prometheus(),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return metricRoutes{store: store, vms: vms, reg: reg}
}

func (m metricRoutes) Routes(r httpapi.Router) {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	r.Handle("GET "+api.PrometheusPath, func(w http.ResponseWriter, r *http.Request) error {
		h.ServeHTTP(w, r)
		return nil
	})
	r.Handle("POST "+api.MetricsPath, func(w http.ResponseWriter, r *http.Request) error {
		var req api.MetricPut
		if err := httpapi.Decode(r, &req, false); err != nil {
			return err
		}
		if !strings.HasPrefix(req.Metric, scaleset.CustomPrefix) || len(req.Metric) > 100 {
			return fmt.Errorf("%w: metric %q: custom metrics are named %s<name> (at most 100 characters)", httpapi.ErrInvalidBody, req.Metric, scaleset.CustomPrefix)
		}
		if _, err := m.vms.Get(r.Context(), req.VM); err != nil {
			return err
		}
		at := req.At
		if at.IsZero() {
			at = time.Now()
		}
		m.store.Add(metrics.VMObject(req.VM), req.Metric, at, req.Value)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

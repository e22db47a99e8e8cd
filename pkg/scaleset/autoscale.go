package scaleset

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/autoscale"
	"github.com/galevm/gale/pkg/metrics"
	"github.com/galevm/gale/pkg/store"
)

// KnownMetrics are the metrics autoscale rules may name: what galed
// collects for every instance.
var KnownMetrics = []string{metrics.CPUPercent, metrics.NetInBytes, metrics.NetOutBytes,
	metrics.DiskReadBytes, metrics.DiskWriteBytes, metrics.MemoryUsedBytes, metrics.LBConnections}

// CustomPrefix begins the names of custom metrics (gale metric put).
const CustomPrefix = "custom."

func knownMetric(m string) bool {
	return slices.Contains(KnownMetrics, m) || strings.HasPrefix(m, CustomPrefix) && len(m) > len(CustomPrefix)
}

// reader gives autoscale the instances' samples from the metrics store.
type reader struct{ m *metrics.Store }

func (r reader) Samples(instance, metric string, from, to time.Time) []autoscale.Sample {
	in := r.m.Range(metrics.VMObject(instance), metric, from, to)
	out := make([]autoscale.Sample, len(in))
	for i, s := range in {
		out[i] = autoscale.Sample{At: s.At, Value: s.Value}
	}
	return out
}

// SetAutoscale replaces the set's autoscale settings after validating
// them (unknown metrics, bad windows, bad schedules... are refused with the
// field named). The controller applies them from its next pass.
func (s *Service) SetAutoscale(ctx context.Context, name string, settings autoscale.Settings) (api.AutoscaleView, error) {
	if s.cfg.Metrics == nil {
		return api.AutoscaleView{}, fmt.Errorf("%w: this galed collects no metrics", ErrInvalid)
	}
	if err := settings.Validate(knownMetric); err != nil {
		return api.AutoscaleView{}, fmt.Errorf("%w: autoscale: %w", ErrInvalid, err)
	}
	if _, _, err := s.live(ctx, name); err != nil {
		return api.AutoscaleView{}, err
	}
	if err := s.updateSpec(ctx, name, func(sp *spec) error {
		sp.Autoscale = &settings
		return nil
	}); err != nil {
		return api.AutoscaleView{}, err
	}
	s.retainFor(ctx)
	s.record(ctx, name, api.Activity{Trigger: api.TriggerUser, Action: "autoscale-settings", Result: api.ResultSucceeded,
		Reason: fmt.Sprintf("%d profiles, enabled %v", len(settings.Profiles), settings.Enabled)})
	s.wake(name)
	return s.Autoscale(ctx, name, false)
}

// EnableAutoscale turns the set's autoscale settings on or off.
func (s *Service) EnableAutoscale(ctx context.Context, name string, on bool) (api.AutoscaleView, error) {
	if err := s.updateSpec(ctx, name, func(sp *spec) error {
		if sp.Autoscale == nil || len(sp.Autoscale.Profiles) == 0 {
			return fmt.Errorf("%w: set %q has no autoscale settings: give them with `gale set autoscale %s -f rules.yaml` or the --cpu-out one-liner", ErrConflict, name, name)
		}
		sp.Autoscale.Enabled = on
		return nil
	}); err != nil {
		return api.AutoscaleView{}, err
	}
	s.record(ctx, name, api.Activity{Trigger: api.TriggerUser, Action: "autoscale-settings", Result: api.ResultSucceeded,
		Reason: fmt.Sprintf("autoscale enabled %v", on)})
	s.wake(name)
	return s.Autoscale(ctx, name, false)
}

// Autoscale returns the set's settings, state and the latest decision;
// with explain, also what an evaluation now would decide (nothing is
// changed).
func (s *Service) Autoscale(ctx context.Context, name string, explain bool) (api.AutoscaleView, error) {
	_, sp, err := s.row(ctx, name)
	if err != nil {
		return api.AutoscaleView{}, err
	}
	v := api.AutoscaleView{State: sp.AutoState}
	if sp.Autoscale != nil {
		v.Settings = *sp.Autoscale
	}
	if c := s.existing(name); c != nil {
		c.mu.Lock()
		v.Last = c.lastDecision
		c.mu.Unlock()
	}
	if explain && s.cfg.Metrics != nil {
		var members []member
		if c := s.existing(name); c != nil {
			members = c.snapshot()
		}
		d := s.evaluate(sp, members, time.Now(), true)
		v.Explain = &d
	}
	return v, nil
}

// evaluate runs the autoscaler over the set's serving instances. With
// force, disabled settings are evaluated as if enabled (for explain).
func (s *Service) evaluate(sp spec, members []member, now time.Time, force bool) autoscale.Decision {
	settings := autoscale.Settings{}
	if sp.Autoscale != nil {
		settings = *sp.Autoscale
	}
	if force {
		settings.Enabled = true
	}
	var names []string
	for _, m := range members {
		if m.active() && m.Health != api.HealthCreating && m.VM != nil && m.VM.State == api.StateRunning {
			names = append(names, m.Name)
		}
	}
	return autoscale.Evaluate(settings, autoscale.Input{Now: now, Capacity: sp.Capacity, Instances: names,
		Data: reader{s.cfg.Metrics}, State: sp.AutoState})
}

// updateSpec applies fn to the set's stored spec in one transaction.
func (s *Service) updateSpec(ctx context.Context, name string, fn func(*spec) error) error {
	_, err := s.cfg.Store.UpdateSet(ctx, name, func(r *store.Set) (*store.SetModel, error) {
		cur, err := decodeSpec(*r)
		if err != nil {
			return nil, err
		}
		if err := fn(&cur); err != nil {
			return nil, err
		}
		r.Spec = mustJSON(cur)
		return nil, nil
	})
	if err != nil && strings.Contains(err.Error(), store.ErrNotFound.Error()) {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return err
}

func (s *Service) wake(name string) {
	if c := s.existing(name); c != nil {
		c.wake()
	}
}

// retainFor keeps enough metric history for the longest autoscale window
// in use (at least an hour).
func (s *Service) retainFor(ctx context.Context) {
	if s.cfg.Metrics == nil {
		return
	}
	longest := time.Hour
	rows, err := s.cfg.Store.ListSets(ctx)
	if err != nil {
		return
	}
	for _, r := range rows {
		sp, err := decodeSpec(r)
		if err != nil || sp.Autoscale == nil {
			continue
		}
		for _, p := range sp.Autoscale.Profiles {
			for _, rule := range p.Rules {
				longest = max(longest, rule.WithDefaults().TimeWindow.Std())
			}
		}
	}
	if longest > s.cfg.Metrics.Retention() {
		s.cfg.Metrics.SetRetention(longest)
	}
}

// autoscale evaluates the set's autoscale settings and applies a decision
// to act (the capacity changes; converge does the rest). Decisions are
// recorded; decisions to do nothing only when their kind changes or a
// minute has passed, so the log says why nothing happens without filling.
func (c *controller) autoscale(ctx context.Context, sp spec, members []member) {
	if sp.Autoscale == nil || !sp.Autoscale.Enabled || c.s.cfg.Metrics == nil {
		return
	}
	now := time.Now()
	d := c.s.evaluate(sp, members, now, false)
	c.mu.Lock()
	c.lastDecision = &d
	kind := noDigits(d.Reason)
	quiet := d.Action == autoscale.ActionNone && kind == c.lastNoneKind && now.Sub(c.lastNoneAt) < time.Minute
	if d.Action == autoscale.ActionNone && !quiet {
		c.lastNoneKind, c.lastNoneAt = kind, now
	}
	c.mu.Unlock()
	values := map[string]string{"profile": d.Profile, "from": strconv.Itoa(d.From), "to": strconv.Itoa(d.To)}
	for _, r := range d.Rules {
		if r.HasData {
			values[fmt.Sprintf("rule%d", r.Rule)] = strconv.FormatFloat(math.Round(r.Value*100)/100, 'f', -1, 64)
		}
	}
	if d.Action == autoscale.ActionNone {
		if !quiet {
			c.s.record(ctx, c.name, api.Activity{Trigger: api.TriggerAutoscale, Action: "autoscale", Result: api.ResultSkipped, Reason: d.Reason, Values: values})
		}
		return
	}
	err := c.s.updateSpec(ctx, c.name, func(cur *spec) error {
		if cur.Capacity != d.From {
			return fmt.Errorf("capacity changed meanwhile (%d, not %d)", cur.Capacity, d.From)
		}
		cur.Capacity, cur.AutoState = d.To, d.State
		return nil
	})
	result := api.ResultSucceeded
	reason := d.Reason
	if err != nil {
		result, reason = api.ResultFailed, reason+": "+err.Error()
	}
	c.s.record(ctx, c.name, api.Activity{Trigger: api.TriggerAutoscale, Action: d.Action, Result: result, Reason: reason, Values: values})
	c.wake()
}

// recordConnections samples, once per metrics interval, the open
// connections the set's load balancer sent to each serving instance (one
// conntrack dump per rule), as the instance's lb_connections.
func (c *controller) recordConnections(sp spec, members []member) {
	if c.s.cfg.Metrics == nil || c.s.cfg.Balancer == nil || len(sp.LB) == 0 {
		return
	}
	now := time.Now()
	c.mu.Lock()
	due := now.Sub(c.lastConnSample) >= c.s.cfg.Metrics.Interval()
	if due {
		c.lastConnSample = now
	}
	c.mu.Unlock()
	if !due {
		return
	}
	total := map[string]int{}
	for _, r := range sp.LB {
		by, err := c.s.cfg.Balancer.ConnectionsByBackend(r.BackPort)
		if err != nil {
			return
		}
		for _, m := range members {
			if a, err := netip.ParseAddr(m.Address); err == nil {
				total[m.Name] += by[a]
			}
		}
	}
	for _, m := range members {
		if m.Health == api.HealthHealthy || m.Health == api.HealthDraining {
			c.s.cfg.Metrics.Add(metrics.VMObject(m.Name), metrics.LBConnections, now, float64(total[m.Name]))
		}
	}
}

// noDigits is s with its digits dropped: the kind of a reason.
func noDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, s)
}

// Metrics summarises the set's instances' metrics over the last since.
func (s *Service) Metrics(ctx context.Context, name string, since time.Duration) (api.SetMetrics, error) {
	if s.cfg.Metrics == nil {
		return api.SetMetrics{}, fmt.Errorf("%w: this galed collects no metrics", ErrInvalid)
	}
	if since <= 0 {
		since = 10 * time.Minute
	}
	insts, err := s.Instances(ctx, name)
	if err != nil {
		return api.SetMetrics{}, err
	}
	now := time.Now()
	out := api.SetMetrics{Since: api.Duration(since), Instances: []api.InstanceMetrics{}, Set: map[string]float64{}}
	counts := map[string]int{}
	for _, in := range insts {
		im := api.InstanceMetrics{Name: in.Name, Metrics: map[string]api.MetricSummary{}}
		for _, m := range s.cfg.Metrics.MetricsOf(metrics.VMObject(in.Name)) {
			samples := s.cfg.Metrics.Range(metrics.VMObject(in.Name), m, now.Add(-since), now.Add(time.Second))
			if len(samples) == 0 {
				continue
			}
			sum := api.MetricSummary{Last: samples[len(samples)-1].Value, Min: math.Inf(1), Max: math.Inf(-1), Samples: len(samples)}
			for _, x := range samples {
				sum.Avg += x.Value
				sum.Min, sum.Max = min(sum.Min, x.Value), max(sum.Max, x.Value)
			}
			sum.Avg /= float64(len(samples))
			im.Metrics[m] = sum
			out.Set[m] += sum.Avg
			counts[m]++
		}
		out.Instances = append(out.Instances, im)
	}
	for m, n := range counts {
		out.Set[m] /= float64(n)
	}
	return out, nil
}

var (
	setCapacityDesc  = prometheus.NewDesc("gale_set_capacity", "desired instances of a scale set", []string{"set"}, nil)
	setInstancesDesc = prometheus.NewDesc("gale_set_instances", "instances of a scale set", []string{"set"}, nil)
	setHealthyDesc   = prometheus.NewDesc("gale_set_healthy", "healthy instances of a scale set (in its load balancer)", []string{"set"}, nil)
)

// promSets exposes the sets' capacity and instance counts.
type promSets struct{ s *Service }

// Prometheus returns a prometheus.Collector of the sets' capacity,
// instances and healthy instances.
func (s *Service) Prometheus() prometheus.Collector { return promSets{s} }

func (p promSets) Describe(ch chan<- *prometheus.Desc) {
	ch <- setCapacityDesc
	ch <- setInstancesDesc
	ch <- setHealthyDesc
}

func (p promSets) Collect(ch chan<- prometheus.Metric) {
	sets, err := p.s.List(context.Background())
	if err != nil {
		return
	}
	for _, set := range sets {
		ch <- prometheus.MustNewConstMetric(setCapacityDesc, prometheus.GaugeValue, float64(set.Capacity), set.Name)
		ch <- prometheus.MustNewConstMetric(setInstancesDesc, prometheus.GaugeValue, float64(set.Instances), set.Name)
		ch <- prometheus.MustNewConstMetric(setHealthyDesc, prometheus.GaugeValue, float64(set.Healthy), set.Name)
	}
}

//go:build e2e

package e2e

import (
	"strings"
	"time"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/autoscale"
)

// autoscaleCPU: a set of the web model (its parent saved by sets_web, or
// made here) with the CPU one-liner (out above 80%, in below 40%), min 1,
// max 2, a 20 s window of 5 s grains and a 20 s cooldown, turned on once
// its instance idles. Idle, it stays at 1; a busy loop in its instance
// scales it out;
// stopping it scales it back in after the cooldown; each decision is in
// the activity log with the numbers seen; a user's scale is refused while
// autoscale is on.
func autoscaleCPU(s *S) {
	s.Watch("auto-0")
	s.Watch("auto-1")
	r := s.Gale("set", "create", "auto", "--image", "debian-12", "--cloud-init", "cloudinit/web-server.yaml",
		"--memory", "1G", "--disk", "4G", "--capacity", "1", "--probe", "http:80/,interval=2s,timeout=1500ms,healthy=1",
		"--timeout", "8m")
	if !s.Check(r.Code == 0, "set create auto: %s", r) {
		return
	}
	defer s.Gale("set", "delete", "auto", "--timeout", "3m")
	// A restored clone is busy for a while under TCG; wait until the
	// instance idles, so the scale-out below is the busy loop's doing.
	settled := Eventually(4*time.Minute, 5*time.Second, func() bool {
		m := decode[api.SetMetrics](s, s.Must("set", "metrics", "auto", "--since", "20s", "-o", "json"))
		cpu, ok := m.Set["cpu_percent"]
		return ok && cpu < 35
	})
	s.Check(settled, "the idle instance never settled under 35%% CPU: %s", s.Gale("set", "metrics", "auto", "--since", "20s"))
	s.Expect("autoscale one-liner", 0, "set", "autoscale", "auto", "--cpu-out", "80", "--cpu-in", "40", "--min", "1", "--max", "2",
		"--window", "20s", "--grain", "5s", "--cooldown", "20s")
	refused := s.Gale("set", "scale", "auto", "3")
	s.Check(refused.Code == 4 && refused.Has("--disable"), "scale of an autoscaled set: %s", refused)
	time.Sleep(25 * time.Second)
	idle := decode[api.ScaleSet](s, s.Must("set", "show", "auto", "-o", "json"))
	s.Check(idle.Capacity == 1, "scaled while idle: capacity %d\n%s", idle.Capacity, s.Gale("set", "activity", "auto"))

	start := time.Now()
	s.guest("auto-0", "start a busy loop", "nohup timeout 300 sh -c 'while :; do :; done' >/dev/null 2>&1 & echo started")
	out := Eventually(3*time.Minute, 2*time.Second, func() bool {
		set := decode[api.ScaleSet](s, s.Must("set", "show", "auto", "-o", "json"))
		return set.Capacity == 2 && set.Healthy == 2
	})
	s.Check(out, "not scaled out under load: %s\n%s", s.Gale("set", "autoscale", "auto", "--explain"), s.Gale("set", "activity", "auto"))
	s.Logf("busy loop to 2 healthy instances: %s", time.Since(start).Round(time.Second))
	prom := s.Gale("metric", "show")
	s.Check(prom.Code == 0 && prom.Has(`gale_vm_cpu_percent{vm="auto-0"}`) && prom.Has(`gale_set_capacity{set="auto"} 2`),
		"GET /metrics lacks the instance's CPU or the set's capacity: %s", prom)
	s.Expect("put a custom metric", 0, "metric", "put", "auto-0", "custom.queue_depth", "42")
	m := decode[api.SetMetrics](s, s.Must("set", "metrics", "auto", "-o", "json"))
	s.Check(m.Set["custom.queue_depth"] == 42, "custom metric in set metrics: %+v", m.Set)

	// [:] keeps pkill from matching this command's own shell.
	s.guest("auto-0", "stop the busy loop", "pkill -f 'while [:]'; echo stopped")
	stopped := time.Now()
	in := Eventually(3*time.Minute, 2*time.Second, func() bool {
		set := decode[api.ScaleSet](s, s.Must("set", "show", "auto", "-o", "json"))
		return set.Capacity == 1 && set.Instances == 1
	})
	s.Check(in, "not scaled in after the load stopped: %s\n%s", s.Gale("set", "autoscale", "auto", "--explain"), s.Gale("set", "activity", "auto"))
	s.Logf("load stopped to 1 instance: %s", time.Since(stopped).Round(time.Second))

	acts := decode[[]api.Activity](s, s.Must("set", "activity", "auto", "-o", "json"))
	var sawOut, sawIn bool
	for _, a := range acts {
		if a.Trigger != api.TriggerAutoscale || a.Result != api.ResultSucceeded {
			continue
		}
		sawOut = sawOut || a.Action == autoscale.ActionScaleOut && strings.Contains(a.Reason, "cpu_percent")
		sawIn = sawIn || a.Action == autoscale.ActionScaleIn && strings.Contains(a.Reason, "cpu_percent")
	}
	s.Check(sawOut && sawIn, "activity lacks the explained scale-out and scale-in: %s", s.Gale("set", "activity", "auto"))
	show := s.Gale("set", "autoscale", "auto", "--show")
	s.Check(show.Code == 0 && show.Has("cpu_percent"), "autoscale --show: %s", show)
	s.Expect("disable", 0, "set", "autoscale", "auto", "--disable")
	s.Expect("scale after disable", 0, "set", "scale", "auto", "1")
}

//go:build e2e

package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/client"
	"github.com/galevm/gale/pkg/lb"
)

// frontend is the web set's load-balancer frontend: the default network's
// host address, port 8080.
var frontend = "http://" + bridgeIP + ":8080/"

// setArgs creates set web: three clones of the web-server model behind the
// frontend, probed every second, replaced when unhealthy for 5 s.
var setArgs = []string{"set", "create", "web", "--image", "debian-12", "--cloud-init", "cloudinit/web-server.yaml",
	"--memory", "1G", "--disk", "4G", "--capacity", "3", "--lb", "8080:80", "--lb-mode", "roundrobin",
	"--probe", "http:80/,interval=2s,timeout=1500ms,healthy=1,unhealthy=2", "--repair", "replace", "--grace", "5s",
	"--drain", "2s", "--timeout", "10m"}

var pageName = regexp.MustCompile(`Hello (?:v2 )?from ([a-z0-9-]+)`)

// hit fetches the frontend once on a new connection and returns the
// instance that answered ("" on failure, with the error).
func hit() (string, error) {
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(frontend)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	m := pageName.FindStringSubmatch(string(b))
	if resp.StatusCode != http.StatusOK || m == nil {
		return "", &httpError{resp.StatusCode, string(b)}
	}
	return m[1], nil
}

type httpError struct {
	code int
	body string
}

func (e *httpError) Error() string { return http.StatusText(e.code) + ": " + e.body }

// spread hits the frontend n times and counts the answers per instance.
func spread(n int) (map[string]int, int) {
	seen := map[string]int{}
	fails := 0
	for i := 0; i < n; i++ {
		name, err := hit()
		if err != nil {
			fails++
			continue
		}
		seen[name]++
	}
	return seen, fails
}

func (s *S) instances() []api.SetInstance {
	s.Helper()
	return decode[[]api.SetInstance](s, s.Must("set", "instances", "web", "-o", "json"))
}

func (s *S) healthySet(n int, within time.Duration) bool {
	s.Helper()
	ok := Eventually(within, time.Second, func() bool {
		r := s.Gale("set", "show", "web", "-o", "json")
		if r.Code != 0 {
			return false
		}
		set := decode[api.ScaleSet](s, r)
		return set.Healthy == n && set.Instances == n
	})
	return s.Check(ok, "set web not %d healthy within %s: %s", n, within, s.Gale("set", "instances", "web"))
}

// activityHas reports whether set web's activity has a successful action
// on instance since t.
func (s *S) activityHas(action, instance string, since time.Time) bool {
	acts := decode[[]api.Activity](s, s.Must("set", "activity", "web", "-o", "json"))
	for _, a := range acts {
		if a.Action == action && (instance == "" || a.Instance == instance) && a.Result == api.ResultSucceeded && a.At.After(since) {
			return true
		}
	}
	return false
}

// setsWeb: a set of three cloned web servers behind the kernel load
// balancer. Requests from the host reach all three; an instance whose
// service stops leaves the map and is replaced; a destroyed domain is
// replaced; scale 3 -> 5 -> 2 honours protection; galed killed mid-scale
// converges; a rolling upgrade under load loses no request; delete leaves
// nothing behind.
func setsWeb(s *S) {
	start := time.Now()
	for i := 0; i < 6; i++ {
		s.Watch("web-" + string(rune('0'+i)))
	}
	// The API's event stream carries the set's activity.
	var events atomic.Int64
	ectx, stopEvents := context.WithCancel(context.Background())
	defer stopEvents()
	go func() {
		_ = client.New(s.Env.Socket()).Events(ectx, "set", func(ev api.BusEvent) error {
			if ev.Kind == "set" && ev.Name == "web" && ev.Activity != nil {
				events.Add(1)
			}
			return nil
		})
	}()
	r := s.Gale(setArgs...)
	if !s.Check(r.Code == 0, "set create: %s", r) {
		return
	}
	s.Check(events.Load() >= 4, "set events on /v1/events during the create: %d, want the create, 3 instances and map updates", events.Load())
	s.Logf("set create to 3 healthy: %s", time.Since(start).Round(time.Second))
	insts := s.instances()
	for _, in := range insts {
		s.Check(in.Health == api.HealthHealthy && in.Made == api.MadeClone, "instance %+v: want healthy clone", in)
	}
	vms := decode[[]api.VM](s, s.Must("vm", "list", "-o", "json"))
	for _, v := range vms {
		if strings.HasPrefix(v.Name, "web-") {
			s.Check(v.Set == "web", "vm list: %s has set %q", v.Name, v.Set)
		}
	}
	meta := s.guest("web-1", "instance metadata", "cat /var/lib/gale/instance.json")
	s.Check(strings.Contains(meta, `"set":"web"`) && strings.Contains(meta, `"instance":"web-1"`) && strings.Contains(meta, `"version":1`), "metadata: %s", meta)

	seen, fails := spread(15)
	s.Check(len(seen) == 3 && fails == 0, "15 requests to the frontend reached %v (%d failed), want all 3 instances", seen, fails)

	r = s.Gale("vm", "delete", "web-1")
	s.Check(r.Code != 0 && r.Has("gale set instance delete"), "vm delete of a member: %s", r)

	// A stopped service: out of the map within interval x threshold (+ a
	// pass), then replaced after the grace period.
	stopped := time.Now()
	s.guest("web-1", "stop the web server", "systemctl stop gale-web")
	out := Eventually(20*time.Second, 500*time.Millisecond, func() bool {
		seen, _ := spread(6)
		return seen["web-1"] == 0
	})
	s.Check(out, "web-1 still in the map 20 s after its service stopped")
	s.Logf("web-1 out of the map after %s", time.Since(stopped).Round(100*time.Millisecond))
	replaced := Eventually(3*time.Minute, 2*time.Second, func() bool { return s.activityHas("delete", "web-1", stopped) })
	s.Check(replaced, "web-1 not replaced: %s", s.Gale("set", "activity", "web"))
	s.healthySet(3, 3*time.Minute)

	// A domain destroyed behind galed's back is replaced.
	victim := s.instances()[0].Name
	destroyed := time.Now()
	s.MustHost("virsh", "destroy", victim)
	gone := Eventually(3*time.Minute, 2*time.Second, func() bool { return s.activityHas("delete", victim, destroyed) })
	s.Check(gone, "destroyed %s not replaced: %s", victim, s.Gale("set", "activity", "web"))
	s.healthySet(3, 3*time.Minute)
	if s.Failed() {
		return
	}

	// Scale 3 -> 5 -> 2: the protected highest ordinal stays.
	s.Expect("scale to 5", 0, "set", "scale", "web", "5", "--timeout", "5m")
	s.healthySet(5, time.Minute)
	insts = s.instances()
	protected := insts[len(insts)-1].Name
	s.Expect("protect", 0, "set", "instance", "protect", protected)
	s.Expect("scale to 2", 0, "set", "scale", "web", "2", "--timeout", "3m")
	insts = s.instances()
	names := []string{}
	for _, in := range insts {
		names = append(names, in.Name)
	}
	s.Check(len(insts) == 2 && (names[0] == protected || names[1] == protected), "after scale to 2: %v, want %s kept", names, protected)
	s.Expect("unprotect", 0, "set", "instance", "unprotect", "web", protected)

	// galed killed mid-scale: capacity converges, nothing leaks.
	s.Expect("scale to 3 --no-wait", 0, "set", "scale", "web", "3", "--no-wait")
	time.Sleep(3 * time.Second)
	s.Env.Daemon.Restart(s, syscall.SIGKILL)
	s.healthySet(3, 4*time.Minute)
	insts = s.instances()
	doms := 0
	for _, d := range s.Domains() {
		if strings.HasPrefix(d, "web-") {
			doms++
		}
	}
	s.Check(doms == 3 && len(insts) == 3, "after SIGKILL mid-scale: %d domains, %d instances, want 3", doms, len(insts))
	if s.Failed() {
		return
	}

	// Rolling upgrade to a new page under a client loop: no failed request.
	v2 := filepath.Join(s.Env.Dir, "work", "web-v2.yaml")
	b, err := os.ReadFile(filepath.Join(s.Env.Repo, "cloudinit", "web-server.yaml"))
	s.Check(err == nil, "read web-server.yaml: %v", err)
	s.Check(os.WriteFile(v2, []byte(strings.Replace(string(b), "Hello from", "Hello v2 from", 1)), 0o644) == nil, "write v2")
	r = s.Gale("set", "update", "web", "--cloud-init", v2)
	s.Check(r.Code == 0 && r.Has("model version 2"), "set update: %s", r)
	var okN, failN atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := hit(); err != nil {
				failN.Add(1)
				lastErr.Store(err.Error())
			} else {
				okN.Add(1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	upStart := time.Now()
	r = s.Gale("set", "upgrade", "web", "--batch", "1", "--surge", "1", "--timeout", "8m")
	close(stop)
	wg.Wait()
	s.Check(r.Code == 0, "set upgrade: %s", r)
	s.Logf("rolling upgrade of 3: %s, %d requests served, %d failed (%v)", time.Since(upStart).Round(time.Second), okN.Load(), failN.Load(), lastErr.Load())
	s.Check(failN.Load() == 0 && okN.Load() > 20, "requests during the upgrade: %d ok, %d failed (last: %v)", okN.Load(), failN.Load(), lastErr.Load())
	for _, in := range s.instances() {
		s.Check(in.Version == 2 && in.Latest, "after upgrade: %+v", in)
	}
	page := s.GetPage(s.instances()[0].Name, 5)
	s.Check(strings.Contains(page, "Hello v2 from"), "page after upgrade: %q", page)

	// Delete: no domain, disk, row, table or lease left.
	del := s.Gale("set", "delete", "web", "--timeout", "3m")
	s.Check(del.Code == 0, "set delete: %s", del)
	s.checkSetGone()
}

// checkSetGone checks that nothing of set web is left.
func (s *S) checkSetGone() {
	s.Helper()
	for _, d := range s.Domains() {
		s.Check(!strings.HasPrefix(d, "web-"), "domain %s left after set delete", d)
	}
	dirs, _ := filepath.Glob(filepath.Join(s.Env.Dir, "data", "vms", "web-*"))
	s.Check(len(dirs) == 0, "VM directories left: %v", dirs)
	vms := decode[[]api.VM](s, s.Must("vm", "list", "-o", "json"))
	for _, v := range vms {
		s.Check(v.Set != "web", "vm %s of set web left", v.Name)
	}
	s.Check(s.Gale("set", "show", "web").Code != 0, "set web still shown")
	m, err := lb.New()
	if s.Check(err == nil, "nftables: %v", err) {
		defer m.Close()
		sets, err := m.Sets()
		s.Check(err == nil && len(sets) == 0, "load-balancer tables left: %v %v", sets, err)
	}
	leases := s.Host("virsh", "net-dhcp-leases", "gale-default")
	s.Check(!leases.Has("web-"), "leases left: %s", leases)
}

// setsBadInput: refusals that leave nothing behind, and a new model that
// does not come up (its cloud-init fails) refused by set update; a model
// that boots but fails its probe stops the upgrade after the first batch
// and is rolled back while the set keeps serving.
func setsBadInput(s *S) {
	for _, tc := range []struct {
		what string
		code int
		args []string
	}{
		{"negative capacity", 2, []string{"set", "create", "bad", "--image", "debian-12", "--capacity", "-1"}},
		{"bad probe", 2, []string{"set", "create", "bad", "--image", "debian-12", "--probe", "http:x/"}},
		{"bad lb", 2, []string{"set", "create", "bad", "--image", "debian-12", "--lb", "8080"}},
		{"unknown image", 2, []string{"set", "create", "bad", "--image", "nope"}},
		{"bad name", 2, []string{"set", "create", "../x", "--image", "debian-12"}},
	} {
		r := s.Gale(tc.args...)
		s.Check(r.Code != 0, "%s: accepted: %s", tc.what, r)
	}
	s.Check(s.Gale("set", "show", "bad").Code != 0, "a refused create left set bad")

	// A small set of the bare image, probed on SSH; then models that fail.
	s.Watch("lab-0")
	r := s.Gale("set", "create", "lab", "--image", "debian-12", "--memory", "768M", "--disk", "4G", "--capacity", "1",
		"--probe", "tcp:22,interval=1s,healthy=1,unhealthy=2", "--lb", "2222:22", "--grace", "15s", "--timeout", "8m")
	if !s.Check(r.Code == 0, "set create lab: %s", r) {
		return
	}
	busy := s.Gale("set", "create", "lab2", "--image", "debian-12", "--lb", "2222:22")
	s.Check(busy.Code != 0 && busy.Has("lab"), "a second set on the same frontend: %s", busy)
	failing := filepath.Join(s.Env.Dir, "work", "failing.yaml")
	_ = os.WriteFile(failing, []byte("#cloud-config\nruncmd:\n  - [sh, -c, 'echo broken model >&2; exit 1']\n"), 0o644)
	r = s.Gale("set", "update", "lab", "--cloud-init", failing)
	s.Check(r.Code != 0 && r.Has("does not come up"), "update to a model whose cloud-init fails: %s", r)
	show := decode[api.ScaleSet](s, s.Must("set", "show", "lab", "-o", "json"))
	s.Check(show.Version == 1, "version after a refused update: %d", show.Version)

	// Boots, but nothing listens on 22: the probe fails.
	noSSH := filepath.Join(s.Env.Dir, "work", "nossh.yaml")
	_ = os.WriteFile(noSSH, []byte("#cloud-config\nbootcmd:\n  - [systemctl, mask, ssh.service, ssh.socket]\n"), 0o644)
	r = s.Gale("set", "update", "lab", "--cloud-init", noSSH)
	s.Check(r.Code == 0, "update to a model that boots without sshd: %s", r)
	r = s.Gale("set", "upgrade", "lab", "--batch", "1", "--surge", "1", "--timeout", "8m")
	s.Check(r.Code != 0 && r.Has("rolled back"), "upgrade to a model that fails its probe: %s", r)
	insts := decode[[]api.SetInstance](s, s.Must("set", "instances", "lab", "-o", "json"))
	s.Check(len(insts) == 1 && insts[0].Version == 1 && insts[0].Health == api.HealthHealthy, "after the rollback: %+v", insts)
	s.Expect("delete lab", 0, "set", "delete", "lab", "--timeout", "3m")
	for _, d := range s.Domains() {
		s.Check(!strings.HasPrefix(d, "lab-"), "domain %s left", d)
	}
}

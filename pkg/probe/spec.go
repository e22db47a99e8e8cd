package probe

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/galevm/gale/pkg/errdefs"
)

// Kind is how an instance is probed.
type Kind string

// The kinds of probe.
const (
	// KindTCP succeeds when a TCP connection to the port is accepted.
	KindTCP Kind = "tcp"
	// KindHTTP succeeds when a GET of the path answers 200 to 399.
	KindHTTP Kind = "http"
)

// The defaults WithDefaults fills in, and the bounds Validate enforces.
const (
	DefaultPath      = "/"
	DefaultInterval  = 5 * time.Second
	DefaultTimeout   = 2 * time.Second
	DefaultHealthy   = 2
	DefaultUnhealthy = 2

	// MinInterval keeps a typo ("interval=5ms") from becoming a busy loop.
	MinInterval = 100 * time.Millisecond
)

// Spec says how to probe an instance. The zero value of a field means "the
// default" (see WithDefaults); Validate checks a Spec after defaults.
type Spec struct {
	Kind      Kind          `json:"kind"`
	Port      int           `json:"port"`
	Path      string        `json:"path,omitempty"`      // HTTP only; default "/"; may carry a ?query
	Interval  time.Duration `json:"interval"`            // start to start; default 5s
	Timeout   time.Duration `json:"timeout"`             // per probe; default 2s (at most Interval/2); must be < Interval
	Healthy   int           `json:"healthy_threshold"`   // consecutive successes to become healthy; default 2
	Unhealthy int           `json:"unhealthy_threshold"` // consecutive failures to become unhealthy; default 2
}

// WithDefaults returns s with its zero fields set to the defaults: Path "/"
// (HTTP only), Interval 5s, Timeout 2s or Interval/2 when that is shorter
// (so that "interval=1s" alone is valid), and both thresholds 2. Fields
// already set, even to invalid values, are kept.
func (s Spec) WithDefaults() Spec {
	if s.Kind == KindHTTP && s.Path == "" {
		s.Path = DefaultPath
	}
	if s.Interval == 0 {
		s.Interval = DefaultInterval
	}
	if s.Timeout == 0 {
		s.Timeout = defaultTimeout(s.Interval)
	}
	if s.Healthy == 0 {
		s.Healthy = DefaultHealthy
	}
	if s.Unhealthy == 0 {
		s.Unhealthy = DefaultUnhealthy
	}
	return s
}

// defaultTimeout is the timeout WithDefaults picks for interval.
func defaultTimeout(interval time.Duration) time.Duration {
	if interval > 0 && interval/2 < DefaultTimeout {
		return interval / 2
	}
	return DefaultTimeout
}

// Validate reports, as an errdefs.Invalid error naming the first bad
// field, whether s can be probed as it is; it does not fill defaults, so
// call it on s.WithDefaults() when zero fields should mean "default".
// It requires a known Kind, a Port from 1 to 65535, for HTTP a Path that
// starts with "/" and holds no spaces, control characters, '#' or ','
// (',' separates options in the text form: write it as %2C), for TCP no
// Path, Interval >= MinInterval, 0 < Timeout < Interval, and thresholds
// of at least 1.
func (s Spec) Validate() error {
	switch s.Kind {
	case KindTCP, KindHTTP:
	case "":
		return invalidf("kind is missing: want tcp or http")
	default:
		return invalidf("kind %q is not tcp or http", string(s.Kind))
	}
	if s.Port < 1 || s.Port > 65535 {
		return invalidf("port %d is not a number 1-65535", s.Port)
	}
	if s.Kind == KindTCP && s.Path != "" {
		return invalidf("path %q is for http probes only, not tcp", s.Path)
	}
	if s.Kind == KindHTTP {
		if err := checkPath(s.Path); err != nil {
			return err
		}
	}
	if s.Interval < MinInterval {
		return invalidf("interval %s is shorter than the minimum %s", s.Interval, MinInterval)
	}
	if s.Timeout <= 0 {
		return invalidf("timeout %s is not positive", s.Timeout)
	}
	if s.Timeout >= s.Interval {
		return invalidf("timeout %s must be less than interval %s", s.Timeout, s.Interval)
	}
	if s.Healthy < 1 {
		return invalidf("healthy threshold %d is not at least 1", s.Healthy)
	}
	if s.Unhealthy < 1 {
		return invalidf("unhealthy threshold %d is not at least 1", s.Unhealthy)
	}
	return nil
}

// checkPath validates an HTTP probe's path (with optional query).
func checkPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return invalidf("path %q does not start with /", p)
	}
	for _, r := range p {
		switch {
		case r <= ' ' || r == 0x7f:
			return invalidf("path %q holds a space or control character", p)
		case r == '#':
			return invalidf("path %q holds a fragment (#), which is never sent", p)
		case r == ',':
			return invalidf("path %q holds a comma, which separates options: write it as %%2C", p)
		}
	}
	if _, err := url.ParseRequestURI(p); err != nil {
		return invalidf("path %q is not a valid request path: %v", p, err)
	}
	return nil
}

// requestURL is the URL an HTTP probe of s GETs from host ("addr:port").
// s.Path must have passed checkPath.
func (s Spec) requestURL(host string) (*url.URL, error) {
	u, err := url.ParseRequestURI(s.Path)
	if err != nil {
		return nil, err
	}
	u.Scheme = "http"
	u.Host = host
	return u, nil
}

// String returns the text form of s, which Parse reads back:
// Parse(s.String()) equals s.WithDefaults() whenever that is valid.
// Options equal to their default are left out, so a defaulted Spec prints
// as briefly as "tcp:22" or "http:80/healthz".
func (s Spec) String() string {
	var b strings.Builder
	b.WriteString(string(s.Kind))
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(s.Port))
	b.WriteString(s.Path)
	if s.Interval != 0 && s.Interval != DefaultInterval {
		fmt.Fprintf(&b, ",interval=%s", s.Interval)
	}
	if s.Timeout != 0 && s.Timeout != defaultTimeout(Spec{Interval: s.Interval}.WithDefaults().Interval) {
		fmt.Fprintf(&b, ",timeout=%s", s.Timeout)
	}
	if s.Healthy != 0 && s.Healthy != DefaultHealthy {
		fmt.Fprintf(&b, ",healthy=%d", s.Healthy)
	}
	if s.Unhealthy != 0 && s.Unhealthy != DefaultUnhealthy {
		fmt.Fprintf(&b, ",unhealthy=%d", s.Unhealthy)
	}
	return b.String()
}

// Parse reads a Spec from its text form,
//
//	kind:port[/path[?query]][,option=value]...
//
// where kind is tcp or http (any case), the path is for http only (default
// "/"), and the options are interval and timeout (Go durations like "2s"
// or "1m30s") and healthy and unhealthy (thresholds, at least 1), each at
// most once. Leading and trailing spaces are ignored. The result has its
// defaults filled and is valid; an error is errdefs.Invalid and names the
// input and its bad part:
//
//	probe "http:x/": port "x" is not a number 1-65535
func Parse(s string) (Spec, error) {
	spec, err := parse(strings.TrimSpace(s))
	if err != nil {
		return Spec{}, errdefs.Newf(errdefs.Invalid, "probe %q: %w", s, err)
	}
	return spec, nil
}

func parse(s string) (Spec, error) {
	if s == "" {
		return Spec{}, fmt.Errorf(`empty: want kind:port like "tcp:22" or "http:80/healthz"`)
	}
	head, opts, hasOpts := strings.Cut(s, ",")
	kind, rest, ok := strings.Cut(head, ":")
	if !ok {
		return Spec{}, fmt.Errorf(`%q is not kind:port (like "tcp:22" or "http:80/healthz")`, head)
	}
	var spec Spec
	switch k := Kind(strings.ToLower(kind)); k {
	case KindTCP, KindHTTP:
		spec.Kind = k
	default:
		return Spec{}, fmt.Errorf("kind %q is not tcp or http", kind)
	}
	port, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		port, path = rest[:i], rest[i:]
	}
	n, err := parsePort(port)
	if err != nil {
		return Spec{}, err
	}
	spec.Port = n
	if path != "" {
		if spec.Kind != KindHTTP {
			return Spec{}, fmt.Errorf("path %q is for http probes only, not %s", path, spec.Kind)
		}
		spec.Path = path
	}
	if hasOpts {
		if err := parseOptions(&spec, opts); err != nil {
			return Spec{}, err
		}
	}
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return Spec{}, err
	}
	return spec, nil
}

// parsePort reads a port 1-65535 written as plain decimal digits.
func parsePort(p string) (int, error) {
	bad := fmt.Errorf("port %q is not a number 1-65535", p)
	if p == "" {
		return 0, fmt.Errorf("port is missing: want a number 1-65535")
	}
	for _, r := range p {
		if r < '0' || r > '9' {
			return 0, bad
		}
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, bad
	}
	return n, nil
}

// parseOptions sets spec's fields from "name=value,name=value".
func parseOptions(spec *Spec, opts string) error {
	seen := map[string]bool{}
	for _, opt := range strings.Split(opts, ",") {
		name, value, ok := strings.Cut(opt, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		value = strings.TrimSpace(value)
		switch {
		case strings.TrimSpace(opt) == "":
			return fmt.Errorf("empty option (a stray comma?)")
		case !ok:
			return fmt.Errorf("option %q has no value: want %s=...", opt, name)
		case seen[name]:
			return fmt.Errorf("option %q is given twice", name)
		}
		seen[name] = true
		switch name {
		case "interval", "timeout":
			d, err := time.ParseDuration(value)
			if err != nil {
				return fmt.Errorf(`%s %q is not a duration like "5s"`, name, value)
			}
			if d <= 0 {
				return fmt.Errorf("%s %s is not positive", name, value)
			}
			if name == "interval" {
				spec.Interval = d
			} else {
				spec.Timeout = d
			}
		case "healthy", "unhealthy":
			n, err := strconv.Atoi(value)
			if err != nil || n < 1 {
				return fmt.Errorf("%s threshold %q is not a whole number of at least 1", name, value)
			}
			if name == "healthy" {
				spec.Healthy = n
			} else {
				spec.Unhealthy = n
			}
		default:
			return fmt.Errorf("unknown option %q: want interval, timeout, healthy or unhealthy", name)
		}
	}
	return nil
}

// specJSON is Spec on the wire, with durations as strings.
type specJSON struct {
	Kind      Kind         `json:"kind"`
	Port      int          `json:"port"`
	Path      string       `json:"path,omitempty"`
	Interval  jsonDuration `json:"interval"`
	Timeout   jsonDuration `json:"timeout"`
	Healthy   int          `json:"healthy_threshold"`
	Unhealthy int          `json:"unhealthy_threshold"`
}

// MarshalJSON encodes s with its durations as Go duration strings
// ("interval": "5s"), like gale's API does.
func (s Spec) MarshalJSON() ([]byte, error) {
	return json.Marshal(specJSON{s.Kind, s.Port, s.Path, jsonDuration(s.Interval), jsonDuration(s.Timeout), s.Healthy, s.Unhealthy})
}

// UnmarshalJSON decodes s, accepting a duration as a string ("5s") or a
// number of nanoseconds. It neither fills defaults nor validates.
func (s *Spec) UnmarshalJSON(b []byte) error {
	var j specJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Spec{j.Kind, j.Port, j.Path, time.Duration(j.Interval), time.Duration(j.Timeout), j.Healthy, j.Unhealthy}
	return nil
}

// jsonDuration travels as a duration string; it also reads nanoseconds.
type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: want a string like \"5s\"", s)
		}
		*d = jsonDuration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration: want a string like \"5s\" or nanoseconds")
	}
	*d = jsonDuration(n)
	return nil
}

func invalidf(format string, args ...any) error {
	return errdefs.Newf(errdefs.Invalid, format, args...)
}

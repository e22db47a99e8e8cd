package probe

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/errdefs"
)

func TestParse(t *testing.T) {
	def := func(k Kind, port int, path string) Spec {
		return Spec{Kind: k, Port: port, Path: path, Interval: 5 * time.Second, Timeout: 2 * time.Second, Healthy: 2, Unhealthy: 2}
	}
	with := func(s Spec, f func(*Spec)) Spec { f(&s); return s }
	tests := []struct {
		in   string
		want Spec
		str  string // want.String()
	}{
		{"tcp:80", def(KindTCP, 80, ""), "tcp:80"},
		{"tcp:22", def(KindTCP, 22, ""), "tcp:22"},
		{"tcp:65535", def(KindTCP, 65535, ""), "tcp:65535"},
		{"http:80", def(KindHTTP, 80, "/"), "http:80/"},
		{"http:80/", def(KindHTTP, 80, "/"), "http:80/"},
		{"http:8080/healthz?x=1", def(KindHTTP, 8080, "/healthz?x=1"), "http:8080/healthz?x=1"},
		{"http:80//double", def(KindHTTP, 80, "//double"), "http:80//double"},
		{"http:80/a%2Cb", def(KindHTTP, 80, "/a%2Cb"), "http:80/a%2Cb"},
		{"HTTP:80/Up", def(KindHTTP, 80, "/Up"), "http:80/Up"},
		{"  tcp:80  ", def(KindTCP, 80, ""), "tcp:80"},
		{"http:80/,interval=2s,timeout=1s,healthy=1,unhealthy=3",
			with(def(KindHTTP, 80, "/"), func(s *Spec) { s.Interval, s.Timeout, s.Healthy, s.Unhealthy = 2*time.Second, time.Second, 1, 3 }),
			"http:80/,interval=2s,healthy=1,unhealthy=3"}, // 1s is the default timeout for 2s
		{"tcp:22,unhealthy=5,healthy=3", with(def(KindTCP, 22, ""), func(s *Spec) { s.Healthy, s.Unhealthy = 3, 5 }), "tcp:22,healthy=3,unhealthy=5"},
		{"tcp:22, Interval = 1m30s ", with(def(KindTCP, 22, ""), func(s *Spec) { s.Interval = 90 * time.Second }), "tcp:22,interval=1m30s"},
		// A short interval alone gets a timeout of half of it.
		{"tcp:22,interval=1s", with(def(KindTCP, 22, ""), func(s *Spec) { s.Interval, s.Timeout = time.Second, 500*time.Millisecond }), "tcp:22,interval=1s"},
		{"tcp:22,interval=100ms", with(def(KindTCP, 22, ""), func(s *Spec) { s.Interval, s.Timeout = 100*time.Millisecond, 50*time.Millisecond }), "tcp:22,interval=100ms"},
		// Options equal to the defaults are left out of String.
		{"tcp:22,interval=5s,timeout=2s,healthy=2,unhealthy=2", def(KindTCP, 22, ""), "tcp:22"},
		{"tcp:22,timeout=4.5s", with(def(KindTCP, 22, ""), func(s *Spec) { s.Timeout = 4500 * time.Millisecond }), "tcp:22,timeout=4.5s"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tt.want {
				t.Fatalf("Parse = %+v, want %+v", got, tt.want)
			}
			if s := got.String(); s != tt.str {
				t.Errorf("String = %q, want %q", s, tt.str)
			}
			again, err := Parse(got.String())
			if err != nil || again != got {
				t.Errorf("Parse(String()) = %+v, %v; want %+v", again, err, got)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate of a parsed spec: %v", err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string // the whole message, or "...substring"
	}{
		{"http:x/", `probe "http:x/": port "x" is not a number 1-65535`},
		{"", `probe "": empty: want kind:port like "tcp:22" or "http:80/healthz"`},
		{"   ", `...empty`},
		{"80", `probe "80": "80" is not kind:port (like "tcp:22" or "http:80/healthz")`},
		{"http", `..."http" is not kind:port`},
		{"udp:53", `probe "udp:53": kind "udp" is not tcp or http`},
		{"https:443/", `...kind "https" is not tcp or http`},
		{":80", `...kind "" is not tcp or http`},
		{"tcp:", `probe "tcp:": port is missing: want a number 1-65535`},
		{"http:/healthz", `...port is missing`},
		{"tcp:0", `...port "0" is not a number 1-65535`},
		{"tcp:65536", `...port "65536" is not a number 1-65535`},
		{"tcp:-1", `...port "-1" is not a number 1-65535`},
		{"tcp:+80", `...port "+80" is not a number 1-65535`},
		{"tcp:99999999999999999999", `...is not a number 1-65535`},
		{"http:80x", `...port "80x" is not a number 1-65535`},
		{"http:80?x=1", `...port "80?x=1" is not a number`},
		{"tcp:80/", `probe "tcp:80/": path "/" is for http probes only, not tcp`},
		{"tcp:80/healthz", `...path "/healthz" is for http probes only`},
		{"http:80/a b", `...path "/a b" holds a space or control character`},
		{"http:80/a\tb", `...holds a space or control character`},
		{"http:80/#top", `...holds a fragment`},
		{"http:80/,", `probe "http:80/,": empty option (a stray comma?)`},
		{"http:80/,,interval=2s", `...empty option`},
		{"http:80/,interval", `...option "interval" has no value: want interval=...`},
		{"http:80/,interval=abc", `probe "http:80/,interval=abc": interval "abc" is not a duration like "5s"`},
		{"http:80/,interval=5", `...interval "5" is not a duration`},
		{"http:80/,interval=0s", `...interval 0s is not positive`},
		{"http:80/,timeout=-1s", `...timeout -1s is not positive`},
		{"http:80/,interval=10ms", `...interval 10ms is shorter than the minimum 100ms`},
		{"http:80/,timeout=5s", `probe "http:80/,timeout=5s": timeout 5s must be less than interval 5s`},
		{"tcp:22,interval=2s,timeout=3s", `...timeout 3s must be less than interval 2s`},
		{"http:80/,healthy=0", `...healthy threshold "0" is not a whole number of at least 1`},
		{"http:80/,unhealthy=two", `...unhealthy threshold "two" is not a whole number`},
		{"http:80/,healthy=1.5", `...healthy threshold "1.5"`},
		{"http:80/,port=81", `probe "http:80/,port=81": unknown option "port": want interval, timeout, healthy or unhealthy`},
		{"http:80/,interval=2s,interval=3s", `...option "interval" is given twice`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", got)
			}
			if got != (Spec{}) {
				t.Errorf("Parse returned %+v with its error, want the zero Spec", got)
			}
			if sub, ok := strings.CutPrefix(tt.want, "..."); ok {
				if !strings.Contains(err.Error(), sub) || !strings.HasPrefix(err.Error(), "probe ") {
					t.Errorf("error = %q, want one containing %q", err, sub)
				}
			} else if err.Error() != tt.want {
				t.Errorf("error = %q\nwant    %q", err, tt.want)
			}
			if !errdefs.Is(err, errdefs.Invalid) {
				t.Errorf("error kind = %q, want invalid", errdefs.KindOf(err))
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := Spec{Kind: KindHTTP, Port: 80, Path: "/", Interval: time.Second, Timeout: 500 * time.Millisecond, Healthy: 1, Unhealthy: 1}
	mod := func(f func(*Spec)) Spec { s := ok; f(&s); return s }
	tests := []struct {
		name string
		spec Spec
		want string // substring; "" for valid
	}{
		{"ok", ok, ""},
		{"tcp", mod(func(s *Spec) { s.Kind, s.Path = KindTCP, "" }), ""},
		{"zero spec", Spec{}, "kind is missing"},
		{"zero spec defaulted", Spec{}.WithDefaults(), "kind is missing"},
		{"kind case", mod(func(s *Spec) { s.Kind = "HTTP" }), `kind "HTTP" is not tcp or http`},
		{"port 0", mod(func(s *Spec) { s.Port = 0 }), "port 0 is not a number 1-65535"},
		{"port high", mod(func(s *Spec) { s.Port = 70000 }), "port 70000"},
		{"tcp with path", mod(func(s *Spec) { s.Kind = KindTCP }), `path "/" is for http probes only`},
		{"http without path", mod(func(s *Spec) { s.Path = "" }), `path "" does not start with /`},
		{"relative path", mod(func(s *Spec) { s.Path = "healthz" }), `path "healthz" does not start with /`},
		{"absolute URL", mod(func(s *Spec) { s.Path = "http://x/" }), "does not start with /"},
		{"comma", mod(func(s *Spec) { s.Path = "/a,b" }), "holds a comma"},
		{"newline", mod(func(s *Spec) { s.Path = "/a\nb" }), "control character"},
		{"DEL", mod(func(s *Spec) { s.Path = "/a\x7f" }), "control character"},
		{"bad escape", mod(func(s *Spec) { s.Path = "/a%zz" }), "not a valid request path"},
		{"unicode path", mod(func(s *Spec) { s.Path = "/gesundheit/ü" }), ""},
		{"zero interval", mod(func(s *Spec) { s.Interval = 0 }), "interval 0s is shorter than the minimum"},
		{"zero timeout", mod(func(s *Spec) { s.Timeout = 0 }), "timeout 0s is not positive"},
		{"timeout = interval", mod(func(s *Spec) { s.Timeout = time.Second }), "timeout 1s must be less than interval 1s"},
		{"healthy 0", mod(func(s *Spec) { s.Healthy = 0 }), "healthy threshold 0"},
		{"unhealthy -1", mod(func(s *Spec) { s.Unhealthy = -1 }), "unhealthy threshold -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want == "":
			case err == nil:
				t.Fatalf("Validate = nil, want an error containing %q", tt.want)
			case !strings.Contains(err.Error(), tt.want):
				t.Errorf("Validate = %q, want one containing %q", err, tt.want)
			case !errdefs.Is(err, errdefs.Invalid):
				t.Errorf("error kind = %q, want invalid", errdefs.KindOf(err))
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Spec
		want Spec
	}{
		{"http", Spec{Kind: KindHTTP, Port: 80}, Spec{Kind: KindHTTP, Port: 80, Path: "/", Interval: 5 * time.Second, Timeout: 2 * time.Second, Healthy: 2, Unhealthy: 2}},
		{"tcp gets no path", Spec{Kind: KindTCP, Port: 22}, Spec{Kind: KindTCP, Port: 22, Interval: 5 * time.Second, Timeout: 2 * time.Second, Healthy: 2, Unhealthy: 2}},
		{"short interval", Spec{Kind: KindTCP, Port: 22, Interval: time.Second}, Spec{Kind: KindTCP, Port: 22, Interval: time.Second, Timeout: 500 * time.Millisecond, Healthy: 2, Unhealthy: 2}},
		{"long interval", Spec{Kind: KindTCP, Port: 22, Interval: time.Minute}, Spec{Kind: KindTCP, Port: 22, Interval: time.Minute, Timeout: 2 * time.Second, Healthy: 2, Unhealthy: 2}},
		{"set fields kept, even invalid", Spec{Kind: KindHTTP, Port: 80, Path: "/x", Interval: -1, Timeout: 9 * time.Second, Healthy: -3, Unhealthy: 7},
			Spec{Kind: KindHTTP, Port: 80, Path: "/x", Interval: -1, Timeout: 9 * time.Second, Healthy: -3, Unhealthy: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.WithDefaults()
			if got != tt.want {
				t.Errorf("WithDefaults = %+v, want %+v", got, tt.want)
			}
			if again := got.WithDefaults(); again != got {
				t.Errorf("WithDefaults is not idempotent: %+v", again)
			}
		})
	}
}

// TestStringRoundTrip: Parse(s.String()) == s.WithDefaults() for Specs
// built in code, defaulted or not.
func TestStringRoundTrip(t *testing.T) {
	specs := []Spec{
		{Kind: KindTCP, Port: 22},
		{Kind: KindHTTP, Port: 80},
		{Kind: KindHTTP, Port: 8080, Path: "/healthz?ready=1&x=%20"},
		{Kind: KindHTTP, Port: 1, Path: "/ü", Interval: 1500 * time.Millisecond},
		{Kind: KindTCP, Port: 443, Interval: 10 * time.Second, Timeout: 5 * time.Second, Healthy: 1, Unhealthy: 10},
		{Kind: KindTCP, Port: 443, Interval: 10 * time.Second, Timeout: 2 * time.Second},
		{Kind: KindTCP, Port: 443, Interval: time.Second, Timeout: 2 * time.Millisecond},
		{Kind: KindTCP, Port: 443, Interval: time.Second, Timeout: 500 * time.Millisecond},
		{Kind: KindTCP, Port: 443, Timeout: 4 * time.Second, Unhealthy: 1},
		Spec{Kind: KindHTTP, Port: 80, Path: "/a", Interval: time.Hour}.WithDefaults(),
	}
	for _, s := range specs {
		t.Run(s.String(), func(t *testing.T) {
			want := s.WithDefaults()
			if err := want.Validate(); err != nil {
				t.Fatalf("test spec invalid: %v", err)
			}
			got, err := Parse(s.String())
			if err != nil {
				t.Fatalf("Parse(%q): %v", s.String(), err)
			}
			if got != want {
				t.Errorf("Parse(%q) = %+v, want %+v", s.String(), got, want)
			}
		})
	}
}

func TestSpecJSON(t *testing.T) {
	s := Spec{Kind: KindHTTP, Port: 80, Path: "/healthz", Interval: 1500 * time.Millisecond, Timeout: time.Second, Healthy: 1, Unhealthy: 3}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"kind":"http","port":80,"path":"/healthz","interval":"1.5s","timeout":"1s","healthy_threshold":1,"unhealthy_threshold":3}`
	if string(b) != want {
		t.Errorf("Marshal = %s\nwant      %s", b, want)
	}
	var back Spec
	if err := json.Unmarshal(b, &back); err != nil || back != s {
		t.Errorf("Unmarshal = %+v, %v; want %+v", back, err, s)
	}

	// Nanoseconds are read too, and missing fields stay zero.
	var n Spec
	if err := json.Unmarshal([]byte(`{"kind":"tcp","port":22,"interval":3000000000}`), &n); err != nil {
		t.Fatal(err)
	}
	if want := (Spec{Kind: KindTCP, Port: 22, Interval: 3 * time.Second}); n != want {
		t.Errorf("Unmarshal = %+v, want %+v", n, want)
	}
	for _, bad := range []string{`{"interval":"soon"}`, `{"timeout":true}`, `{"port":"80"}`} {
		if err := json.Unmarshal([]byte(bad), &n); err == nil {
			t.Errorf("Unmarshal(%s) = nil error", bad)
		}
	}
}

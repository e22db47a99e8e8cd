package main

import (
	"testing"

	"github.com/galevm/gale/pkg/api"
)

func TestParseLBRule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want api.LBRule
		bad  bool
	}{
		{in: "8080:80", want: api.LBRule{Proto: "tcp", FrontPort: 8080, BackPort: 80}},
		{in: "10.0.0.1:8080:80", want: api.LBRule{Proto: "tcp", Addr: "10.0.0.1", FrontPort: 8080, BackPort: 80}},
		{in: "5353:53/udp", want: api.LBRule{Proto: "udp", FrontPort: 5353, BackPort: 53}},
		{in: "8080", bad: true},
		{in: "8080:0", bad: true},
		{in: "70000:80", bad: true},
		{in: "x:8080:80", bad: true},
		{in: "::1:8080:80", bad: true},
		{in: "8080:80/sctp", bad: true},
		{in: "1:2:3:4", bad: true},
	} {
		got, err := parseLBRule(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("parseLBRule(%q) = %+v, %v; want %+v (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestSetUsageErrors(t *testing.T) {
	f := startFake(t)
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"missing image", []string{"set", "create", "web"}, "missing --image"},
		{"bad lb", []string{"set", "create", "web", "--image", "debian-12", "--lb", "8080"}, "want [ADDR:]FRONT:BACK"},
		{"bad memory", []string{"set", "create", "web", "--image", "debian-12", "--memory", "lots"}, "--memory"},
		{"negative surge", []string{"set", "upgrade", "web", "--surge", "-1"}, "must not be negative"},
		{"bad percentage", []string{"set", "upgrade", "web", "--max-unhealthy", "120%"}, "want a percentage"},
		{"scale without capacity", []string{"set", "scale", "web"}, "want NAME CAPACITY"},
		{"scale not a number", []string{"set", "scale", "web", "many"}, "is not a number"},
		{"instance without name", []string{"set", "instance", "protect"}, "want [SET] INSTANCE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := gale(t, f.sock, "", tc.args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.code, exitUsage, r.stderr)
			}
			contains(t, "stderr", r.stderr, tc.msg)
		})
	}
}

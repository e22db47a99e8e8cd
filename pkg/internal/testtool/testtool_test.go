package testtool

import (
	"strings"
	"testing"
)

// recorder captures what Need and Missing do to a test.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, format
	panic(r)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, format
	panic(r)
}

// run calls fn with a recorder and returns it once fn ended the test or returned.
func run(fn func(tb testing.TB)) (r *recorder) {
	r = &recorder{}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
	}()
	fn(r)
	return r
}

func TestNeed(t *testing.T) {
	tests := []struct {
		name        string
		strict      string
		tool        string
		wantSkip    bool
		wantFail    bool
		wantPathLen int
	}{
		{name: "present tool", tool: "sh", wantPathLen: 1},
		{name: "missing tool skips", tool: "gale-no-such-tool", wantSkip: true},
		{name: "missing tool fails when strict", strict: "1", tool: "gale-no-such-tool", wantFail: true},
		{name: "present tool when strict", strict: "1", tool: "sh", wantPathLen: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(RequireEnv, tt.strict)
			var paths []string
			r := run(func(tb testing.TB) { paths = Need(tb, "test hint", tt.tool) })
			if r.skipped != tt.wantSkip || r.failed != tt.wantFail {
				t.Fatalf("skipped=%v failed=%v, want %v %v (msg %q)", r.skipped, r.failed, tt.wantSkip, tt.wantFail, r.msg)
			}
			if len(paths) != tt.wantPathLen {
				t.Errorf("paths = %v, want %d", paths, tt.wantPathLen)
			}
			if tt.wantFail && !strings.Contains(r.msg, RequireEnv) {
				t.Errorf("failure message %q does not name %s", r.msg, RequireEnv)
			}
		})
	}
}

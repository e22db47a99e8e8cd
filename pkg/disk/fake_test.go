package disk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// fakeRunner records every call and answers from a script keyed by the
// qemu-img subcommand (the first argument).
type fakeRunner struct {
	mu    sync.Mutex
	calls [][]string
	// replies maps a subcommand to what Run returns for it.
	replies map[string]fakeReply
}

type fakeReply struct {
	stdout, stderr string
	err            error
	// hook runs before Run returns, e.g. to create a file as qemu-img would.
	hook func(args []string)
}

func (f *fakeRunner) Run(_ context.Context, name string, args ...string) ([]byte, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, append([]string{name}, args...))
	if len(args) == 0 {
		return nil, nil, errors.New("fake: no arguments")
	}
	r, ok := f.replies[args[0]]
	if !ok {
		return nil, []byte("fake: unexpected subcommand " + args[0]), errors.New("exit status 1")
	}
	if r.hook != nil {
		r.hook(args)
	}
	return []byte(r.stdout), []byte(r.stderr), r.err
}

func (f *fakeRunner) commandLines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, strings.Join(c, " "))
	}
	return out
}

// infoReply is qemu-img info JSON for an image of the given format and size.
func infoReply(format string, size int64) fakeReply {
	return fakeReply{stdout: fmt.Sprintf(`{"format": %q, "virtual-size": %d, "actual-size": 4096}`, format, size)}
}

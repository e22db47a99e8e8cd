package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/galevm/gale/pkg/hypervisor"
)

// ErrCloudInitFailed: cloud-init finished with errors. The error text names
// the failing modules; Readiness carries the log tail.
var ErrCloudInitFailed = errors.New("cloud-init failed")

// ErrStoppedBeforeReady: the domain powered off or crashed before it was ready.
var ErrStoppedBeforeReady = errors.New("vm stopped before it was ready")

// Stage is a step of a VM's way to ready, in the order they happen.
type Stage string

const (
	StageBooting    Stage = "booting"    // domain started, guest agent not answering yet
	StageAgent      Stage = "agent"      // guest agent answers
	StageInitLocal  Stage = "init-local" // cloud-init stages, as cloud-init names them
	StageInit       Stage = "init"       //
	StageConfig     Stage = "modules-config"
	StageFinal      Stage = "modules-final"
	StageReady      Stage = "ready" // cloud-init done without errors
	StageFailed     Stage = "failed"
	statusJSONPath        = "/run/cloud-init/status.json"
	resultJSONPath        = "/run/cloud-init/result.json"
	outputLogPath         = "/var/log/cloud-init-output.log"
	outputTailLines       = 25
)

// Progress reports a stage reached, with the time since WaitReady began.
type Progress struct {
	Stage   Stage
	Elapsed time.Duration
}

// Readiness is the outcome of WaitReady.
type Readiness struct {
	// AgentAfter and DoneAfter are measured from the start of WaitReady.
	AgentAfter time.Duration
	DoneAfter  time.Duration
	// Errors are cloud-init's own error strings (empty on success).
	Errors []string
	// FailedModules are the module names parsed from Errors.
	FailedModules []string
	// OutputTail is the end of /var/log/cloud-init-output.log, read on failure.
	OutputTail string
}

// cloudInitStatus mirrors /run/cloud-init/status.json.
type cloudInitStatus struct {
	V1 map[string]json.RawMessage `json:"v1"`
}

type stageStatus struct {
	Start    *float64 `json:"start"`
	Finished *float64 `json:"finished"`
	Errors   []string `json:"errors"`
}

// cloudInitResult mirrors /run/cloud-init/result.json, written when cloud-init is done.
type cloudInitResult struct {
	V1 struct {
		Datasource string   `json:"datasource"`
		Errors     []string `json:"errors"`
	} `json:"v1"`
}

// readyPollInterval is how often WaitReady polls the guest; tests shorten it.
var readyPollInterval = time.Second

var cloudInitStages = []Stage{StageInitLocal, StageInit, StageConfig, StageFinal}

// WaitReady waits until the guest agent answers and cloud-init is done,
// reporting each stage to progress (which may be nil) as it is reached. It
// returns when ctx ends (with ctx's error), when cloud-init is done (nil), or
// when cloud-init reports errors (ErrCloudInitFailed, with the failing modules
// and the output log's tail in Readiness).
func WaitReady(ctx context.Context, d hypervisor.Driver, name string, progress func(Progress)) (Readiness, error) {
	start := time.Now()
	var res Readiness
	reached := map[Stage]bool{}
	report := func(s Stage) {
		if reached[s] {
			return
		}
		reached[s] = true
		if progress != nil {
			progress(Progress{Stage: s, Elapsed: time.Since(start)})
		}
	}
	report(StageBooting)
	tick := time.NewTicker(readyPollInterval)
	defer tick.Stop()
	for {
		if !reached[StageAgent] {
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err := d.AgentPing(pctx, name)
			cancel()
			switch {
			case err == nil:
				res.AgentAfter = time.Since(start)
				report(StageAgent)
			case errors.Is(err, hypervisor.ErrAgentUnavailable):
				// A guest that powered off or crashed will never answer.
				if dom, gerr := d.Get(ctx, name); gerr == nil &&
					(dom.State == hypervisor.StateShutoff || dom.State == hypervisor.StateCrashed) {
					return res, fmt.Errorf("%w: %q is %s", ErrStoppedBeforeReady, name, dom.State)
				}
			case errors.Is(err, hypervisor.ErrUnavailable):
			default:
				return res, fmt.Errorf("wait for guest agent of %q: %w", name, err)
			}
		}
		if reached[StageAgent] {
			done, err := pollCloudInit(ctx, d, name, report, &res)
			if err != nil || done {
				if err == nil {
					res.DoneAfter = time.Since(start)
				}
				return res, err
			}
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("wait for %q to be ready: %w", name, ctx.Err())
		case <-tick.C:
		}
	}
}

// pollCloudInit reads cloud-init's status files once. done is true when
// result.json exists; err wraps ErrCloudInitFailed when it lists errors.
func pollCloudInit(ctx context.Context, d hypervisor.Driver, name string, report func(Stage), res *Readiness) (done bool, err error) {
	status, ok, err := readGuestFile(ctx, d, name, statusJSONPath)
	if err != nil || !ok {
		return false, err
	}
	var st cloudInitStatus
	if json.Unmarshal(status, &st) == nil {
		for _, s := range cloudInitStages {
			var ss stageStatus
			if raw, ok := st.V1[string(s)]; ok && json.Unmarshal(raw, &ss) == nil && ss.Start != nil {
				report(s)
			}
		}
	}
	result, ok, err := readGuestFile(ctx, d, name, resultJSONPath)
	if err != nil || !ok {
		return false, err
	}
	var r cloudInitResult
	if err := json.Unmarshal(result, &r); err != nil {
		return false, fmt.Errorf("parse %s of %q: %w", resultJSONPath, name, err)
	}
	if len(r.V1.Errors) == 0 {
		report(StageReady)
		return true, nil
	}
	res.Errors = r.V1.Errors
	res.FailedModules = failedModules(r.V1.Errors)
	if tail, err := execOutput(ctx, d, name, "/usr/bin/tail", "-n", fmt.Sprint(outputTailLines), outputLogPath); err == nil {
		res.OutputTail = string(tail)
	}
	report(StageFailed)
	what := strings.Join(res.FailedModules, ", ")
	if what == "" {
		what = strings.Join(res.Errors, "; ")
	}
	return true, fmt.Errorf("%w in %q: %s", ErrCloudInitFailed, name, what)
}

// readGuestFile returns a file's content through the guest agent; ok is false
// when it does not exist (yet). Agent hiccups count as "not yet".
func readGuestFile(ctx context.Context, d hypervisor.Driver, name, path string) ([]byte, bool, error) {
	out, err := execOutput(ctx, d, name, "/bin/cat", path)
	if errors.Is(err, errNonZeroExit) || errors.Is(err, hypervisor.ErrAgentUnavailable) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

var errNonZeroExit = errors.New("command exited non-zero")

// execOutput runs a command in the guest with a short deadline and returns its stdout.
func execOutput(ctx context.Context, d hypervisor.Driver, name, path string, args ...string) ([]byte, error) {
	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := d.AgentExec(ectx, name, hypervisor.ExecRequest{Path: path, Args: args})
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w: %w", hypervisor.ErrAgentUnavailable, err)
		}
		return nil, err
	}
	if res.ExitCode != 0 {
		return res.Stdout, fmt.Errorf("%s: %w (%d): %s", path, errNonZeroExit, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return res.Stdout, nil
}

var moduleInError = regexp.MustCompile(`\('([a-z0-9_-]+)',`)

// failedModules extracts module names from cloud-init error strings such as
// "('scripts_user', RuntimeError('Runparts: 1 failures ...'))".
func failedModules(errs []string) []string {
	var mods []string
	seen := map[string]bool{}
	for _, e := range errs {
		for _, m := range moduleInError.FindAllStringSubmatch(e, -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				mods = append(mods, m[1])
			}
		}
	}
	return mods
}

// WaitAddress polls the domain's addresses until one is known or ctx ends.
func WaitAddress(ctx context.Context, d hypervisor.Driver, name string) ([]hypervisor.Address, error) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		addrs, err := d.Addresses(ctx, name)
		if err != nil && !errors.Is(err, hypervisor.ErrAgentUnavailable) {
			return nil, fmt.Errorf("addresses of %q: %w", name, err)
		}
		if len(addrs) > 0 {
			return addrs, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for an address of %q: %w", name, ctx.Err())
		case <-tick.C:
		}
	}
}

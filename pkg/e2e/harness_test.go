//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Addresses of galed's default network, gale-default (isolated): guests get
// leases in bridgeCIDR and reach the host on bridgeIP.
const (
	bridgeIP   = "192.168.150.1"
	bridgeCIDR = bridgeIP + "/24"
)

// Env is the environment every scenario of one run shares: the paths of the
// binaries and the template, one private galed, the loopback web servers
// of the image scenarios. It is set up once, by the first scenario that
// asks for it (see env), and torn down by TestMain.
type Env struct {
	Repo     string // repository root
	Gale     string // bin/gale
	Galed    string // bin/galed
	Template string // the private copy of GALE_E2E_TEMPLATE galed serves as debian-12
	Dir      string // galed's directory: config, socket, data, images, log
	StateDir string // GALE_TESTENV_DIR: scripts/testenv.sh's state directory
	Daemon   *Daemon
	WWW      *FileServer // serves Dir/www on loopback
	Cut      *FileServer // serves Dir/www too, cutting each file's first download
}

var (
	envOnce sync.Once
	envErr  error
	theEnv  *Env
)

// env returns the run's environment, setting it up on first use; it stops
// the test if the environment cannot be set up.
func env(t testing.TB) *Env {
	t.Helper()
	envOnce.Do(func() { theEnv, envErr = setupEnv() })
	if envErr != nil {
		t.Fatalf("e2e environment: %v", envErr)
	}
	return theEnv
}

// teardownEnv stops what setupEnv started; TestMain calls it after the run.
func teardownEnv() {
	if theEnv == nil {
		return
	}
	theEnv.Daemon.Stop(syscall.SIGTERM)
	theEnv.WWW.Close()
	theEnv.Cut.Close()
}

func setupEnv() (*Env, error) {
	state := os.Getenv("GALE_TESTENV_DIR")
	tmpl := os.Getenv("GALE_E2E_TEMPLATE")
	if state == "" || tmpl == "" {
		return nil, errors.New("GALE_TESTENV_DIR and GALE_E2E_TEMPLATE must be set: run the scenarios with scripts/e2e.sh (or inside scripts/testenv.sh)")
	}
	repo, err := repoRoot()
	if err != nil {
		return nil, err
	}
	e := &Env{
		Repo:     repo,
		Gale:     filepath.Join(repo, "bin", "gale"),
		Galed:    filepath.Join(repo, "bin", "galed"),
		Dir:      filepath.Join(state, "e2e"),
		StateDir: state,
	}
	for _, b := range []string{e.Gale, e.Galed} {
		if _, err := os.Stat(b); err != nil {
			return nil, fmt.Errorf("%v (build with `make build`)", err)
		}
	}
	// The directories must be traversable by the qemu user (disks, seeds)
	// and by the unprivileged caller of the import scenario (socket).
	for _, d := range []string{"", "images", "catalog", "import", "www", "work"} {
		if err := os.MkdirAll(filepath.Join(e.Dir, d), 0o755); err != nil {
			return nil, err
		}
		if err := os.Chmod(filepath.Join(e.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	// A private image directory holding a copy of the template, so nothing
	// the scenarios pull or import lands in the host's cache.
	e.Template = filepath.Join(e.Dir, "images", filepath.Base(tmpl))
	if out, err := exec.Command("cp", "--sparse=always", tmpl, e.Template).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("copy the template: %v: %s", err, out)
	}
	www := filepath.Join(e.Dir, "www")
	if e.WWW, err = NewFileServer(www, false); err != nil {
		return nil, err
	}
	if e.Cut, err = NewFileServer(www, true); err != nil {
		return nil, err
	}
	if err := writeCatalog(filepath.Join(e.Dir, "catalog"), e.WWW.URL, e.Cut.URL); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`socket: %[1]s/gale.sock
data_dir: %[1]s/data
image_dir: %[1]s/images
catalog_dir: %[2]s/images
user_catalog_dir: %[1]s/catalog
import_dir: %[1]s/import
max_image_size: 4G
libvirt_uri: qemu:///system
accel: auto
log_level: debug
metrics_interval: 2s
default_network:
  name: gale-default
  mode: isolated
  cidr: %[3]s
`, e.Dir, repo, bridgeCIDR)
	if err := os.WriteFile(filepath.Join(e.Dir, "galed.yaml"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	e.Daemon = &Daemon{Bin: e.Galed, Gale: e.Gale, Dir: e.Dir}
	if err := e.Daemon.Start(); err != nil {
		return nil, err
	}
	return e, nil
}

// repoRoot is the nearest directory above the working directory that holds
// go.mod (go test runs a package's tests in the package's directory).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Socket is the path of galed's unix socket.
func (e *Env) Socket() string { return filepath.Join(e.Dir, "gale.sock") }

// VMDir is the directory galed keeps VM name's files in.
func (e *Env) VMDir(name string) string { return filepath.Join(e.Dir, "data", "vms", name) }

// Daemon is the private galed: started with Dir/galed.yaml, its output
// appended to Dir/galed.log. Scenarios may stop and start it again.
type Daemon struct {
	Bin, Gale, Dir string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// LogPath is the file galed's output goes to, across restarts.
func (d *Daemon) LogPath() string { return filepath.Join(d.Dir, "galed.log") }

// Start starts galed and waits until `gale version` reaches it.
func (d *Daemon) Start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		return errors.New("galed is already running")
	}
	log, err := os.OpenFile(d.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(d.Bin, "--config", filepath.Join(d.Dir, "galed.yaml"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start galed: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	d.cmd, d.done = cmd, done
	for i := 0; i < 100; i++ {
		v := exec.Command(d.Gale, "version")
		v.Env = append(os.Environ(), "GALE_SOCKET="+filepath.Join(d.Dir, "gale.sock"))
		if v.Run() == nil {
			return nil
		}
		select {
		case <-done:
			d.cmd = nil
			return fmt.Errorf("galed exited at start; its log ends:\n%s", tailFile(d.LogPath(), 0, 50))
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("galed did not answer within 20 s; its log ends:\n%s", tailFile(d.LogPath(), 0, 50))
}

// Stop sends sig to galed (SIGTERM: graceful, SIGKILL: a crash) and waits
// until it has exited. It does nothing if galed is not running.
func (d *Daemon) Stop(sig syscall.Signal) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(90 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	d.cmd = nil
}

// Restart stops galed with sig and starts it again; it stops the test if
// galed does not come back.
func (d *Daemon) Restart(t testing.TB, sig syscall.Signal) {
	t.Helper()
	d.Stop(sig)
	if err := d.Start(); err != nil {
		t.Fatalf("restart galed: %v", err)
	}
}

// Result is the outcome of one command.
type Result struct {
	Args   []string
	Code   int // exit code; -1 if the command could not run or was killed
	Stdout string
	Stderr string
}

// Out is stdout and stderr together, trimmed: what a shell's $(cmd 2>&1) gives.
func (r Result) Out() string { return strings.TrimSpace(r.Stdout + r.Stderr) }

// String describes the command and the tail of its output, for failure messages.
func (r Result) String() string {
	out := r.Out()
	if lines := strings.Split(out, "\n"); len(lines) > 20 {
		out = strings.Join(lines[len(lines)-20:], "\n")
	}
	return fmt.Sprintf("`%s` exited %d; output:\n%s", strings.Join(r.Args, " "), r.Code, out)
}

// Has reports whether the output contains s.
func (r Result) Has(s string) bool { return strings.Contains(r.Stdout+r.Stderr, s) }

// HasWord reports whether the output contains w as a whole word (grep -w).
func (r Result) HasWord(w string) bool {
	return regexp.MustCompile(`\b` + regexp.QuoteMeta(w) + `\b`).MatchString(r.Stdout + r.Stderr)
}

// Matches reports whether the output matches the regular expression re.
func (r Result) Matches(re string) bool {
	return regexp.MustCompile(re).MatchString(r.Stdout + r.Stderr)
}

// S is one scenario's handle: the test, the environment, and the VMs whose
// logs go with a failure. Every check is an assertion on S: Expect (an exit
// code) or Check (a condition); both mark the scenario failed and go on.
type S struct {
	*testing.T
	Env *Env

	mu        sync.Mutex
	vms       []string
	logOffset int64
}

// begin makes the handle of the scenario running in t: it sets up the
// environment if needed, and on cleanup logs the scenario's duration and,
// if it failed, galed's log since it began, libvirtd's errors, and the
// serial console and cloud-init logs of the VMs it watched.
func begin(t *testing.T) *S {
	s := &S{T: t, Env: env(t)}
	if fi, err := os.Stat(s.Env.Daemon.LogPath()); err == nil {
		s.logOffset = fi.Size()
	}
	start := time.Now()
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs()
		}
		t.Logf("scenario %s took %s", t.Name(), time.Since(start).Round(100*time.Millisecond))
	})
	return s
}

// Watch adds VM name to those whose logs go with a failure of the scenario.
func (s *S) Watch(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.vms {
		if n == name {
			return
		}
	}
	s.vms = append(s.vms, name)
}

func (s *S) dumpLogs() {
	s.Logf("----- galed log during this scenario (last 120 lines) -----\n%s", tailFile(s.Env.Daemon.LogPath(), s.logOffset, 120))
	var errs []string
	for _, l := range strings.Split(tailFile(filepath.Join(s.Env.StateDir, "libvirtd.log"), 0, 5000), "\n") {
		if strings.Contains(l, " error : ") && !strings.Contains(l, "agent is not connected") &&
			!strings.Contains(l, "dmidecode") && !strings.Contains(l, "udevGetDMIData") && !strings.Contains(l, "virGDBusGetSystemBus") {
			errs = append(errs, l)
		}
	}
	if len(errs) > 40 {
		errs = errs[len(errs)-40:]
	}
	s.Logf("----- libvirtd log, errors (last 40) -----\n%s", strings.Join(errs, "\n"))
	for _, vm := range s.vms {
		s.Logf("----- serial console of %s (last 60 lines) -----\n%s", vm, tailFile(filepath.Join(s.Env.VMDir(vm), "console.log"), 0, 60))
		for _, f := range []string{"/var/log/cloud-init.log", "/var/log/cloud-init-output.log"} {
			r := s.galeCtx(30*time.Second, nil, "vm", "exec", vm, "--", "tail", "-n", "40", f)
			s.Logf("----- %s in %s (last 40 lines; exit %d) -----\n%s", f, vm, r.Code, r.Out())
		}
	}
}

// tailFile returns the last n lines of path from byte offset on, or why it
// cannot be read.
func tailFile(path string, offset int64, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err.Error()
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 2*n {
			lines = lines[len(lines)-n:]
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Gale runs the gale CLI against the private galed.
// It runs in the repository's root, so relative paths such as
// cloudinit/web-server.yaml name the repository's files.
func (s *S) Gale(args ...string) Result { return s.galeCtx(defaultTimeout, nil, args...) }

// defaultTimeout bounds one gale command; `go test -timeout` bounds the run.
const defaultTimeout = 15 * time.Minute

// GaleStdin runs the gale CLI with stdin.
func (s *S) GaleStdin(stdin io.Reader, args ...string) Result {
	return s.galeCtx(defaultTimeout, stdin, args...)
}

func (s *S) galeCtx(timeout time.Duration, stdin io.Reader, args ...string) Result {
	return s.Env.gale(timeout, stdin, args...)
}

// gale runs the gale CLI in the repository's root against the private galed.
func (e *Env) gale(timeout time.Duration, stdin io.Reader, args ...string) Result {
	return run(timeout, stdin, e.Repo, []string{"GALE_SOCKET=" + e.Socket()}, e.Gale, args...)
}

// run runs a program in dir with a timeout (killed when it passes) and extra
// environment variables.
func run(timeout time.Duration, stdin io.Reader, dir string, env []string, name string, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Args: append([]string{filepath.Base(name)}, args...), Stdout: stdout.String(), Stderr: stderr.String(), Code: 0}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.Code = exit.ExitCode()
	case err != nil:
		r.Code = -1
		r.Stderr += err.Error()
	}
	return r
}

// Expect runs gale with args and checks that it exits with want (one check,
// described by what). It returns the result for further checks.
func (s *S) Expect(what string, want int, args ...string) Result {
	s.Helper()
	r := s.Gale(args...)
	if r.Code != want {
		s.Errorf("%s: want exit %d; %s", what, want, r)
	}
	return r
}

// ExpectStdin is Expect with stdin.
func (s *S) ExpectStdin(what string, want int, stdin io.Reader, args ...string) Result {
	s.Helper()
	r := s.GaleStdin(stdin, args...)
	if r.Code != want {
		s.Errorf("%s: want exit %d; %s", what, want, r)
	}
	return r
}

// Must runs gale with args for a scenario's set-up and stops the scenario
// if it fails. It is not one of the scenario's checks.
func (s *S) Must(args ...string) Result {
	s.Helper()
	r := s.Gale(args...)
	if r.Code != 0 {
		s.Fatalf("set-up step failed: %s", r)
	}
	return r
}

// Check is one check: it marks the scenario failed with the message if ok
// is false, and returns ok.
func (s *S) Check(ok bool, format string, args ...any) bool {
	s.Helper()
	if !ok {
		s.Errorf(format, args...)
	}
	return ok
}

// Host runs a host program (virsh, qemu-img, ...) and returns its result.
func (s *S) Host(name string, args ...string) Result {
	return run(10*time.Minute, nil, "", nil, name, args...)
}

// MustHost runs a host program for set-up and stops the scenario if it fails.
func (s *S) MustHost(name string, args ...string) Result {
	s.Helper()
	r := s.Host(name, args...)
	if r.Code != 0 {
		s.Fatalf("set-up step failed: %s", r)
	}
	return r
}

// decode parses r's stdout as JSON into a T, and stops the test if it cannot.
func decode[T any](t testing.TB, r Result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil {
		t.Fatalf("decode the JSON output of %s: %v", r, err)
	}
	return v
}

// showJSON runs `gale NOUN show NAME -o json` and decodes it; it stops the
// scenario if that fails.
func showJSON[T any](s *S, noun, name string) T {
	s.Helper()
	return decode[T](s, s.Must(noun, "show", name, "-o", "json"))
}

// Eventually calls cond every interval until it returns true or timeout
// passes, and reports whether it returned true.
func Eventually(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

// Domains lists the namespace libvirtd's domains by name, sorted.
func (s *S) Domains() []string {
	s.Helper()
	r := s.MustHost("virsh", "list", "--all", "--name")
	var names []string
	for _, l := range strings.Split(r.Stdout, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			names = append(names, l)
		}
	}
	sort.Strings(names)
	return names
}

// HasDomain reports whether libvirtd has a domain called name.
func (s *S) HasDomain(name string) bool {
	for _, d := range s.Domains() {
		if d == name {
			return true
		}
	}
	return false
}

// Exists reports whether path exists (a dangling symlink counts).
func Exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// GetPage fetches http://IP/ of VM name, retrying every 2 s up to tries
// times (the address may change across a reboot), and returns the last
// body read.
func (s *S) GetPage(name string, tries int) string {
	client := &http.Client{Timeout: 5 * time.Second}
	var page string
	for i := 0; i < tries; i++ {
		if r := s.Gale("vm", "ip", name); r.Code == 0 {
			if resp, err := client.Get("http://" + strings.TrimSpace(r.Stdout) + "/"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				page = string(b)
				if resp.StatusCode == http.StatusOK {
					return page
				}
			}
		}
		if i+1 < tries {
			time.Sleep(2 * time.Second)
		}
	}
	return page
}

// CopySparse copies src to dst keeping holes (cp --sparse=always).
func (s *S) CopySparse(src, dst string) {
	s.Helper()
	s.MustHost("cp", "--sparse=always", src, dst)
}

// QemuSame reports whether two images have the same guest-visible content
// (qemu-img compare with explicit formats).
func (s *S) QemuSame(fmtA, a, fmtB, b string) Result {
	return s.Host("qemu-img", "compare", "-q", "-f", fmtA, "-F", fmtB, a, b)
}

// FileServer serves the files of a directory over HTTP on loopback and
// counts the GET requests of each path. With cut set, the first GET of each
// path without a Range header gets the headers and half the body, then the
// connection is closed, so that clients must resume; later requests honour
// "Range: bytes=N-" with 206 and an ETag.
type FileServer struct {
	URL string // http://127.0.0.1:PORT

	dir  string
	cut  bool
	srv  *http.Server
	mu   sync.Mutex
	hits map[string]int
	done map[string]bool // paths whose first download was cut
}

// NewFileServer starts a FileServer for dir on a free loopback port.
func NewFileServer(dir string, cut bool) (*FileServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	fs := &FileServer{URL: "http://" + l.Addr().String(), dir: dir, cut: cut, hits: map[string]int{}, done: map[string]bool{}}
	fs.srv = &http.Server{Handler: fs, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = fs.srv.Serve(l) }()
	return fs, nil
}

// Close stops the server.
func (fs *FileServer) Close() { _ = fs.srv.Close() }

// Hits is how many GET requests path ("/name") has had.
func (fs *FileServer) Hits(path string) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.hits[path]
}

// ServeHTTP implements http.Handler.
func (fs *FileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := path.Base(r.URL.Path)
	f, err := os.Open(filepath.Join(fs.dir, name))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	fs.mu.Lock()
	fs.hits[r.URL.Path]++
	cutNow := fs.cut && r.Header.Get("Range") == "" && !fs.done[r.URL.Path]
	if cutNow {
		fs.done[r.URL.Path] = true
	}
	fs.mu.Unlock()
	w.Header().Set("ETag", fmt.Sprintf(`"%x-%x"`, fi.Size(), fi.ModTime().Unix()))
	if !cutNow {
		http.ServeContent(w, r, name, fi.ModTime(), f)
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(fi.Size()))
	w.Header().Set("Accept-Ranges", "bytes")
	w.WriteHeader(http.StatusOK)
	_, _ = io.CopyN(w, f, fi.Size()/2)
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	// Abort: the server closes the connection with the body half sent.
	panic(http.ErrAbortHandler)
}

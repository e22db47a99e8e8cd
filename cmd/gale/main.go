// Command gale is the command-line client of galed, the gale VM manager
// daemon. It talks to galed only through pkg/client over galed's unix
// socket.
package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/client"
	"github.com/galevm/gale/pkg/version"
)

// deps are the parts of the outside world commands use besides the client,
// replaced in tests.
type deps struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// execve replaces the process with another program (ssh, virsh).
	execve func(path string, argv []string, env []string) error
	// lookPath finds a program in PATH.
	lookPath func(file string) (string, error)
	// pollInterval is how often `vm wait` asks galed about a VM.
	pollInterval time.Duration
}

func main() {
	d := deps{
		stdin:        os.Stdin,
		stdout:       os.Stdout,
		stderr:       os.Stderr,
		execve:       syscall.Exec,
		lookPath:     exec.LookPath,
		pollInterval: 2 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, newApp(d), os.Args)
	stop()
	os.Exit(code)
}

// run reorders args so flags may follow positional arguments, runs app and
// reports any error on app.ErrWriter. It returns the process exit code.
func run(ctx context.Context, app *cli.App, args []string) int {
	args, err := reorderArgs(app, args)
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	return reportError(app.ErrWriter, err, debugRequested(args))
}

// newApp builds the command tree.
func newApp(d deps) *cli.App {
	app := &cli.App{
		Name:                 "gale",
		Usage:                "create, run and delete VMs on this host through galed",
		Version:              version.Version,
		HideVersion:          true, // `gale version` also asks the daemon
		EnableBashCompletion: true,
		Reader:               d.stdin,
		Writer:               d.stdout,
		ErrWriter:            d.stderr,
		Description:          rootDescription,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:    "socket",
				Usage:   "path of galed's unix socket",
				EnvVars: []string{"GALE_SOCKET"},
				Value:   api.DefaultSocket,
			},
			&cli.BoolFlag{Name: "debug", Usage: "log every request to galed and the full error chain on stderr"},
		},
		Commands: []*cli.Command{
			vmCommand(d),
			networkCommand(),
			parentCommand(),
			setCommand(d),
			metricCommand(),
			imageCommand(d),
			versionCommand(),
			doctorCommand(),
			completionCommand(),
		},
		// Errors are reported and mapped to exit codes by run, not by cli.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
	}
	setUsageErrorHandlers(app.Commands)
	completeNames(app.Commands)
	return app
}

// rootDescription is the DESCRIPTION of `gale --help`.
const rootDescription = `gale talks to galed over its unix socket (--socket, $GALE_SOCKET).
Flags may be given before or after the arguments; everything after a literal
"--" is passed on untouched (gale vm exec web -- ls -la).

EXAMPLES:
   gale vm create web --image debian-12 --cpus 2 --memory 2G
   gale vm list -o json
   gale vm exec web -- systemctl status nginx
   gale vm ssh web
   gale vm delete web

EXIT CODES:
     0  success
     1  error (including a failed operation)
     2  usage error, or galed rejected the input as invalid
     3  not found
     4  conflict (already exists, or another operation holds the VM)
     5  galed unreachable (not running, wrong --socket, no permission)
     6  not enough host memory or disk (retry with --force)
     7  galed cannot reach libvirtd right now (retry later; see gale doctor)
     8  gave up waiting (--timeout)
   130  interrupted (the operation goes on in galed)
   gale vm exec exits with the guest command's exit code (128+N if killed by signal N).`

// clientFrom returns a client for the socket chosen by the global flags.
func clientFrom(c *cli.Context) *client.Client {
	var opts []client.Option
	if c.Bool("debug") {
		w := c.App.ErrWriter
		opts = append(opts, client.WithLogger(func(format string, args ...any) {
			fprintf(w, "debug: "+format+"\n", args...)
		}))
	}
	return client.New(c.String("socket"), opts...)
}

// debugRequested reports whether --debug is among args (before any "--").
func debugRequested(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--debug" || a == "-debug" || a == "--debug=true" {
			return true
		}
	}
	return false
}

package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// urfave/cli v2 stops parsing flags at the first positional argument and
// silently treats later flags as arguments (its issues #427, #976, #1177),
// so `gale vm create web --image debian-12` would lose --image. reorderArgs
// rewrites the command line before cli sees it:
//
//	gale [global flags] CMD... [command flags] -- [positionals] [args after --]
//
// Global flags (--socket, --debug) may appear anywhere before "--"; each
// command's flags anywhere after its name and before "--". Everything after
// a literal "--" stays positional. An unknown flag is an error, never an
// argument.

// flagSpec maps every name of a command's flags (without dashes) to whether
// the flag takes a value.
type flagSpec map[string]bool

// valueFlag is implemented by cli flags that may take a value.
type valueFlag interface{ TakesValue() bool }

// specOf returns the spec of flags plus the help flag cli adds.
func specOf(flags []cli.Flag, withHelp bool) flagSpec {
	spec := flagSpec{}
	for _, f := range flags {
		takes := true
		if vf, ok := f.(valueFlag); ok {
			takes = vf.TakesValue()
		}
		for _, n := range f.Names() {
			spec[n] = takes
		}
	}
	if withHelp {
		spec["help"], spec["h"] = false, false
	}
	return spec
}

// isFlag reports whether arg looks like a flag ("-" alone is stdin).
func isFlag(arg string) bool { return len(arg) > 1 && arg[0] == '-' }

// flagName returns the name of flag arg without dashes or "=value", and
// whether it carries its value inline.
func flagName(arg string) (name string, inline bool) {
	name = strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-")
	name, _, inline = strings.Cut(name, "=")
	return name, inline
}

// reorderArgs moves flags before positional arguments as described above.
// It leaves args alone when they do not name a leaf command (help, a noun
// on its own, an unknown command: cli reports those) and during shell
// completion.
func reorderArgs(app *cli.App, args []string) ([]string, error) {
	if len(args) < 2 {
		return args, nil
	}
	for _, a := range args {
		if a == "--generate-bash-completion" {
			return args, nil
		}
	}
	global := specOf(app.Flags, !app.HideHelp)
	var globals, path []string
	cmds := app.Commands
	var leaf *cli.Command
	i := 1
	for leaf == nil && i < len(args) {
		a := args[i]
		if a == "--" {
			return args, nil
		}
		if isFlag(a) {
			name, inline := flagName(a)
			takes, ok := global[name]
			if !ok {
				return nil, &usageError{cmd: app.Name, err: fmt.Errorf(
					"unknown flag %s before the command: command flags go after the command name (e.g. gale vm list -o json)", a)}
			}
			n, err := takeFlag(&globals, args, i, takes && !inline, app.Name)
			if err != nil {
				return nil, err
			}
			i += n
			continue
		}
		cmd := findCommand(cmds, a)
		if cmd == nil {
			return args, nil // help, or an unknown command cli reports
		}
		path = append(path, a)
		i++
		if len(cmd.Subcommands) == 0 {
			leaf = cmd
		}
		cmds = cmd.Subcommands
	}
	if leaf == nil {
		return args, nil
	}

	cmdName := app.Name + " " + strings.Join(path, " ")
	local := specOf(leaf.Flags, !leaf.HideHelp)
	var flags, pos []string
	for i < len(args) {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !isFlag(a) {
			pos = append(pos, a)
			i++
			continue
		}
		name, inline := flagName(a)
		dst := &flags
		takes, ok := local[name]
		if !ok {
			if takes, ok = global[name]; ok {
				dst = &globals
			}
		}
		if !ok {
			err := fmt.Errorf("unknown flag %s for '%s'", a, cmdName)
			if len(pos) > 0 && takesCommand(leaf) {
				err = fmt.Errorf("%w; put the command for the guest after \"--\": %s NAME -- COMMAND %s", err, cmdName, a)
			}
			return nil, &usageError{cmd: cmdName, err: err}
		}
		n, err := takeFlag(dst, args, i, takes && !inline, cmdName)
		if err != nil {
			return nil, err
		}
		i += n
	}
	out := append([]string{args[0]}, globals...)
	out = append(out, path...)
	out = append(out, flags...)
	if len(pos) > 0 {
		out = append(out, "--")
		out = append(out, pos...)
	}
	return out, nil
}

// takeFlag appends the flag at args[i], and its value when wantValue, to
// dst and returns how many arguments it used.
func takeFlag(dst *[]string, args []string, i int, wantValue bool, cmdName string) (int, error) {
	if !wantValue {
		*dst = append(*dst, args[i])
		return 1, nil
	}
	if i+1 >= len(args) || args[i+1] == "--" {
		return 0, &usageError{cmd: cmdName, err: fmt.Errorf("flag %s needs a value", args[i])}
	}
	*dst = append(*dst, args[i], args[i+1])
	return 2, nil
}

// findCommand returns the command in cmds called name (or an alias).
func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// takesCommand reports whether cmd runs a command given after its NAME
// (vm exec, vm ssh), so an unknown flag is likely meant for that command.
func takesCommand(cmd *cli.Command) bool {
	return cmd.Name == "exec" || cmd.Name == "ssh"
}

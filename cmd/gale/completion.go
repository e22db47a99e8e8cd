package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/galevm/gale/pkg/api"
)

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: `EXAMPLES:
   source <(gale completion bash)                      # this shell
   gale completion bash | sudo tee /etc/bash_completion.d/gale
   gale completion zsh > "${fpath[1]}/_gale"
   gale completion fish > ~/.config/fish/completions/gale.fish`,
		Action: func(c *cli.Context) error {
			shell, err := nameArg(c)
			if err != nil {
				return usageErrorf(c, "want a shell: gale completion bash|zsh|fish")
			}
			switch shell {
			case "bash":
				fprintf(c.App.Writer, "%s", strings.ReplaceAll(bashCompletion, "PROG", c.App.Name))
			case "zsh":
				fprintf(c.App.Writer, "%s", strings.ReplaceAll(zshCompletion, "PROG", c.App.Name))
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return fmt.Errorf("fish completion: %w", err)
				}
				fprintf(c.App.Writer, "%s", s)
			default:
				return usageErrorf(c, "unknown shell %q: want bash, zsh or fish", shell)
			}
			return nil
		},
	}
}

// bashCompletion asks gale itself for completions (urfave/cli's
// --generate-bash-completion).
const bashCompletion = `# bash completion for PROG
_PROG_complete() {
  local cur words
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  words=("${COMP_WORDS[@]:0:$COMP_CWORD}")
  local opts
  if [[ "$cur" == -* ]]; then
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
  return 0
}
complete -o bashdefault -o default -F _PROG_complete PROG
`

// zshCompletion is the zsh counterpart of bashCompletion.
const zshCompletion = `#compdef PROG
_PROG_complete() {
  local -a opts
  local cur=${words[-1]}
  if [[ "$cur" == -* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _PROG_complete PROG
`

// lister returns the names of what list returns, or none on error.
func lister[T any](list func(*cli.Context) ([]T, error), name func(T) string) func(*cli.Context) []string {
	return func(c *cli.Context) []string {
		items, err := list(c)
		if err != nil {
			return nil
		}
		names := make([]string, 0, len(items))
		for _, it := range items {
			names = append(names, name(it))
		}
		return names
	}
}

// completeNames makes `gale vm`, `gale image` and `gale parent` subcommands that take a
// NAME complete it from galed (VM names, image names) when the shell asks
// (--generate-bash-completion); flags still complete as before. Nothing is
// printed when galed cannot be reached.
func completeNames(cmds []*cli.Command) {
	for _, group := range cmds {
		var list func(c *cli.Context) []string
		switch group.Name {
		case "vm":
			list = lister(func(c *cli.Context) ([]api.VM, error) { return clientFrom(c).ListVMs(c.Context) }, func(v api.VM) string { return v.Name })
		case "image":
			list = lister(func(c *cli.Context) ([]api.Image, error) { return clientFrom(c).ListImages(c.Context) }, func(i api.Image) string { return i.Name })
		case "set":
			list = lister(func(c *cli.Context) ([]api.ScaleSet, error) { return clientFrom(c).ListSets(c.Context) }, func(s api.ScaleSet) string { return s.Name })
		case "parent":
			list = lister(func(c *cli.Context) ([]api.Parent, error) { return clientFrom(c).ListParents(c.Context) }, func(p api.Parent) string { return p.Name })
		default:
			continue
		}
		for _, sub := range group.Subcommands {
			if !strings.HasPrefix(sub.ArgsUsage, "NAME") || sub.Name == "create" {
				continue // create takes a new name
			}
			sub.BashComplete = func(c *cli.Context) {
				args := os.Args
				if n := len(args); n >= 2 && strings.HasPrefix(args[n-2], "-") {
					cli.DefaultCompleteWithFlags(c.Command)(c)
					return
				}
				if c.NArg() > 0 {
					return // the name is there already
				}
				for _, name := range list(c) {
					fprintf(c.App.Writer, "%s\n", name)
				}
			}
		}
	}
}

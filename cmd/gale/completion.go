package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
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

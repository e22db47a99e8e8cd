package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/galevm/gale/pkg/disk"
)

// Output formats of --output.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// outputFlag is the --output/-o flag of every listing and show command.
func outputFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    "output",
		Aliases: []string{"o"},
		Usage:   "output format: table, json or yaml",
		Value:   formatTable,
		// Checked before the command talks to galed.
		Action: func(c *cli.Context, f string) error {
			_, err := outputFormat(c)
			return err
		},
	}
}

// outputFormat returns the validated --output of c.
func outputFormat(c *cli.Context) (string, error) {
	switch f := c.String("output"); f {
	case formatTable, formatJSON, formatYAML:
		return f, nil
	default:
		return "", usageErrorf(c, "unknown output format %q: use table, json or yaml", f)
	}
}

// printData writes v as JSON or YAML per format, or calls table for the
// table format.
func printData(c *cli.Context, v any, table func(w io.Writer)) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	w := c.App.Writer
	switch format {
	case formatJSON:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("encode JSON: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case formatYAML:
		return writeYAML(w, v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// writeYAML writes v as YAML with the same field names and order as its
// JSON form (the api types carry only json tags).
func writeYAML(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode YAML: %w", err)
	}
	var node yaml.Node
	if err := yaml.Unmarshal(b, &node); err != nil {
		return fmt.Errorf("encode YAML: %w", err)
	}
	blockStyle(&node)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&node); err != nil {
		return fmt.Errorf("encode YAML: %w", err)
	}
	return enc.Close()
}

// blockStyle clears the flow and quoting styles JSON input leaves on n.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// row writes tab-separated cells as one table line.
func row(w io.Writer, cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = fmt.Sprint(c)
	}
	fprintf(w, "%s\n", strings.Join(s, "\t"))
}

// orDash returns s, or "-" when s is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// size formats bytes as gale's sizes are typed ("10G"), "-" for zero.
func size(n int64) string {
	if n <= 0 {
		return "-"
	}
	return disk.FormatSize(n)
}

// humanSize formats a measured size (an image on disk) for people, "-"
// for zero.
func humanSize(n int64) string {
	if n <= 0 {
		return "-"
	}
	return disk.HumanSize(n)
}

// age formats how long ago t was, coarsely ("3m", "2h", "5d").
func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// seconds formats d with one decimal of seconds ("42.3s").
func seconds(d time.Duration) string {
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

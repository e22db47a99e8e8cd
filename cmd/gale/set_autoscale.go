package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/autoscale"
)

// setAutoscaleCommand is `gale set autoscale`.
func setAutoscaleCommand() *cli.Command {
	return &cli.Command{
		Name: "autoscale", Usage: "grow and shrink a set with its metrics and on a schedule", ArgsUsage: "NAME",
		Description: `Autoscale settings are profiles (a default one, recurring ones by cron with a
time zone, fixed-date ones) with a capacity range and rules on the instances'
metrics (cpu_percent, net_in_bytes_per_s, net_out_bytes_per_s,
disk_read_bytes_per_s, disk_write_bytes_per_s, memory_used_bytes). A set
scales out when any scale-out rule fires, in when all scale-in rules fire,
never outside the range, with a cooldown after each action, and never scales
in when the estimate says it would have to scale out again. Every decision,
and why nothing happens, is in gale set activity.

EXAMPLES:
   gale set autoscale web --cpu-out 70 --cpu-in 30 --min 1 --max 6 --window 5m --cooldown 5m
   gale set autoscale web -f rules.yaml
   gale set autoscale web --show [-o json]
   gale set autoscale web --explain      # what it would do now, and why
   gale set autoscale web --disable | --enable`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "settings `FILE` (YAML or JSON), or - for stdin"},
			&cli.BoolFlag{Name: "show", Usage: "show the settings, the state and the latest decision"},
			&cli.BoolFlag{Name: "explain", Usage: "evaluate now and say what would happen, and why (nothing changes)"},
			&cli.BoolFlag{Name: "enable", Usage: "turn the set's settings on"},
			&cli.BoolFlag{Name: "disable", Usage: "turn the set's settings off (gale set scale works again)"},
			&cli.Float64Flag{Name: "cpu-out", Usage: "one-liner: add an instance when the average CPU % is above this"},
			&cli.Float64Flag{Name: "cpu-in", Usage: "one-liner: remove one when it is below this"},
			&cli.IntFlag{Name: "min", Usage: "one-liner: fewest instances", Value: 1},
			&cli.IntFlag{Name: "max", Usage: "one-liner: most instances"},
			&cli.DurationFlag{Name: "window", Usage: "one-liner: the time window the average is over", DefaultText: "5m"},
			&cli.DurationFlag{Name: "grain", Usage: "one-liner: the time grain within the window", DefaultText: "1m, or what divides the window"},
			&cli.DurationFlag{Name: "cooldown", Usage: "one-liner: wait after each action", DefaultText: "5m"},
			outputFlag(),
		},
		Action: func(c *cli.Context) error {
			name, err := nameArg(c)
			if err != nil {
				return err
			}
			cl := clientFrom(c)
			var v *api.AutoscaleView
			switch {
			case c.IsSet("file"):
				b, err := readFileOrStdin(c.String("file"), os.Stdin)
				if err != nil {
					return fmt.Errorf("--file: %w", err)
				}
				var s autoscale.Settings
				if err := yaml.Unmarshal(b, &s); err != nil {
					return usageErrorf(c, "--file %s: %w", c.String("file"), err)
				}
				v, err = cl.SetAutoscale(c.Context, name, s)
				if err != nil {
					return fmt.Errorf("autoscale set %s: %w", name, err)
				}
			case c.IsSet("cpu-out") || c.IsSet("cpu-in"):
				if !c.IsSet("cpu-out") || !c.IsSet("cpu-in") || !c.IsSet("max") {
					return usageErrorf(c, "the one-liner needs --cpu-out, --cpu-in and --max (and --min, default 1)")
				}
				s := autoscale.OneLiner(c.Float64("cpu-out"), c.Float64("cpu-in"), c.Int("min"), c.Int("max"), c.Duration("window"), c.Duration("cooldown"))
				if g := c.Duration("grain"); g > 0 {
					for i := range s.Profiles[0].Rules {
						s.Profiles[0].Rules[i].TimeGrain = autoscale.Duration(g)
					}
				}
				v, err = cl.SetAutoscale(c.Context, name, s)
				if err != nil {
					return fmt.Errorf("autoscale set %s: %w", name, err)
				}
			case c.Bool("enable") || c.Bool("disable"):
				if c.Bool("enable") && c.Bool("disable") {
					return usageErrorf(c, "--enable or --disable, not both")
				}
				v, err = cl.EnableAutoscale(c.Context, name, c.Bool("enable"))
				if err != nil {
					return fmt.Errorf("autoscale set %s: %w", name, err)
				}
			case c.Bool("show") || c.Bool("explain"):
				v, err = cl.Autoscale(c.Context, name, c.Bool("explain"))
				if err != nil {
					return fmt.Errorf("autoscale of set %s: %w", name, err)
				}
			default:
				return usageErrorf(c, "say what to do: -f FILE, the --cpu-out/--cpu-in one-liner, --show, --explain, --enable or --disable")
			}
			return printData(c, v, func(w io.Writer) { showAutoscale(w, v) })
		},
	}
}

func showAutoscale(w io.Writer, v *api.AutoscaleView) {
	fprintf(w, "Enabled:   %v\n", v.Settings.Enabled)
	for _, p := range v.Settings.Profiles {
		when := "default"
		switch {
		case p.Recurrence != nil:
			when = fmt.Sprintf("recurring %q %s", p.Recurrence.Schedule, p.Recurrence.TimeZone)
		case p.FixedDate != nil:
			when = fmt.Sprintf("from %s to %s", p.FixedDate.Start.Format(time.RFC3339), p.FixedDate.End.Format(time.RFC3339))
		}
		fprintf(w, "Profile:   %s (%s): min %d, max %d, default %d\n", p.Name, when, p.Capacity.Min, p.Capacity.Max, p.Capacity.Default)
		for i, r := range p.Rules {
			r = r.WithDefaults()
			fprintf(w, "  rule %d:  %s %s %s %g over %s (grain %s, %s) -> %s %d (%s), cooldown %s\n", i+1, r.Metric, r.Statistic, r.Operator, r.Threshold,
				r.TimeWindow, r.TimeGrain, r.TimeAggregation, r.Direction, r.Value, r.ChangeType, r.Cooldown)
		}
	}
	if !v.State.CooldownUntil.IsZero() {
		fprintf(w, "Cooldown:  until %s (after %s at %s)\n", v.State.CooldownUntil.Local().Format("15:04:05"), v.State.LastAction, v.State.LastActionAt.Local().Format("15:04:05"))
	}
	for label, d := range map[string]*autoscale.Decision{"Latest": v.Last, "Now": v.Explain} {
		if d == nil {
			continue
		}
		fprintf(w, "%-10s %s %d->%d: %s\n", label+":", d.Action, d.From, d.To, d.Reason)
		for _, r := range d.Rules {
			fprintf(w, "  rule %d:  %s = %.2f fired %v\n", r.Rule, r.Text, r.Value, r.Fired)
		}
	}
}

// setMetricsCommand is `gale set metrics`.
func setMetricsCommand() *cli.Command {
	return &cli.Command{
		Name: "metrics", Usage: "the instances' metrics over a recent period", ArgsUsage: "NAME",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "since", Usage: "the period, ending now", Value: 10 * time.Minute},
			outputFlag(),
		},
		Action: func(c *cli.Context) error {
			name, err := nameArg(c)
			if err != nil {
				return err
			}
			m, err := clientFrom(c).SetMetrics(c.Context, name, c.Duration("since"))
			if err != nil {
				return fmt.Errorf("metrics of set %s: %w", name, err)
			}
			return printData(c, m, func(w io.Writer) {
				var names []string
				for k := range m.Set {
					names = append(names, k)
				}
				sort.Strings(names)
				row(w, append([]any{"INSTANCE"}, upper(names)...)...)
				for _, in := range m.Instances {
					cells := []any{in.Name}
					for _, k := range names {
						if s, ok := in.Metrics[k]; ok {
							cells = append(cells, fmt.Sprintf("%.1f (avg %.1f)", s.Last, s.Avg))
						} else {
							cells = append(cells, "-")
						}
					}
					row(w, cells...)
				}
				cells := []any{"(set avg)"}
				for _, k := range names {
					cells = append(cells, fmt.Sprintf("%.1f", m.Set[k]))
				}
				row(w, cells...)
			})
		},
	}
}

func upper(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = strings.ToUpper(s)
	}
	return out
}

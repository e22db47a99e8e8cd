package main

import (
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/galevm/gale/pkg/api"
)

// metricCommand is `gale metric`: custom metrics and galed's Prometheus text.
func metricCommand() *cli.Command {
	return &cli.Command{
		Name:   "metric",
		Usage:  "custom metrics for autoscale rules, and galed's metrics in Prometheus format",
		Action: unknownSubcommand,
		Subcommands: []*cli.Command{
			{
				Name: "put", Usage: "record one value of a VM's custom metric (custom.NAME)", ArgsUsage: "VM METRIC VALUE",
				Description: `Autoscale rules of the VM's set can use the metric by its name.

EXAMPLES:
   gale metric put web-0 custom.queue_depth 42`,
				Action: func(c *cli.Context) error {
					if c.NArg() != 3 {
						return usageErrorf(c, "want VM METRIC VALUE: gale metric put web-0 custom.queue_depth 42")
					}
					v, err := strconv.ParseFloat(c.Args().Get(2), 64)
					if err != nil {
						return usageErrorf(c, "value %q is not a number", c.Args().Get(2))
					}
					m := api.MetricPut{VM: c.Args().Get(0), Metric: c.Args().Get(1), Value: v}
					if err := clientFrom(c).PutMetric(c.Context, m); err != nil {
						return fmt.Errorf("put metric %s of %s: %w", m.Metric, m.VM, err)
					}
					return nil
				},
			},
			{
				Name: "show", Usage: "print galed's metrics in Prometheus text format (GET /metrics)",
				Action: func(c *cli.Context) error {
					text, err := clientFrom(c).Prometheus(c.Context)
					if err != nil {
						return fmt.Errorf("metrics: %w", err)
					}
					fprintf(c.App.Writer, "%s", text)
					return nil
				},
			},
		},
	}
}

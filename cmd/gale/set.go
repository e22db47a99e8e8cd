package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/client"
	"github.com/galevm/gale/pkg/disk"
)

// setCommand is `gale set`: scale sets.
func setCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:   "set",
		Usage:  "scale sets: identical VMs of one model behind a load balancer, kept healthy",
		Action: unknownSubcommand,
		Description: `A scale set keeps CAPACITY instances of one model (image, size, cloud-init)
running, made as clones of the model's saved parent. A load balancer in the
kernel (nftables) sends connections to a frontend address and port to the
healthy instances; a health probe decides which are healthy; unhealthy ones
are repaired; a new model version rolls out in batches. See docs/scalesets.md.`,
		Subcommands: []*cli.Command{
			setCreateCommand(d),
			{
				Name: "list", Aliases: []string{"ls"}, Usage: "list scale sets",
				Flags: []cli.Flag{outputFlag()},
				Action: func(c *cli.Context) error {
					sets, err := clientFrom(c).ListSets(c.Context)
					if err != nil {
						return fmt.Errorf("list sets: %w", err)
					}
					if sets == nil {
						sets = []api.ScaleSet{}
					}
					return printData(c, sets, func(w io.Writer) {
						row(w, "NAME", "STATE", "CAPACITY", "INSTANCES", "HEALTHY", "VERSION", "LB")
						for _, s := range sets {
							row(w, s.Name, s.State, s.Capacity, s.Instances, s.Healthy, fmt.Sprintf("%d (%d on it)", s.Version, s.Latest), orDash(lbText(s.LB)))
						}
					})
				},
			},
			{
				Name: "show", Usage: "show a scale set", ArgsUsage: "NAME",
				Flags: []cli.Flag{outputFlag()},
				Action: func(c *cli.Context) error {
					name, err := nameArg(c)
					if err != nil {
						return err
					}
					s, err := clientFrom(c).GetSet(c.Context, name)
					if err != nil {
						return fmt.Errorf("show set %s: %w", name, err)
					}
					return printData(c, s, func(w io.Writer) { showSet(w, s) })
				},
			},
			{
				Name: "instances", Usage: "list a set's instances with version, health and protection", ArgsUsage: "NAME",
				Flags: []cli.Flag{outputFlag()},
				Action: func(c *cli.Context) error {
					name, err := nameArg(c)
					if err != nil {
						return err
					}
					insts, err := clientFrom(c).SetInstances(c.Context, name)
					if err != nil {
						return fmt.Errorf("instances of set %s: %w", name, err)
					}
					return printData(c, insts, func(w io.Writer) {
						row(w, "NAME", "VERSION", "STATE", "HEALTH", "PROTECT", "ADDRESS", "MADE", "AGE", "DETAIL")
						for _, in := range insts {
							v := strconv.Itoa(in.Version)
							if in.Latest {
								v += " (latest)"
							}
							row(w, in.Name, v, orDash(in.State), in.Health, orDash(strings.Join(in.Protect, ",")), orDash(in.Address), orDash(in.Made), age(in.CreatedAt), orDash(in.Detail))
						}
					})
				},
			},
			{
				Name: "scale", Usage: "set a set's capacity and wait until it is reached", ArgsUsage: "NAME CAPACITY",
				Description: `Instances are added (clones of the model) or removed by the set's scale-in
policy; protected instances are never removed by a scale-in.

EXAMPLES:
   gale set scale web 5
   gale set scale web 2 --no-wait`,
				Flags: waitFlags(),
				Action: func(c *cli.Context) error {
					if c.NArg() != 2 {
						return usageErrorf(c, "want NAME CAPACITY: gale set scale web 5")
					}
					name := c.Args().Get(0)
					n, err := strconv.Atoi(c.Args().Get(1))
					if err != nil {
						return usageErrorf(c, "capacity %q is not a number", c.Args().Get(1))
					}
					cl := clientFrom(c)
					s, err := cl.ScaleSet(c.Context, name, n)
					if err != nil {
						return fmt.Errorf("scale set %s: %w", name, err)
					}
					return waitSet(c, cl, s.Name, converged)
				},
			},
			setUpdateCommand(d),
			{
				Name: "upgrade", Usage: "move instances to the latest model version in rolling batches", ArgsUsage: "NAME",
				Description: `Each batch: new instances of the latest version are made (with --surge, before
the old ones go), must become healthy, then the old ones leave the load
balancer, drain and are deleted. A batch whose new instances do not become
healthy is rolled back and the upgrade stops; the set keeps serving.

EXAMPLES:
   gale set upgrade web
   gale set upgrade web --batch 34% --surge 1 --pause 10s
   gale set upgrade web --cancel`,
				Flags: append(upgradeFlags(), append(waitFlags(), &cli.BoolFlag{Name: "cancel", Usage: "stop the upgrade in progress after its current batch"})...),
				Action: func(c *cli.Context) error {
					name, err := nameArg(c)
					if err != nil {
						return err
					}
					pol, err := upgradePolicy(c)
					if err != nil {
						return err
					}
					cl := clientFrom(c)
					s, err := cl.UpgradeSet(c.Context, name, api.UpgradeRequest{Cancel: c.Bool("cancel"), Policy: pol})
					if err != nil {
						return fmt.Errorf("upgrade set %s: %w", name, err)
					}
					if c.Bool("cancel") {
						fprintf(c.App.Writer, "upgrade of %s stops after its current batch\n", name)
						return nil
					}
					return waitSet(c, cl, s.Name, upgraded)
				},
			},
			setInstanceCommand(),
			setAutoscaleCommand(),
			setMetricsCommand(),
			{
				Name: "activity", Usage: "what the set's controller did, and why", ArgsUsage: "NAME",
				Flags: []cli.Flag{outputFlag(), &cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new records"}},
				Action: func(c *cli.Context) error {
					name, err := nameArg(c)
					if err != nil {
						return err
					}
					cl := clientFrom(c)
					if c.Bool("follow") {
						format, err := outputFormat(c)
						if err != nil {
							return err
						}
						return cl.FollowSetActivity(c.Context, name, 0, func(a api.Activity) error {
							if format == formatJSON {
								return printData(c, a, nil)
							}
							fprintf(c.App.Writer, "%s\n", activityLine(a))
							return nil
						})
					}
					acts, err := cl.SetActivity(c.Context, name, 0)
					if err != nil {
						return fmt.Errorf("activity of set %s: %w", name, err)
					}
					return printData(c, acts, func(w io.Writer) {
						for _, a := range acts {
							fprintf(w, "%s\n", activityLine(a))
						}
					})
				},
			},
			{
				Name: "delete", Aliases: []string{"rm"}, Usage: "delete a set, its instances and its load balancer", ArgsUsage: "NAME",
				Flags: waitFlags(),
				Action: func(c *cli.Context) error {
					name, err := nameArg(c)
					if err != nil {
						return err
					}
					cl := clientFrom(c)
					if _, err := cl.DeleteSet(c.Context, name); err != nil {
						return fmt.Errorf("delete set %s: %w", name, err)
					}
					return waitSet(c, cl, name, nil)
				},
			},
		},
	}
}

func waitFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "no-wait", Usage: "return at once; follow with gale set activity -f"},
		&cli.DurationFlag{Name: "timeout", Usage: "give up waiting after this long (the work goes on in galed)", DefaultText: "no limit"},
	}
}

func upgradeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "batch", Usage: "instances per batch: a count (2) or a share of the capacity (34%)", DefaultText: "20%"},
		&cli.StringFlag{Name: "max-unhealthy", Usage: "share of the set (e.g. 20%) that may be unhealthy before a batch starts", DefaultText: "20%"},
		&cli.StringFlag{Name: "max-unhealthy-upgraded", Usage: "share of a batch's new instances (e.g. 50%) that may fail health before it is rolled back", DefaultText: "0%"},
		&cli.DurationFlag{Name: "pause", Usage: "pause between batches"},
		&cli.IntFlag{Name: "surge", Usage: "extra instances made before old ones go (0: replace in place)"},
	}
}

func upgradePolicy(c *cli.Context) (api.UpgradePolicy, error) {
	p := api.UpgradePolicy{Batch: c.String("batch"), Pause: api.Duration(c.Duration("pause")), Surge: c.Int("surge")}
	if p.Surge < 0 || p.Pause < 0 {
		return p, usageErrorf(c, "--surge and --pause must not be negative")
	}
	var err error
	if p.MaxUnhealthy, err = percent(c, "max-unhealthy"); err != nil {
		return p, err
	}
	if p.MaxUnhealthyUpgraded, err = percent(c, "max-unhealthy-upgraded"); err != nil {
		return p, err
	}
	return p, nil
}

// percent reads flag name as a percentage, "20%" or "20" (0 when unset).
func percent(c *cli.Context, name string) (int, error) {
	v := c.String(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(v, "%"))
	if err != nil || n < 0 || n > 100 {
		return 0, usageErrorf(c, "--%s %q: want a percentage 0%%-100%%, e.g. 20%%", name, v)
	}
	return n, nil
}

func setCreateCommand(d deps) *cli.Command {
	return &cli.Command{
		Name: "create", Usage: "create a scale set and wait until its instances are healthy", ArgsUsage: "NAME",
		Description: `The first instance of a model saves its parent (one cold boot); the others are
clones, ready in seconds. Instances are named NAME-0, NAME-1, ... and read
their set, name and model version from /var/lib/gale/instance.json.

--lb [ADDR:]FRONT:BACK[/udp] (repeatable): connections to ADDR:FRONT go to an
instance's BACK port. ADDR defaults to the set network's host address.
--probe tcp:PORT | http:PORT/PATH[,interval=5s,timeout=2s,healthy=2,unhealthy=2].

EXAMPLES:
   gale set create web --image debian-12 --cpus 1 --memory 1G --cloud-init cloudinit/web-server.yaml \
       --capacity 3 --lb 8080:80 --probe http:80/ --repair replace --grace 60s
   gale set create workers --image debian-12 --capacity 2`,
		Flags: append(append([]cli.Flag{
			&cli.StringFlag{Name: "image", Usage: "image of the model (see gale image list)"},
			&cli.IntFlag{Name: "cpus", Usage: "virtual CPUs per instance", DefaultText: "1"},
			&cli.StringFlag{Name: "memory", Usage: "memory per instance, e.g. 1G", DefaultText: "from the image"},
			&cli.StringFlag{Name: "disk", Usage: "disk size per instance", DefaultText: "from the image"},
			&cli.StringFlag{Name: "cloud-init", Usage: "cloud-init user-data `FILE` of the model, or - for stdin"},
			&cli.StringFlag{Name: "network", Usage: "network of the instances", DefaultText: "galed's default network"},
			&cli.IntFlag{Name: "capacity", Usage: "number of instances", Value: 1},
			&cli.IntFlag{Name: "max-capacity", Usage: "largest capacity a scale may ask for", DefaultText: "the host's memory"},
			&cli.StringSliceFlag{Name: "lb", Usage: "load-balancer `RULE`: [ADDR:]FRONT:BACK[/udp], e.g. 8080:80 (repeatable)"},
			&cli.StringFlag{Name: "lb-mode", Usage: "distribution: hash (5-tuple), sourceip (affinity) or roundrobin", Value: "hash"},
			&cli.StringFlag{Name: "probe", Usage: "health probe, e.g. http:80/ or tcp:22"},
			&cli.StringFlag{Name: "repair", Usage: "automatic repair of unhealthy instances: none, restart, reimage or replace", Value: api.RepairNone},
			&cli.DurationFlag{Name: "grace", Usage: "time after an instance is made or repaired before it may be repaired", DefaultText: "60s"},
			&cli.StringFlag{Name: "scale-in", Usage: "which instances a scale-in removes: default, oldest or newest", Value: api.ScaleInDefault},
			&cli.StringFlag{Name: "upgrade-policy", Usage: "manual, automatic or rolling", Value: api.UpgradeManual},
			&cli.DurationFlag{Name: "drain", Usage: "how long a leaving instance keeps its connections", DefaultText: "30s"},
			&cli.DurationFlag{Name: "terminate-notice", Usage: "run the guest's /var/lib/gale/hooks/terminate for at most this long before deleting an instance"},
		}, upgradeFlags()...), waitFlags()...),
		Action: func(c *cli.Context) error {
			name, err := nameArg(c)
			if err != nil {
				return err
			}
			req, err := setCreateRequest(c, d.stdin, name)
			if err != nil {
				return err
			}
			cl := clientFrom(c)
			s, err := cl.CreateSet(c.Context, req)
			if err != nil {
				return fmt.Errorf("create set %s: %w", name, err)
			}
			fprintf(c.App.Writer, "set %s: capacity %d%s\n", s.Name, s.Capacity, lbSuffix(s.LB))
			return waitSet(c, cl, s.Name, converged)
		},
	}
}

func setCreateRequest(c *cli.Context, stdin io.Reader, name string) (api.CreateSetRequest, error) {
	req := api.CreateSetRequest{Name: name, Capacity: c.Int("capacity"), Probe: c.String("probe")}
	m := api.SetModel{Image: c.String("image"), CPUs: c.Int("cpus"), Network: c.String("network")}
	if m.Image == "" {
		return req, usageErrorf(c, "missing --image: gale set create %s --image debian-12", name)
	}
	var err error
	if m.MemoryMiB, err = memoryMiB(c); err != nil {
		return req, err
	}
	if s := c.String("disk"); s != "" {
		n, err := disk.ParseSize(s)
		if err != nil {
			return req, usageErrorf(c, "--disk: %w", err)
		}
		m.DiskBytes = n
	}
	if f := c.String("cloud-init"); f != "" {
		b, err := readFileOrStdin(f, stdin)
		if err != nil {
			return req, fmt.Errorf("--cloud-init: %w", err)
		}
		m.UserData = b
	}
	req.Model = m
	for _, s := range c.StringSlice("lb") {
		r, err := parseLBRule(s)
		if err != nil {
			return req, usageErrorf(c, "--lb %q: %w", s, err)
		}
		r.Mode = c.String("lb-mode")
		req.LB = append(req.LB, r)
	}
	pol, err := upgradePolicy(c)
	if err != nil {
		return req, err
	}
	pol.Mode = c.String("upgrade-policy")
	req.Policy = api.SetPolicy{Repair: c.String("repair"), Grace: api.Duration(c.Duration("grace")), ScaleIn: c.String("scale-in"),
		Upgrade: pol, Drain: api.Duration(c.Duration("drain")), TerminateNotice: api.Duration(c.Duration("terminate-notice")),
		MaxCapacity: c.Int("max-capacity")}
	return req, nil
}

// parseLBRule parses [ADDR:]FRONT:BACK[/udp|/tcp].
func parseLBRule(s string) (api.LBRule, error) {
	r := api.LBRule{Proto: "tcp"}
	if rest, proto, ok := strings.Cut(s, "/"); ok {
		if proto != "tcp" && proto != "udp" {
			return r, fmt.Errorf("protocol %q: want tcp or udp", proto)
		}
		s, r.Proto = rest, proto
	}
	parts := strings.Split(s, ":")
	switch len(parts) {
	case 2:
	case 3:
		a, err := netip.ParseAddr(parts[0])
		if err != nil || !a.Is4() {
			return r, fmt.Errorf("address %q is not an IPv4 address", parts[0])
		}
		r.Addr = parts[0]
		parts = parts[1:]
	default:
		return r, errors.New("want [ADDR:]FRONT:BACK, e.g. 8080:80")
	}
	var err error
	if r.FrontPort, err = strconv.Atoi(parts[0]); err != nil || r.FrontPort < 1 || r.FrontPort > 65535 {
		return r, fmt.Errorf("frontend port %q: want 1-65535", parts[0])
	}
	if r.BackPort, err = strconv.Atoi(parts[1]); err != nil || r.BackPort < 1 || r.BackPort > 65535 {
		return r, fmt.Errorf("backend port %q: want 1-65535", parts[1])
	}
	return r, nil
}

func setUpdateCommand(d deps) *cli.Command {
	return &cli.Command{
		Name: "update", Usage: "make a new model version (proven by booting it before it is accepted)", ArgsUsage: "NAME",
		Description: `The new model's parent is built first: a model whose cloud-init fails is
refused and nothing changes. Instances move to it per the set's upgrade
policy: manual (gale set upgrade, or instance reimage), automatic or rolling.

EXAMPLES:
   gale set update web --cloud-init v2.yaml
   gale set update web --cpus 2 --memory 2G`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "image", Usage: "new image"},
			&cli.IntFlag{Name: "cpus", Usage: "new virtual CPUs"},
			&cli.StringFlag{Name: "memory", Usage: "new memory, e.g. 2G"},
			&cli.StringFlag{Name: "cloud-init", Usage: "new cloud-init user-data `FILE`, or - for stdin"},
		},
		Action: func(c *cli.Context) error {
			name, err := nameArg(c)
			if err != nil {
				return err
			}
			req := api.UpdateSetRequest{Image: c.String("image"), CPUs: c.Int("cpus")}
			if req.MemoryMiB, err = memoryMiB(c); err != nil {
				return err
			}
			if f := c.String("cloud-init"); f != "" {
				b, err := readFileOrStdin(f, d.stdin)
				if err != nil {
					return fmt.Errorf("--cloud-init: %w", err)
				}
				req.UserData = b
			}
			fprintf(c.App.Writer, "proving the new model of %s (building its parent; this boots it once)...\n", name)
			s, err := clientFrom(c).UpdateSet(c.Context, name, req)
			if err != nil {
				return fmt.Errorf("update set %s: %w", name, err)
			}
			fprintf(c.App.Writer, "set %s: model version %d (upgrade policy %s)\n", s.Name, s.Version, s.Policy.Upgrade.Mode)
			return nil
		},
	}
}

func setInstanceCommand() *cli.Command {
	action := func(name, usage string, flags ...cli.Flag) *cli.Command {
		return &cli.Command{
			Name: name, Usage: usage, ArgsUsage: "[SET] INSTANCE", Flags: flags,
			Action: func(c *cli.Context) error {
				cl := clientFrom(c)
				set, inst, err := instanceArgs(c, cl)
				if err != nil {
					return err
				}
				prot := api.ProtectRequest{ScaleIn: c.Bool("scale-in"), SetActions: c.Bool("set-actions")}
				if err := cl.SetInstanceAction(c.Context, set, inst, name, prot); err != nil {
					return fmt.Errorf("%s %s: %w", name, inst, err)
				}
				fprintf(c.App.Writer, "%s %s: done (see gale set activity %s)\n", name, inst, set)
				return nil
			},
		}
	}
	protFlags := []cli.Flag{
		&cli.BoolFlag{Name: "scale-in", Usage: "never removed by a scale-in (the default)"},
		&cli.BoolFlag{Name: "set-actions", Usage: "never touched by repairs, upgrades or scale-in"},
	}
	return &cli.Command{
		Name: "instance", Usage: "act on one instance of a set", Action: unknownSubcommand,
		Subcommands: []*cli.Command{
			action("protect", "protect an instance from scale-in (and with --set-actions from repairs and upgrades)", protFlags...),
			action("unprotect", "remove an instance's protection", protFlags...),
			action("restart", "restart an instance"),
			action("reimage", "make an instance anew from its model version"),
			action("delete", "delete an instance and lower the capacity by one"),
		},
	}
}

// instanceArgs reads [SET] INSTANCE; with the instance alone the set is
// the one its VM belongs to.
func instanceArgs(c *cli.Context, cl *client.Client) (string, string, error) {
	switch c.NArg() {
	case 2:
		return c.Args().Get(0), c.Args().Get(1), nil
	case 1:
		inst := c.Args().Get(0)
		v, err := cl.GetVM(c.Context, inst)
		if err != nil {
			return "", "", fmt.Errorf("instance %s: %w", inst, err)
		}
		if v.Set == "" {
			return "", "", fmt.Errorf("vm %s is not an instance of a scale set", inst)
		}
		return v.Set, inst, nil
	}
	return "", "", usageErrorf(c, "want [SET] INSTANCE, e.g. %s web-2", c.Command.HelpName)
}

// converged: every instance exists, is healthy and none is leaving.
func converged(s *api.ScaleSet) (bool, string) {
	return s.Instances == s.Capacity && s.Healthy == s.Capacity, ""
}

// upgraded: the upgrade ended.
func upgraded(s *api.ScaleSet) (bool, string) {
	if s.State == api.SetUpgrading || s.Upgrade == nil {
		return false, ""
	}
	if s.Upgrade.State != "done" {
		return true, fmt.Sprintf("upgrade %s: %s", s.Upgrade.State, s.Upgrade.Error)
	}
	return true, ""
}

// waitSet prints the set's new activity until done says so (nil: until the
// set is gone), or --timeout, or --no-wait.
func waitSet(c *cli.Context, cl *client.Client, name string, done func(*api.ScaleSet) (bool, string)) error {
	if c.Bool("no-wait") {
		return nil
	}
	ctx := c.Context
	if t := c.Duration("timeout"); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	acts, _ := cl.SetActivity(ctx, name, 0)
	var after int64
	if n := len(acts); n > 0 {
		after = acts[n-1].ID
	}
	start := time.Now()
	last := ""
	for {
		s, err := cl.GetSet(ctx, name)
		if done == nil && errors.Is(err, client.ErrNotFound) {
			fprintf(c.App.Writer, "set %s deleted in %s\n", name, seconds(time.Since(start)))
			return nil
		}
		if err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
		if news, err := cl.SetActivity(ctx, name, after); err == nil {
			for _, a := range news {
				fprintf(c.App.Writer, "  %s\n", activityLine(a))
				after = a.ID
			}
		}
		status := fmt.Sprintf("%s: %d/%d healthy, %d instances, state %s", name, s.Healthy, s.Capacity, s.Instances, s.State)
		if status != last {
			fprintf(c.App.Writer, "%s (%s)\n", status, seconds(time.Since(start)))
			last = status
		}
		if done != nil {
			if ok, failure := done(s); ok {
				if failure != "" {
					return errors.New(failure)
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting for set %s: %w (the work goes on in galed; gale set activity %s -f)", name, ctx.Err(), name)
		case <-time.After(time.Second):
		}
	}
}

func activityLine(a api.Activity) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-9s %-8s %-12s", a.At.Local().Format("15:04:05"), a.Result, a.Trigger, a.Action)
	if a.Instance != "" {
		fmt.Fprintf(&b, " %s:", a.Instance)
	}
	b.WriteString(" " + a.Reason)
	if a.Duration > 0 {
		fmt.Fprintf(&b, " (%s)", seconds(time.Duration(a.Duration)))
	}
	return b.String()
}

func lbText(rules []api.LBRule) string {
	var out []string
	for _, r := range rules {
		out = append(out, fmt.Sprintf("%s:%d->%d/%s", r.Addr, r.FrontPort, r.BackPort, r.Proto))
	}
	return strings.Join(out, " ")
}

func lbSuffix(rules []api.LBRule) string {
	if len(rules) == 0 {
		return ""
	}
	return ", load balancer " + lbText(rules)
}

func showSet(w io.Writer, s *api.ScaleSet) {
	fprintf(w, "Name:      %s\nState:     %s\nCapacity:  %d (%d instances, %d healthy)\n", s.Name, s.State, s.Capacity, s.Instances, s.Healthy)
	fprintf(w, "Model:     version %d: image %s, %d CPU, %s, network %s (%d instances on it)\n", s.Version, s.Model.Image, s.Model.CPUs, memory(s.Model.MemoryMiB), s.Model.Network, s.Latest)
	for _, r := range s.LB {
		fprintf(w, "LB:        %s %s:%d -> instances:%d (%s)\n", r.Proto, r.Addr, r.FrontPort, r.BackPort, r.Mode)
	}
	fprintf(w, "Probe:     %s\n", orDash(s.Probe))
	p := s.Policy
	fprintf(w, "Repair:    %s (grace %s)\nScale-in:  %s\nDrain:     %s\n", p.Repair, seconds(time.Duration(p.Grace)), p.ScaleIn, seconds(time.Duration(p.Drain)))
	fprintf(w, "Upgrade:   %s (batch %s, surge %d, max unhealthy %d%%)\n", p.Upgrade.Mode, orDash(p.Upgrade.Batch), p.Upgrade.Surge, p.Upgrade.MaxUnhealthy)
	if u := s.Upgrade; u != nil {
		fprintf(w, "Last upgrade: to %d, %s, %d done, %d remaining %s\n", u.To, u.State, u.Done, u.Remaining, u.Error)
	}
}

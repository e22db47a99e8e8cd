// Command galed is gale's daemon: it manages VMs on libvirt and serves the
// REST API on a unix socket. See pkg/daemon for the configuration file.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/daemon"
)

const defaultConfig = "/etc/gale/galed.yaml"

func main() {
	configPath := flag.String("config", defaultConfig, "configuration file (YAML); a missing default file means defaults")
	logLevel := flag.String("log-level", "", "log level: debug, info, warn, error (overrides the config)")
	socket := flag.String("socket", "", "unix socket path (overrides the config)")
	dataDir := flag.String("data-dir", "", "data directory (overrides the config)")
	uri := flag.String("libvirt-uri", "", "libvirt URI (overrides the config)")
	flag.Parse()

	cfg, err := daemon.LoadConfig(*configPath, *configPath == defaultConfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "galed:", err)
		os.Exit(2)
	}
	override(&cfg.LogLevel, *logLevel)
	override(&cfg.Socket, *socket)
	override(&cfg.DataDir, *dataDir)
	override(&cfg.LibvirtURI, *uri)

	log := logrus.New()
	lvl, err := logrus.ParseLevel(cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "galed: log level:", err)
		os.Exit(2)
	}
	log.SetLevel(lvl)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := daemon.Run(ctx, cfg, log); err != nil {
		log.WithError(err).Error("galed failed")
		os.Exit(1)
	}
}

func override(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

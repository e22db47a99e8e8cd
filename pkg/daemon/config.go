// Package daemon wires galed together and runs it: lock, store, libvirt
// driver, reconcile, default network, unix socket, serve, shutdown.
package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/disk"
	"github.com/galevm/gale/pkg/imagestore"
)

// Config is galed's configuration file (YAML). Every field has a default,
// so an empty or missing file is valid. Example with the defaults:
//
//	socket: /run/gale/gale.sock
//	data_dir: /var/lib/gale           # gale.db, galed.lock, vms/, ssh/
//	image_dir: /var/lib/gale/images   # built, pulled and imported images
//	catalog_dir: /usr/share/gale/images  # shipped catalog entries NAME.yaml
//	user_catalog_dir: /etc/gale/images   # the user's entries; override shipped ones by name
//	import_dir: /var/lib/gale/import  # import area: non-root users may import files placed here
//	max_image_size: 1TiB              # largest virtual size an import or download may have
//	libvirt_uri: qemu:///system
//	accel: auto                       # auto | kvm | tcg
//	log_level: info                   # debug | info | warn | error
//	stall_timeout: 5m                 # fail a create only after this long without progress
//	resync_interval: 1m               # light reconcile against libvirt
//	default_network:
//	  name: gale-default
//	  mode: isolated                  # isolated (no <forward>, the safe default) | nat
//	  cidr: 192.168.150.1/24
//	  create: true                    # create it at start when missing
type Config struct {
	Socket         string        `yaml:"socket"`
	DataDir        string        `yaml:"data_dir"`
	ImageDir       string        `yaml:"image_dir"`
	CatalogDir     string        `yaml:"catalog_dir"`
	UserCatalogDir string        `yaml:"user_catalog_dir"`
	ImportDir      string        `yaml:"import_dir"`
	MaxImageSize   string        `yaml:"max_image_size"`
	LibvirtURI     string        `yaml:"libvirt_uri"`
	Accel          string        `yaml:"accel"`
	LogLevel       string        `yaml:"log_level"`
	StallTimeout   time.Duration `yaml:"stall_timeout"`
	ResyncInterval time.Duration `yaml:"resync_interval"`
	// MetricsInterval is how often galed reads every VM's counters (one
	// bulk libvirt call) for the metrics autoscale uses.
	MetricsInterval time.Duration `yaml:"metrics_interval"`
	DefaultNetwork  NetworkConfig `yaml:"default_network"`
}

// NetworkConfig is the default network VMs join when a request names none.
type NetworkConfig struct {
	Name   string `yaml:"name"`
	Mode   string `yaml:"mode"`
	CIDR   string `yaml:"cidr"`
	Create *bool  `yaml:"create"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	yes := true
	return Config{
		Socket:          api.DefaultSocket,
		DataDir:         "/var/lib/gale",
		ImageDir:        imagestore.DefaultDir,
		CatalogDir:      "/usr/share/gale/images",
		UserCatalogDir:  "/etc/gale/images",
		ImportDir:       "/var/lib/gale/import",
		MaxImageSize:    "1TiB",
		LibvirtURI:      "qemu:///system",
		Accel:           "auto",
		LogLevel:        "info",
		StallTimeout:    5 * time.Minute,
		ResyncInterval:  time.Minute,
		MetricsInterval: 10 * time.Second,
		DefaultNetwork:  NetworkConfig{Name: "gale-default", Mode: api.NetworkIsolated, CIDR: "192.168.150.1/24", Create: &yes},
	}
}

// LoadConfig reads path over the defaults. A missing file is not an error
// when missingOK (the default path); unknown keys are.
func LoadConfig(path string, missingOK bool) (Config, error) {
	cfg := DefaultConfig()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && missingOK {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	def := DefaultConfig()
	if cfg.DefaultNetwork.Create == nil {
		cfg.DefaultNetwork.Create = def.DefaultNetwork.Create
	}
	return cfg, cfg.Validate()
}

// Validate checks values that have a fixed set of choices.
func (c Config) Validate() error {
	switch c.Accel {
	case "auto", "kvm", "tcg":
	default:
		return fmt.Errorf("config: accel %q: want auto, kvm or tcg", c.Accel)
	}
	switch c.DefaultNetwork.Mode {
	case api.NetworkIsolated, api.NetworkNAT:
	default:
		return fmt.Errorf("config: default_network.mode %q: want isolated or nat", c.DefaultNetwork.Mode)
	}
	if _, err := c.MaxImageBytes(); err != nil {
		return err
	}
	if c.Socket == "" || c.DataDir == "" || c.DefaultNetwork.Name == "" {
		return errors.New("config: socket, data_dir and default_network.name must not be empty")
	}
	return nil
}

// MaxImageBytes is max_image_size in bytes.
func (c Config) MaxImageBytes() (int64, error) {
	n, err := disk.ParseSize(c.MaxImageSize)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("config: max_image_size %q: want a size like 500G or 1TiB", c.MaxImageSize)
	}
	return n, nil
}

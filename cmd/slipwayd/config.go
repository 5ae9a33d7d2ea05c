package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pelletier/go-toml/v2"
)

// defaultConfigPath is read when it exists and --config is not given.
const defaultConfigPath = "/etc/slipway/config.toml"

// Config is slipwayd's configuration: the TOML file, then flags on top.
type Config struct {
	// Root holds persistent state (the embedded containerd's content).
	Root string `toml:"root" json:"root"`
	// State holds runtime state: sockets, pid files.
	State string `toml:"state" json:"state"`
	// LogLevel is one of trace, debug, info, warn, error.
	LogLevel   string           `toml:"log_level" json:"logLevel"`
	CRI        CRIConfig        `toml:"cri" json:"cri"`
	Containerd ContainerdConfig `toml:"containerd" json:"containerd"`
	Registry   RegistryConfig   `toml:"registry" json:"registry"`
	CNI        CNIConfig        `toml:"cni" json:"cni"`
	Builder    BuilderConfig    `toml:"builder" json:"builder"`
	Streaming  StreamingConfig  `toml:"streaming" json:"streaming"`
	NRI        NRIConfig        `toml:"nri" json:"nri"`
	Metrics    MetricsConfig    `toml:"metrics" json:"metrics"`
}

// CRIConfig configures the CRI server.
type CRIConfig struct {
	// Socket is the unix socket kubelet and crictl dial.
	Socket string `toml:"socket" json:"socket"`
	// Namespace is the containerd namespace of pods, containers and images.
	Namespace string `toml:"namespace" json:"namespace"`
	// Snapshotter unpacks images and makes container root filesystems.
	Snapshotter string `toml:"snapshotter" json:"snapshotter"`
	// CgroupDriver is cgroupfs, systemd, or auto (systemd when it runs).
	CgroupDriver string `toml:"cgroup_driver" json:"cgroupDriver"`
	// InfraBinary is the slipway-infra executable that holds shared PID
	// namespaces; empty means beside slipwayd, then in PATH.
	InfraBinary string `toml:"infra_binary" json:"infraBinary"`
	// SandboxImage, when set, gives every pod an infra process run from
	// this (pause) image, as on other runtimes; empty runs none but for a
	// shared PID namespace, and then slipway's own binary.
	SandboxImage string `toml:"sandbox_image" json:"sandboxImage"`
	// ShimPodsPerGroup is how many pods' containers share one runc shim
	// (package shimgroup); 1 gives each pod a shim of its own.
	ShimPodsPerGroup int `toml:"shim_pods_per_group" json:"shimPodsPerGroup"`
	// LoggerBinary is the slipway-logger executable the shims run for
	// container logs; empty means beside slipwayd, then in PATH.
	LoggerBinary string `toml:"logger_binary" json:"loggerBinary"`
	// SeccompProfileRoot resolves relative Localhost seccomp profiles.
	SeccompProfileRoot string `toml:"seccomp_profile_root" json:"seccompProfileRoot"`
	// EnableCDI resolves CDI devices (CDI_devices, cdi.k8s.io/ annotations)
	// against the specs in CDISpecDirs.
	EnableCDI bool `toml:"enable_cdi" json:"enableCDI"`
	// CDISpecDirs hold CDI spec files, watched for changes.
	CDISpecDirs []string `toml:"cdi_spec_dirs" json:"cdiSpecDirs"`
}

// CNIConfig configures pod networking.
type CNIConfig struct {
	// ConfDir holds the network configs; the first in lexical order is used.
	ConfDir string `toml:"conf_dir" json:"confDir"`
	// BinDirs are searched for plugins, in order.
	BinDirs []string `toml:"bin_dirs" json:"binDirs"`
	// DefaultSubnet is the subnet of the conflist slipwayd writes into an
	// empty ConfDir.
	DefaultSubnet string `toml:"default_subnet" json:"defaultSubnet"`
}

// ContainerdConfig selects the containerd slipway runs on.
type ContainerdConfig struct {
	// Address of an existing containerd; empty runs an embedded one.
	Address string `toml:"address" json:"address"`
	// Binary is the embedded containerd's executable.
	Binary string `toml:"binary" json:"binary"`
	// LogLevel is the embedded containerd's log level.
	LogLevel string `toml:"log_level" json:"logLevel"`
}

// RegistryConfig configures registry access.
type RegistryConfig struct {
	// ConfigPath is a containerd-style hosts directory: HOST/hosts.toml.
	ConfigPath string `toml:"config_path" json:"configPath"`
}

func defaultConfig() Config {
	return Config{
		Root:     "/var/lib/slipway",
		State:    "/run/slipway",
		LogLevel: "info",
		CRI: CRIConfig{
			Socket:       "/run/slipway/slipway.sock",
			Namespace:    "k8s.io",
			Snapshotter:  "overlayfs",
			CgroupDriver: "auto",
			// 8 pods per shim: measured (docs/benchmarks.md) the shim's
			// private memory is about 4 MiB for one pod and 0.5 MiB more
			// per pod it adds, so 8 pods take a shim's cost per pod from
			// about 17 MiB RSS / 4 MiB private to about 2 / 1; past that the
			// saving is small while a shim's death takes more pods with it.
			ShimPodsPerGroup: 8,
			EnableCDI:        true,
			CDISpecDirs:      []string{"/etc/cdi", "/var/run/cdi"},
		},
		Containerd: ContainerdConfig{Binary: "containerd", LogLevel: "info"},
		Registry:   RegistryConfig{ConfigPath: "/etc/slipway/certs.d"},
		CNI: CNIConfig{
			ConfDir:       "/etc/cni/net.d",
			BinDirs:       []string{"/opt/cni/bin", "/usr/lib/cni"},
			DefaultSubnet: "10.88.0.0/16",
		},
		Builder:   defaultBuilderConfig(),
		Streaming: defaultStreamingConfig(),
		NRI:       defaultNRIConfig(),
		Metrics:   defaultMetricsConfig(),
	}
}

// loadConfig reads the config file named by --config (or the default file
// when present), then applies the flags that were given (overrideFlags),
// and validates the result. Unknown keys in the file are an error, so a
// typo does not pass silently.
func loadConfig(args []string) (Config, error) {
	cfg, err := parseConfig(args)
	if err != nil {
		return Config{}, err
	}
	return cfg, cfg.validate()
}

// parseConfig is loadConfig without the validation.
func parseConfig(args []string) (Config, error) {
	cfg := defaultConfig()
	flags := newOverrideFlags()
	configPath := flags.fs.String("config", "", "TOML config file (default "+defaultConfigPath+" when it exists)")
	flags.defineFlags(cfg)
	if err := flags.fs.Parse(args); err != nil {
		return Config{}, err
	}
	if flags.fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %v (a boolean flag takes its value as --flag=false)", flags.fs.Args())
	}
	path, required := *configPath, true
	if path == "" {
		path, required = defaultConfigPath, false
	}
	if err := readConfigFile(path, required, &cfg); err != nil {
		return Config{}, err
	}
	flags.apply(&cfg)
	cfg.placeUnderState(flags.given("state"), flags.given("socket"), flags.given("nri-socket"))
	return cfg, nil
}

// placeUnderState puts the sockets whose location follows the state dir
// there: the builder's socket when unset, and, when --state is given, the
// CRI and NRI sockets that neither a flag nor the file moved from their
// defaults, so daemons with their own state dirs do not take each other's
// sockets.
func (c *Config) placeUnderState(stateFlag, socketFlag, nriSocketFlag bool) {
	def := defaultConfig()
	if c.Builder.Socket == "" {
		c.Builder.Socket = filepath.Join(c.State, "buildkit.sock")
	}
	if !stateFlag {
		return
	}
	if !socketFlag && c.CRI.Socket == def.CRI.Socket {
		c.CRI.Socket = filepath.Join(c.State, "slipway.sock")
	}
	if !nriSocketFlag && c.NRI.SocketPath == def.NRI.SocketPath {
		c.NRI.SocketPath = filepath.Join(c.State, "nri", "nri.sock")
	}
}

func readConfigFile(path string, required bool, cfg *Config) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !required {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	dec := toml.NewDecoder(bytes.NewReader(b)).DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			return fmt.Errorf("config %s: %s", path, strict.String())
		}
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// validate names the first setting that cannot work.
func (c Config) validate() error {
	for name, v := range map[string]string{"root": c.Root, "state": c.State, "cri.socket": c.CRI.Socket} {
		if !filepath.IsAbs(v) {
			return fmt.Errorf("%s must be an absolute path, got %q", name, v)
		}
	}
	if c.CRI.ShimPodsPerGroup < 1 {
		return fmt.Errorf("cri.shim_pods_per_group must be 1 or more, got %d", c.CRI.ShimPodsPerGroup)
	}
	if c.CRI.Namespace == "" {
		return errors.New("cri.namespace must not be empty")
	}
	switch c.CRI.CgroupDriver {
	case "auto", "cgroupfs", "systemd":
	default:
		return fmt.Errorf("cri.cgroup_driver must be auto, cgroupfs or systemd, got %q", c.CRI.CgroupDriver)
	}
	for _, d := range c.CRI.CDISpecDirs {
		if !filepath.IsAbs(d) {
			return fmt.Errorf("cri.cdi_spec_dirs must be absolute paths, got %q", d)
		}
	}
	if err := c.Builder.validate(); err != nil {
		return err
	}
	if err := c.Streaming.validate(); err != nil {
		return err
	}
	if err := c.NRI.validate(); err != nil {
		return err
	}
	return c.Metrics.validate()
}

// cgroupDriver resolves "auto" to the driver this node uses.
func (c Config) cgroupDriver() string {
	if c.CRI.CgroupDriver != "auto" {
		return c.CRI.CgroupDriver
	}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		return "systemd"
	}
	return "cgroupfs"
}

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/log"
	"github.com/containerd/nri/pkg/adaptation"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/nri"
	"github.com/slipway-dev/slipway/runtime/pod"
	"github.com/slipway-dev/slipway/runtime/spec"
)

// NRIConfig configures the Node Resource Interface (TOML table [nri]):
// slipwayd hosts NRI plugins as containerd does, on by default.
type NRIConfig struct {
	// Enable serves the NRI socket and launches the pre-installed plugins.
	Enable bool `toml:"enable" json:"enable"`
	// SocketPath is the socket external plugins connect to.
	SocketPath string `toml:"socket_path" json:"socketPath"`
	// PluginPath holds plugins launched at start-up; PluginConfigPath
	// their configuration.
	PluginPath       string `toml:"plugin_path" json:"pluginPath"`
	PluginConfigPath string `toml:"plugin_config_path" json:"pluginConfigPath"`
	// PluginRegistrationTimeout and PluginRequestTimeout bound a plugin's
	// registration and its handling of one request (Go durations).
	PluginRegistrationTimeout string `toml:"plugin_registration_timeout" json:"pluginRegistrationTimeout"`
	PluginRequestTimeout      string `toml:"plugin_request_timeout" json:"pluginRequestTimeout"`
}

// defaultPluginRequestTimeout is longer than NRI's 2 s: a plugin's
// Synchronize answers for every pod and container of the node, and one
// that takes 2 s (critest's late plugins hold it open that long) is cut
// off and dropped.
const defaultPluginRequestTimeout = 5 * time.Second

func defaultNRIConfig() NRIConfig {
	return NRIConfig{
		Enable:                    true,
		SocketPath:                adaptation.DefaultSocketPath,
		PluginPath:                adaptation.DefaultPluginPath,
		PluginConfigPath:          adaptation.DefaultPluginConfigPath,
		PluginRegistrationTimeout: adaptation.DefaultPluginRegistrationTimeout.String(),
		PluginRequestTimeout:      defaultPluginRequestTimeout.String(),
	}
}

// validate names the first NRI setting that cannot work.
func (n NRIConfig) validate() error {
	if !n.Enable {
		return nil
	}
	if !filepath.IsAbs(n.SocketPath) {
		return fmt.Errorf("nri.socket_path must be an absolute path, got %q", n.SocketPath)
	}
	if _, _, err := n.timeouts(); err != nil {
		return err
	}
	return nil
}

// timeouts are the parsed registration and request timeouts.
func (n NRIConfig) timeouts() (registration, request time.Duration, err error) {
	if registration, err = time.ParseDuration(n.PluginRegistrationTimeout); err != nil || registration <= 0 {
		return 0, 0, fmt.Errorf("nri.plugin_registration_timeout must be a positive Go duration, got %q", n.PluginRegistrationTimeout)
	}
	if request, err = time.ParseDuration(n.PluginRequestTimeout); err != nil || request <= 0 {
		return 0, 0, fmt.Errorf("nri.plugin_request_timeout must be a positive Go duration, got %q", n.PluginRequestTimeout)
	}
	return registration, request, nil
}

// nriHost is the NRI host, or nil when NRI is off; it listens once
// started.
type nriHost struct{ *nri.Host }

// newNRIHost returns the NRI host over the loaded stores.
func newNRIHost(cfg Config, c *client.Client, pods *pod.Store, containers *container.Store, infra pod.InfraRunner, cdi spec.CDIRegistry) (nriHost, error) {
	if !cfg.NRI.Enable {
		return nriHost{}, nil
	}
	registration, request, err := cfg.NRI.timeouts()
	if err != nil {
		return nriHost{}, err
	}
	h, err := nri.New(nri.Options{
		Config: nri.Config{
			SocketPath:          cfg.NRI.SocketPath,
			PluginPath:          cfg.NRI.PluginPath,
			PluginConfigPath:    cfg.NRI.PluginConfigPath,
			RegistrationTimeout: registration,
			RequestTimeout:      request,
		},
		RuntimeName:    "slipway",
		RuntimeVersion: version,
		Pods:           pods,
		Containers:     containers,
		Spec: func(ctx context.Context, id string) (*specs.Spec, error) {
			cc, err := c.LoadContainer(ctx, id)
			if err != nil {
				return nil, err
			}
			return cc.Spec(ctx)
		},
		InfraPid: infra.Pid,
		CDI:      cdi,
	})
	return nriHost{h}, err
}

// podHooks and containerHooks are the runtimes' hooks: none without NRI.
func (h nriHost) podHooks() pod.Hooks {
	if h.Host == nil {
		return nil
	}
	return h.Host
}

func (h nriHost) containerHooks() container.Hooks {
	if h.Host == nil {
		return nil
	}
	return h.Host
}

// start starts serving plugins, with containers applying their updates.
func (h nriHost) start(ctx context.Context, containers *container.Runtime, socket string) error {
	if h.Host == nil {
		return nil
	}
	if err := h.Start(containers); err != nil {
		return err
	}
	log.G(ctx).WithField("socket", socket).Info("serving NRI plugins")
	return nil
}

// stop disconnects the plugins and closes the socket.
func (h nriHost) stop() {
	if h.Host != nil {
		h.Stop()
	}
}

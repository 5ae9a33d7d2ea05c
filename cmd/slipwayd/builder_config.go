package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/slipway-dev/slipway/builder"
)

// BuilderConfig configures the embedded BuildKit (TOML table [builder]).
type BuilderConfig struct {
	// Enabled serves the builder; true by default.
	Enabled bool `toml:"enabled" json:"enabled"`
	// Only is builder-only mode: no CRI is served, for CI machines that run
	// no kubelet.
	Only bool `toml:"only" json:"only"`
	// Socket is BuildKit's control API socket (mode 0600); empty means
	// STATE/buildkit.sock.
	Socket string `toml:"socket" json:"socket"`
	// TCPAddress, when set, also serves the control API on host:port with
	// mutual TLS: TLSCert, TLSKey and TLSCA are then required.
	TCPAddress string `toml:"tcp_address" json:"tcpAddress"`
	TLSCert    string `toml:"tls_cert" json:"tlsCert"`
	TLSKey     string `toml:"tls_key" json:"tlsKey"`
	// TLSCA verifies client certificates.
	TLSCA string `toml:"tls_ca" json:"tlsCA"`
	// MaxParallelism bounds concurrent build steps; 0 means no bound.
	MaxParallelism int `toml:"max_parallelism" json:"maxParallelism"`
	// Entitlements builds may request: network.host, security.insecure.
	Entitlements []string        `toml:"entitlements" json:"entitlements"`
	GC           BuilderGCConfig `toml:"gc" json:"gc"`
}

// BuilderGCConfig is the build cache GC policy (TOML table [builder.gc]);
// see builder.GCOptions for the defaults. Sizes are "512MB", "10GB" or "10%".
type BuilderGCConfig struct {
	// Enabled runs automatic GC; true by default.
	Enabled       bool   `toml:"enabled" json:"enabled"`
	ReservedSpace string `toml:"reserved_space" json:"reservedSpace"`
	MaxUsedSpace  string `toml:"max_used_space" json:"maxUsedSpace"`
	MinFreeSpace  string `toml:"min_free_space" json:"minFreeSpace"`
}

func defaultBuilderConfig() BuilderConfig {
	return BuilderConfig{Enabled: true, GC: BuilderGCConfig{Enabled: true}}
}

// validate names the first builder setting that cannot work.
func (b BuilderConfig) validate() error {
	if b.Only && !b.Enabled {
		return errors.New("builder.only needs builder.enabled")
	}
	if !b.Enabled {
		return nil
	}
	if !filepath.IsAbs(b.Socket) {
		return fmt.Errorf("builder.socket must be an absolute path, got %q", b.Socket)
	}
	if b.TCPAddress != "" && (b.TLSCert == "" || b.TLSKey == "" || b.TLSCA == "") {
		return errors.New("builder.tcp_address needs builder.tls_cert, builder.tls_key and builder.tls_ca: the builder is root on this node, so TCP is mutual TLS only")
	}
	if b.TCPAddress == "" && (b.TLSCert != "" || b.TLSKey != "" || b.TLSCA != "") {
		return errors.New("builder.tls_cert, tls_key and tls_ca are only used with builder.tcp_address")
	}
	if b.MaxParallelism < 0 {
		return fmt.Errorf("builder.max_parallelism must not be negative, got %d", b.MaxParallelism)
	}
	for name, v := range map[string]string{
		"builder.gc.reserved_space": b.GC.ReservedSpace,
		"builder.gc.max_used_space": b.GC.MaxUsedSpace,
		"builder.gc.min_free_space": b.GC.MinFreeSpace,
	} {
		if _, err := builder.ParseDiskSpace(v); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	for _, e := range b.Entitlements {
		if e != "network.host" && e != "security.insecure" {
			return fmt.Errorf("builder.entitlements: unknown entitlement %q (allowed: network.host, security.insecure)", e)
		}
	}
	return nil
}

// builderOptions translates the config into the builder's options.
func (c Config) builderOptions(address string) builder.Options {
	b := c.Builder
	return builder.Options{
		Address:        address,
		Namespace:      c.CRI.Namespace,
		Snapshotter:    c.CRI.Snapshotter,
		Root:           filepath.Join(c.Root, "buildkit"),
		HostsDir:       c.Registry.ConfigPath,
		MaxParallelism: b.MaxParallelism,
		Entitlements:   b.Entitlements,
		GC: builder.GCOptions{
			Disabled:      !b.GC.Enabled,
			ReservedSpace: b.GC.ReservedSpace,
			MaxUsedSpace:  b.GC.MaxUsedSpace,
			MinFreeSpace:  b.GC.MinFreeSpace,
		},
	}
}

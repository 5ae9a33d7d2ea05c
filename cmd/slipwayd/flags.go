package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
)

// overrideFlags is slipwayd's command line. Every flag but --config
// overrides one Config field: parsing only records the edit, and apply
// runs the edits in command-line order on the config read from the file,
// so a flag always wins over the file and a flag given twice keeps its
// last value. A flag given with an empty value sets the field empty.
type overrideFlags struct {
	fs *flag.FlagSet
	// edits are the parsed flags' changes, in command-line order.
	edits []func(*Config)
}

func newOverrideFlags() *overrideFlags {
	return &overrideFlags{fs: flag.NewFlagSet("slipwayd", flag.ContinueOnError)}
}

// str defines a flag that sets the string field returns.
func (o *overrideFlags) str(name, usage string, field func(*Config) *string) {
	o.fs.Func(name, usage, func(v string) error {
		o.edits = append(o.edits, func(c *Config) { *field(c) = v })
		return nil
	})
}

// list defines a flag that sets a list field from comma-separated values.
func (o *overrideFlags) list(name, usage string, field func(*Config) *[]string) {
	o.fs.Func(name, usage, func(v string) error {
		var l []string
		if v != "" {
			l = strings.Split(v, ",")
		}
		o.edits = append(o.edits, func(c *Config) { *field(c) = l })
		return nil
	})
}

// integer defines a flag that sets an int field.
func (o *overrideFlags) integer(name, usage string, field func(*Config) *int) {
	o.fs.Func(name, usage, func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("want a whole number, got %q", v)
		}
		o.edits = append(o.edits, func(c *Config) { *field(c) = n })
		return nil
	})
}

// boolean defines a flag that sets a bool field: --name is true,
// --name=false false.
func (o *overrideFlags) boolean(name, usage string, field func(*Config) *bool) {
	o.fs.BoolFunc(name, usage, func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		o.edits = append(o.edits, func(c *Config) { *field(c) = b })
		return nil
	})
}

// given reports whether the command line set the flag name.
func (o *overrideFlags) given(name string) bool {
	found := false
	o.fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// apply runs the parsed flags' edits on cfg.
func (o *overrideFlags) apply(cfg *Config) {
	for _, edit := range o.edits {
		edit(cfg)
	}
}

// defineFlags defines every override flag, each beside the TOML key it
// overrides (see the README's configuration table); def supplies the
// defaults named in the usage texts.
func (o *overrideFlags) defineFlags(def Config) {
	o.str("root", "persistent state directory (default "+def.Root+")", func(c *Config) *string { return &c.Root })
	o.str("state", "runtime state directory (default "+def.State+")", func(c *Config) *string { return &c.State })
	o.str("log-level", "log level: trace, debug, info, warn, error (default "+def.LogLevel+")", func(c *Config) *string { return &c.LogLevel })

	o.str("socket", "CRI unix socket (default "+def.CRI.Socket+", STATE/slipway.sock when only --state is given)", func(c *Config) *string { return &c.CRI.Socket })
	o.str("namespace", "containerd namespace (default "+def.CRI.Namespace+")", func(c *Config) *string { return &c.CRI.Namespace })
	o.str("snapshotter", "containerd snapshotter (default "+def.CRI.Snapshotter+")", func(c *Config) *string { return &c.CRI.Snapshotter })
	o.str("cgroup-driver", "cgroupfs, systemd or auto (default "+def.CRI.CgroupDriver+")", func(c *Config) *string { return &c.CRI.CgroupDriver })
	o.str("sandbox-image", "run every pod's infra process from this pause image (default: none)", func(c *Config) *string { return &c.CRI.SandboxImage })
	o.str("infra-binary", "slipway-infra executable (default: beside slipwayd, then PATH)", func(c *Config) *string { return &c.CRI.InfraBinary })
	o.integer("shim-pods-per-group", "pods whose containers share one runc shim, 1 for a shim per pod (default "+strconv.Itoa(def.CRI.ShimPodsPerGroup)+")", func(c *Config) *int { return &c.CRI.ShimPodsPerGroup })
	o.list("cdi-spec-dirs", "comma-separated CDI spec directories (default "+strings.Join(def.CRI.CDISpecDirs, ",")+")", func(c *Config) *[]string { return &c.CRI.CDISpecDirs })

	o.str("cni-conf-dir", "CNI config directory (default "+def.CNI.ConfDir+")", func(c *Config) *string { return &c.CNI.ConfDir })
	o.list("cni-bin-dirs", "comma-separated CNI plugin directories (default "+strings.Join(def.CNI.BinDirs, ",")+")", func(c *Config) *[]string { return &c.CNI.BinDirs })

	o.str("containerd-address", "use this containerd instead of an embedded one", func(c *Config) *string { return &c.Containerd.Address })
	o.str("containerd-binary", "embedded containerd executable (default "+def.Containerd.Binary+")", func(c *Config) *string { return &c.Containerd.Binary })
	o.str("registry-config-path", "hosts directory, HOST/hosts.toml (default "+def.Registry.ConfigPath+")", func(c *Config) *string { return &c.Registry.ConfigPath })

	o.boolean("builder", "serve the embedded BuildKit builder (default true)", func(c *Config) *bool { return &c.Builder.Enabled })
	o.boolean("builder-only", "builder-only mode: serve the builder and no CRI", func(c *Config) *bool { return &c.Builder.Only })
	o.str("builder-socket", "BuildKit control API socket (default STATE/buildkit.sock)", func(c *Config) *string { return &c.Builder.Socket })
	o.str("builder-tcp", "also serve the builder on host:port with mutual TLS", func(c *Config) *string { return &c.Builder.TCPAddress })
	o.str("builder-tls-cert", "builder TLS certificate (with --builder-tcp)", func(c *Config) *string { return &c.Builder.TLSCert })
	o.str("builder-tls-key", "builder TLS key (with --builder-tcp)", func(c *Config) *string { return &c.Builder.TLSKey })
	o.str("builder-tls-ca", "CA that signs builder client certificates (with --builder-tcp)", func(c *Config) *string { return &c.Builder.TLSCA })
	o.str("builder-gc-max-used-space", "build cache size GC keeps under, e.g. 20GB or 30%", func(c *Config) *string { return &c.Builder.GC.MaxUsedSpace })

	o.str("streaming-address", "streaming server host:port, port 0 for a free one (default "+def.Streaming.Address+")", func(c *Config) *string { return &c.Streaming.Address })
	o.str("streaming-tls-cert", "streaming server TLS certificate (with --streaming-tls-key)", func(c *Config) *string { return &c.Streaming.TLSCert })
	o.str("streaming-tls-key", "streaming server TLS key (with --streaming-tls-cert)", func(c *Config) *string { return &c.Streaming.TLSKey })
	o.str("streaming-idle-timeout", "end streaming sessions idle this long (default "+def.Streaming.IdleTimeout+")", func(c *Config) *string { return &c.Streaming.IdleTimeout })

	o.boolean("nri", "serve NRI plugins (default true)", func(c *Config) *bool { return &c.NRI.Enable })
	o.str("nri-socket", "NRI socket (default "+def.NRI.SocketPath+", STATE/nri/nri.sock when only --state is given)", func(c *Config) *string { return &c.NRI.SocketPath })

	o.str("metrics-address", "metrics, /healthz and /readyz host:port, port 0 for a free one, empty for none (default "+def.Metrics.Address+")", func(c *Config) *string { return &c.Metrics.Address })
	o.boolean("metrics-pprof", "also serve net/http/pprof on the metrics listener (a loopback address only)", func(c *Config) *bool { return &c.Metrics.Pprof })
	o.str("metrics-tls-cert", "metrics listener TLS certificate (with --metrics-tls-key; needed off loopback)", func(c *Config) *string { return &c.Metrics.TLSCert })
	o.str("metrics-tls-key", "metrics listener TLS key (with --metrics-tls-cert)", func(c *Config) *string { return &c.Metrics.TLSKey })
}

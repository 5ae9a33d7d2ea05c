package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadTestConfig runs loadConfig on args with a config file holding toml.
func loadTestConfig(t *testing.T, toml string, args ...string) (Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	return loadConfig(append([]string{"--config", path}, args...))
}

func TestBuilderConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		toml    string
		args    []string
		check   func(t *testing.T, b BuilderConfig, c Config)
		wantErr string
	}{
		{name: "defaults", check: func(t *testing.T, b BuilderConfig, c Config) {
			if !b.Enabled || b.Only || b.Socket != "/run/slipway/buildkit.sock" || !b.GC.Enabled {
				t.Errorf("defaults %+v", b)
			}
			o := c.builderOptions("/run/containerd.sock")
			if o.Root != "/var/lib/slipway/buildkit" || o.Namespace != "k8s.io" || o.Snapshotter != "overlayfs" ||
				o.HostsDir != "/etc/slipway/certs.d" || o.GC.Disabled {
				t.Errorf("builder options %+v", o)
			}
		}},
		{name: "socket follows --state", args: []string{"--state", "/tmp/st", "--root", "/tmp/rt"}, check: func(t *testing.T, b BuilderConfig, c Config) {
			if b.Socket != "/tmp/st/buildkit.sock" || c.builderOptions("a").Root != "/tmp/rt/buildkit" {
				t.Errorf("socket %q root %q", b.Socket, c.builderOptions("a").Root)
			}
		}},
		{name: "file", toml: `
[builder]
only = true
socket = "/run/b.sock"
max_parallelism = 2
entitlements = ["network.host"]
[builder.gc]
enabled = false
max_used_space = "20GB"
`, check: func(t *testing.T, b BuilderConfig, c Config) {
			o := c.builderOptions("a")
			if !b.Only || b.Socket != "/run/b.sock" || o.MaxParallelism != 2 || len(o.Entitlements) != 1 || !o.GC.Disabled || o.GC.MaxUsedSpace != "20GB" {
				t.Errorf("config %+v options %+v", b, o)
			}
		}},
		{name: "flags override the file", toml: "[builder]\nsocket = \"/run/b.sock\"\n",
			args: []string{"--builder-only", "--builder-socket", "/run/c.sock", "--builder-gc-max-used-space", "10%"},
			check: func(t *testing.T, b BuilderConfig, c Config) {
				if !b.Only || b.Socket != "/run/c.sock" || b.GC.MaxUsedSpace != "10%" {
					t.Errorf("config %+v", b)
				}
			}},
		{name: "--builder=false", args: []string{"--builder=false"}, check: func(t *testing.T, b BuilderConfig, c Config) {
			if b.Enabled {
				t.Error("builder still enabled")
			}
		}},
		{name: "tcp with mutual TLS", args: []string{"--builder-tcp", "127.0.0.1:1234", "--builder-tls-cert", "c", "--builder-tls-key", "k", "--builder-tls-ca", "ca"},
			check: func(t *testing.T, b BuilderConfig, c Config) {
				if b.TCPAddress != "127.0.0.1:1234" || b.TLSCert != "c" || b.TLSKey != "k" || b.TLSCA != "ca" {
					t.Errorf("config %+v", b)
				}
			}},
		{name: "only without builder", args: []string{"--builder=false", "--builder-only"}, wantErr: "builder.only needs builder.enabled"},
		{name: "relative socket", args: []string{"--builder-socket", "b.sock"}, wantErr: `builder.socket must be an absolute path, got "b.sock"`},
		{name: "tcp without TLS", args: []string{"--builder-tcp", ":1234"}, wantErr: "mutual TLS only"},
		{name: "TLS without tcp", args: []string{"--builder-tls-cert", "c"}, wantErr: "only used with builder.tcp_address"},
		{name: "bad gc size", toml: "[builder.gc]\nreserved_space = \"plenty\"\n", wantErr: "builder.gc.reserved_space"},
		{name: "negative parallelism", toml: "[builder]\nmax_parallelism = -1\n", wantErr: "builder.max_parallelism"},
		{name: "unknown entitlement", toml: "[builder]\nentitlements = [\"device\"]\n", wantErr: `unknown entitlement "device"`},
		{name: "unknown key", toml: "[builder]\nsokcet = \"/x\"\n", wantErr: "sokcet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadTestConfig(t, tc.toml, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg.Builder, cfg)
		})
	}
}

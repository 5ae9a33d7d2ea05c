package cni

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/containernetworking/cni/libcni"
)

const (
	bridgeList = `{"cniVersion":"1.0.0","name":"%s","plugins":[
		{"type":"bridge","bridge":"br0","ipam":{"type":"host-local","subnet":"10.1.2.0/24"}},
		{"type":"portmap","capabilities":{"portMappings":true}},
		{"type":"firewall"},
		{"type":"bandwidth","capabilities":{"bandwidth":true}}]}`
	singleConf = `{"cniVersion":"1.0.0","name":"single","type":"bridge","bridge":"br1"}`
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func pluginTypesOf(list *libcni.NetworkConfigList) []string {
	var types []string
	for _, p := range list.Plugins {
		types = append(types, p.Network.Type)
	}
	return types
}

func TestLoadNetwork(t *testing.T) {
	list := func(name string) string { return strings.Replace(bridgeList, "%s", name, 1) }
	tests := []struct {
		name      string
		files     map[string]string
		wantFile  string
		wantName  string
		wantTypes []string
		wantErr   []string // substrings of the error
	}{{
		name:    "empty dir",
		wantErr: []string{"no network config found in"},
	}, {
		name:    "only other extensions",
		files:   map[string]string{"README": "x", "10-a.conflist.bak": list("a"), "sub/20-b.conflist": list("b")},
		wantErr: []string{"no network config found in"},
	}, {
		name:      "conflist",
		files:     map[string]string{"10-a.conflist": list("a")},
		wantFile:  "10-a.conflist",
		wantName:  "a",
		wantTypes: []string{"bridge", "portmap", "firewall", "bandwidth"},
	}, {
		name:      "conf becomes a one-plugin list",
		files:     map[string]string{"10-single.conf": singleConf},
		wantFile:  "10-single.conf",
		wantName:  "single",
		wantTypes: []string{"bridge"},
	}, {
		name:      "json holding a list is a list",
		files:     map[string]string{"10-a.json": list("a")},
		wantFile:  "10-a.json",
		wantName:  "a",
		wantTypes: []string{"bridge", "portmap", "firewall", "bandwidth"},
	}, {
		name:      "first in lexical order wins, whatever the extension",
		files:     map[string]string{"20-a.conflist": list("a"), "10-single.conf": singleConf, "30-c.json": list("c")},
		wantFile:  "10-single.conf",
		wantName:  "single",
		wantTypes: []string{"bridge"},
	}, {
		name: "invalid files are skipped",
		files: map[string]string{
			"00-broken.conflist":    "{",
			"01-notype.conf":        `{"cniVersion":"1.0.0","name":"x"}`,
			"02-noplugins.conflist": `{"cniVersion":"1.0.0","name":"x","plugins":[]}`,
			"03-badname.conflist":   strings.Replace(list("a"), `"name":"a"`, `"name":"bad/name"`, 1),
			"04-reserved.conflist":  list(loopbackNetworkName),
			"10-a.conflist":         list("a"),
		},
		wantFile:  "10-a.conflist",
		wantName:  "a",
		wantTypes: []string{"bridge", "portmap", "firewall", "bandwidth"},
	}, {
		name:    "all invalid: the error names each file",
		files:   map[string]string{"00-broken.conflist": "{", "01-notype.conf": `{"cniVersion":"1.0.0","name":"x"}`},
		wantErr: []string{"no valid network config in", "00-broken.conflist", "01-notype.conf", "missing 'type'"},
	}, {
		name: "plugins kept in <dir>/<name>/ are inlined",
		files: map[string]string{
			"10-ext.conflist": `{"cniVersion":"1.0.0","name":"ext","plugins":[{"type":"bridge"}]}`,
			"ext/20-pm.conf":  `{"type":"portmap","capabilities":{"portMappings":true}}`,
		},
		wantFile:  "10-ext.conflist",
		wantName:  "ext",
		wantTypes: []string{"bridge", "portmap"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			n, err := loadNetwork(dir)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("loaded %s, want an error", n.file)
				}
				for _, s := range append(tt.wantErr, dir) {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := filepath.Base(n.file); got != tt.wantFile {
				t.Errorf("file = %s, want %s", got, tt.wantFile)
			}
			if n.list.Name != tt.wantName {
				t.Errorf("name = %s, want %s", n.list.Name, tt.wantName)
			}
			if got := pluginTypesOf(n.list); !slices.Equal(got, tt.wantTypes) {
				t.Errorf("plugins = %v, want %v", got, tt.wantTypes)
			}
			// The bytes alone rebuild the same list: Teardown relies on it.
			again, err := libcni.NetworkConfFromBytes(n.list.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if got := pluginTypesOf(again); !slices.Equal(got, tt.wantTypes) {
				t.Errorf("plugins from bytes = %v, want %v", got, tt.wantTypes)
			}
			if again.Name != tt.wantName || again.CNIVersion != n.list.CNIVersion {
				t.Errorf("from bytes: name %s version %s, want %s %s", again.Name, again.CNIVersion, tt.wantName, n.list.CNIVersion)
			}
		})
	}
}

func TestDefaultConflist(t *testing.T) {
	type ipam struct {
		Type   string                `json:"type"`
		Ranges [][]map[string]string `json:"ranges"`
		Routes []map[string]string   `json:"routes"`
	}
	type plugin struct {
		Type         string          `json:"type"`
		Bridge       string          `json:"bridge"`
		IsGateway    bool            `json:"isGateway"`
		IPMasq       bool            `json:"ipMasq"`
		HairpinMode  bool            `json:"hairpinMode"`
		IPAM         *ipam           `json:"ipam"`
		Capabilities map[string]bool `json:"capabilities"`
	}
	var conf struct {
		CNIVersion string   `json:"cniVersion"`
		Name       string   `json:"name"`
		Plugins    []plugin `json:"plugins"`
	}
	const noFirewall = "bridge portmap bandwidth"
	tests := []struct {
		name                  string
		opts                  Options
		wantBridge            string
		wantTypes             string
		wantSubnets, wantDsts []string
		wantErr               string
	}{
		{name: "zero options", wantBridge: DefaultBridge, wantTypes: noFirewall, wantSubnets: []string{"10.88.0.0/16"}, wantDsts: []string{"0.0.0.0/0"}},
		{name: "firewall", opts: Options{DefaultFirewall: true}, wantBridge: DefaultBridge, wantTypes: "bridge portmap firewall bandwidth", wantSubnets: []string{"10.88.0.0/16"}, wantDsts: []string{"0.0.0.0/0"}},
		{name: "ipv6", opts: Options{DefaultSubnet: "fd00:88::/64", DefaultBridge: "br6"}, wantBridge: "br6", wantTypes: noFirewall, wantSubnets: []string{"fd00:88::/64"}, wantDsts: []string{"::/0"}},
		{name: "dual stack, v4 first", opts: Options{DefaultSubnet: "fd00:88::/64, 10.89.0.0/16"}, wantBridge: DefaultBridge, wantTypes: noFirewall, wantSubnets: []string{"10.89.0.0/16", "fd00:88::/64"}, wantDsts: []string{"0.0.0.0/0", "::/0"}},
		{name: "not a cidr", opts: Options{DefaultSubnet: "10.88.0.0"}, wantErr: "not a CIDR"},
		{name: "host bits", opts: Options{DefaultSubnet: "10.88.0.1/16"}, wantErr: "host bits"},
		{name: "too small", opts: Options{DefaultSubnet: "10.88.0.1/32"}, wantErr: "too small"},
		{name: "two v4", opts: Options{DefaultSubnet: "10.88.0.0/16,10.89.0.0/16"}, wantErr: "more than one IPv4"},
		{name: "long bridge", opts: Options{DefaultBridge: "a-very-long-bridge"}, wantErr: "longer than 15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := DefaultConflist(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := libcni.NetworkConfFromBytes(data); err != nil {
				t.Fatalf("libcni rejects it: %v", err)
			}
			if err := json.Unmarshal(data, &conf); err != nil {
				t.Fatal(err)
			}
			if conf.CNIVersion != "1.0.0" || conf.Name != DefaultNetworkName {
				t.Errorf("cniVersion %q name %q", conf.CNIVersion, conf.Name)
			}
			var types []string
			for _, p := range conf.Plugins {
				types = append(types, p.Type)
			}
			if got := strings.Join(types, " "); got != tt.wantTypes {
				t.Fatalf("plugins %s, want %s", got, tt.wantTypes)
			}
			br := conf.Plugins[0]
			if br.Bridge != tt.wantBridge || !br.IsGateway || !br.IPMasq || !br.HairpinMode || br.IPAM == nil || br.IPAM.Type != "host-local" {
				t.Errorf("bridge plugin = %+v", br)
			}
			var subnets, dsts []string
			for _, r := range br.IPAM.Ranges {
				subnets = append(subnets, r[0]["subnet"])
			}
			for _, r := range br.IPAM.Routes {
				dsts = append(dsts, r["dst"])
			}
			if !slices.Equal(subnets, tt.wantSubnets) || !slices.Equal(dsts, tt.wantDsts) {
				t.Errorf("ranges %v routes %v, want %v %v", subnets, dsts, tt.wantSubnets, tt.wantDsts)
			}
			last := conf.Plugins[len(conf.Plugins)-1]
			if !conf.Plugins[1].Capabilities[capPortMappings] || !last.Capabilities[capBandwidth] {
				t.Errorf("capabilities: portmap %v bandwidth %v", conf.Plugins[1].Capabilities, last.Capabilities)
			}
		})
	}
}

func TestNewWritesDefault(t *testing.T) {
	ctx := context.Background()
	t.Run("empty dir gets the default", func(t *testing.T) {
		confDir := filepath.Join(t.TempDir(), "net.d") // created by New
		m, err := newManager(ctx, Options{ConfDir: confDir, CacheDir: t.TempDir(), WriteDefault: true, DefaultSubnet: "10.77.0.0/16", DefaultBridge: "sw7"}, newFakeExec())
		if err != nil {
			t.Fatal(err)
		}
		entries, _ := os.ReadDir(confDir)
		if len(entries) != 1 || entries[0].Name() != DefaultConfFile {
			t.Fatalf("conf dir holds %v, want only %s", entries, DefaultConfFile)
		}
		if name, file := m.Network(); name != DefaultNetworkName || file != filepath.Join(confDir, DefaultConfFile) {
			t.Errorf("Network() = %s %s", name, file)
		}
		data, _ := os.ReadFile(filepath.Join(confDir, DefaultConfFile))
		if !strings.Contains(string(data), `"10.77.0.0/16"`) || !strings.Contains(string(data), `"sw7"`) {
			t.Errorf("default conflist ignores the options:\n%s", data)
		}
		if err := m.Status(); err != nil {
			t.Errorf("Status() = %v", err)
		}
	})
	t.Run("existing config is kept", func(t *testing.T) {
		confDir := t.TempDir()
		writeFiles(t, confDir, map[string]string{"50-single.conf": singleConf})
		m, err := newManager(ctx, Options{ConfDir: confDir, CacheDir: t.TempDir(), WriteDefault: true}, newFakeExec())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(confDir, DefaultConfFile)); !os.IsNotExist(err) {
			t.Errorf("default written next to an existing config: %v", err)
		}
		if name, _ := m.Network(); name != "single" {
			t.Errorf("network %q, want single", name)
		}
	})
	t.Run("without WriteDefault nothing is written", func(t *testing.T) {
		confDir := t.TempDir()
		m, err := newManager(ctx, Options{ConfDir: confDir, CacheDir: t.TempDir()}, newFakeExec())
		if err != nil {
			t.Fatal(err)
		}
		if entries, _ := os.ReadDir(confDir); len(entries) != 0 {
			t.Errorf("conf dir holds %v", entries)
		}
		if err := m.Status(); err == nil || !strings.Contains(err.Error(), confDir) {
			t.Errorf("Status() = %v, want an error naming %s", err, confDir)
		}
	})
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "zero value"},
		{name: "relative conf dir", opts: Options{ConfDir: "net.d"}, wantErr: "ConfDir"},
		{name: "relative cache dir", opts: Options{CacheDir: "cache"}, wantErr: "CacheDir"},
		{name: "relative bin dir", opts: Options{BinDirs: []string{"/opt/cni/bin", "bin"}}, wantErr: "BinDirs[1]"},
		{name: "bad subnet", opts: Options{DefaultSubnet: "10.88.0.0/33"}, wantErr: "DefaultSubnet"},
		{name: "bad bridge", opts: Options{DefaultBridge: "br/0"}, wantErr: "DefaultBridge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opts.withDefaults()
			if tt.wantErr != "" {
				if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want InvalidArgument naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ConfDir != DefaultConfDir || got.CacheDir != DefaultCacheDir || !slices.Equal(got.BinDirs, DefaultBinDirs) ||
				got.DefaultSubnet != DefaultSubnet || got.DefaultBridge != DefaultBridge {
				t.Errorf("defaults = %+v", got)
			}
		})
	}
}

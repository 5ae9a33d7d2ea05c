package cni

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
	"os"
)

type timingExec struct {
	invoke.Exec
	t *testing.T
}

func (e timingExec) ExecPlugin(ctx context.Context, p string, stdin []byte, env []string) ([]byte, error) {
	start := time.Now()
	out, err := e.Exec.ExecPlugin(ctx, p, stdin, env)
	if os.Getenv("VERBOSE") != "" {
		e.t.Logf("%s %s %s: %v", envValue(env, "CNI_COMMAND"), filepath.Base(p), envValue(env, "CNI_IFNAME"), time.Since(start))
	}
	return out, err
}

func TestZZTiming(t *testing.T) {
	requireIntegration(t)
	e := newRealEnv(t)
	variant := os.Getenv("VARIANT")
	if variant != "" {
		data, _ := os.ReadFile(filepath.Join(e.confDir, "10-test.conflist"))
		var conf map[string]any
		json.Unmarshal(data, &conf)
		plugins := conf["plugins"].([]any)
		var keep []any
		for _, p := range plugins {
			pm := p.(map[string]any)
			if strings.Contains(variant, "nofw") && pm["type"] == "firewall" {
				continue
			}
			if strings.Contains(variant, "nft") && pm["type"] == "bridge" {
				pm["ipMasqBackend"] = "nftables"
			}
			if strings.Contains(variant, "nft") && pm["type"] == "portmap" {
				pm["backend"] = "nftables"
			}
			keep = append(keep, pm)
		}
		conf["plugins"] = keep
		data, _ = json.Marshal(conf)
		os.WriteFile(filepath.Join(e.confDir, "10-test.conflist"), data, 0644)
		e.m.reload(context.Background())
	}
	hp := os.Getenv("HOSTPORT") != ""
	var setups, tds []time.Duration
	defer func() {
		slices.Sort(setups)
		slices.Sort(tds)
		t.Logf("MEDIAN setup %v teardown %v", setups[len(setups)/2], tds[len(tds)/2])
	}()
	e.m.exec = timingExec{&invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}, t}
	ctx := context.Background()
	for i := 0; i < 12; i++ {
		pod := e.pod(t)
		if hp {
			pod.PortMappings = []PortMapping{{HostPort: int32(31000 + i), ContainerPort: 80}}
		}
		start := time.Now()
		if _, err := e.m.Setup(ctx, pod); err != nil {
			t.Fatal(err)
		}
		setups = append(setups, time.Since(start))
		start = time.Now()
		if err := e.m.Teardown(ctx, pod); err != nil {
			t.Fatal(err)
		}
		tds = append(tds, time.Since(start))
	}
}

package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

type testEnv struct {
	m                 *Manager
	fake              *fakeExec
	confDir, cacheDir string
}

// newTestEnv is a Manager on a temp conf dir holding files, with fake
// plugins.
func newTestEnv(t *testing.T, files map[string]string) *testEnv {
	t.Helper()
	e := &testEnv{fake: newFakeExec(), confDir: t.TempDir(), cacheDir: t.TempDir()}
	writeFiles(t, e.confDir, files)
	m, err := newManager(context.Background(), Options{
		ConfDir: e.confDir, CacheDir: e.cacheDir, BinDirs: []string{"/fake/a", "/fake/b"},
	}, e.fake)
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	e.fake.takeCalls()
	return e
}

func defaultFiles() map[string]string {
	return map[string]string{"10-net.conflist": strings.Replace(bridgeList, "%s", "testnet", 1)}
}

// leftovers lists the files under the cache dir: none after a teardown.
func (e *testEnv) leftovers(t *testing.T) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(e.cacheDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, strings.TrimPrefix(path, e.cacheDir))
		}
		return nil
	})
	return files
}

func TestSetupPassesArgs(t *testing.T) {
	e := newTestEnv(t, defaultFiles())
	ctx := context.Background()
	pod := chainPod("sb1")
	pod.DNS = &DNS{Servers: []string{"10.0.0.10"}}
	pod.Bandwidth = &Bandwidth{EgressRate: 1000, EgressBurst: 1000}
	res, err := e.m.Setup(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	calls := e.fake.takeCalls()
	want := []string{"ADD bandwidth eth0", "ADD bridge eth0", "ADD firewall eth0", "ADD loopback lo", "ADD portmap eth0"}
	if got := sortedSummary(calls); !slices.Equal(got, want) {
		t.Fatalf("calls:\n%s\nwant:\n%s", joinLines(got), joinLines(want))
	}
	var netCalls []string
	for _, c := range calls {
		if c.IfName == PodInterface {
			netCalls = append(netCalls, c.Plugin)
		}
	}
	if want := []string{"bridge", "portmap", "firewall", "bandwidth"}; !slices.Equal(netCalls, want) {
		t.Errorf("pod network ADD order %v, want %v", netCalls, want)
	}
	wantArgs := "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=sb1;K8S_POD_UID=uid-sb1"
	for _, c := range calls {
		if c.Args != wantArgs || c.ContainerID != "sb1" || c.NetNS != selfNetNS || c.Path != "/fake/a:/fake/b" {
			t.Errorf("%s %s: args %q id %q netns %q path %q", c.Command, c.Plugin, c.Args, c.ContainerID, c.NetNS, c.Path)
		}
		rc, _ := c.Conf["runtimeConfig"].(map[string]any)
		var keys []string
		for k := range rc {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		// Only the capabilities a plugin declares reach it; nobody declares dns.
		var wantKeys []string
		switch c.Plugin {
		case "portmap":
			wantKeys = []string{capPortMappings}
		case "bandwidth":
			wantKeys = []string{capBandwidth}
		}
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("%s runtimeConfig keys %v, want %v", c.Plugin, keys, wantKeys)
		}
	}
	pm := callsOf(calls, "ADD", "portmap")[0].Conf["runtimeConfig"].(map[string]any)[capPortMappings]
	if got, _ := json.Marshal(pm); string(got) != `[{"containerPort":80,"hostPort":8080,"protocol":"tcp"}]` {
		t.Errorf("portMappings = %s", got)
	}
	if res.Network != "testnet" || res.Interface != "eth0" || res.MAC != "aa:aa:aa:aa:aa:02" ||
		fmt.Sprint(res.IPs) != "[10.1.2.3]" || fmt.Sprint(res.Gateways) != "[10.1.2.1]" {
		t.Errorf("result = %+v", res)
	}
	if err := e.m.Check(ctx, Pod{ID: "sb1"}); err != nil {
		t.Errorf("Check: %v", err)
	}
	checks := e.fake.takeCalls()
	if len(callsOf(checks, "CHECK", "bridge")) != 1 || len(callsOf(checks, "CHECK", "loopback")) != 1 {
		t.Errorf("Check ran %v", summary(checks))
	}
	for _, c := range checks {
		if c.Conf["prevResult"] == nil {
			t.Errorf("CHECK %s without prevResult", c.Plugin)
		}
	}
}

func TestSetupResultOrder(t *testing.T) {
	e := newTestEnv(t, defaultFiles())
	// IPv6 first, an address on the host side, one without an interface.
	e.fake.result = `{"cniVersion":"1.0.0",
		"interfaces":[{"name":"veth1"},{"name":"eth0","mac":"aa:bb:cc:dd:ee:ff","sandbox":"/ns"}],
		"ips":[{"interface":1,"address":"fd00::5/64","gateway":"fd00::1"},
		       {"interface":0,"address":"192.168.9.9/24"},
		       {"interface":1,"address":"10.1.2.5/24","gateway":"10.1.2.1"},
		       {"address":"10.1.3.5/24","gateway":"10.1.2.1"}]}`
	res, err := e.m.Setup(context.Background(), validPod("sb1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(res.IPs); got != "[10.1.2.5 10.1.3.5 fd00::5]" {
		t.Errorf("IPs = %s", got)
	}
	if got := fmt.Sprint(res.Gateways); got != "[10.1.2.1 fd00::1]" {
		t.Errorf("Gateways = %s", got)
	}
	if len(res.IPs[0]) != 4 {
		t.Errorf("IPv4 address not in 4-byte form: %d bytes", len(res.IPs[0]))
	}
}

func TestSetupErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("invalid pod", func(t *testing.T) {
		e := newTestEnv(t, defaultFiles())
		pod := validPod("sb1")
		pod.PortMappings = []PortMapping{{ContainerPort: 80, HostPort: 99999}}
		if _, err := e.m.Setup(ctx, pod); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "PortMappings[0].HostPort") {
			t.Errorf("err = %v", err)
		}
		if calls := e.fake.takeCalls(); len(calls) > 0 || len(e.leftovers(t)) > 0 {
			t.Errorf("invalid input ran %v, left %v", summary(calls), e.leftovers(t))
		}
	})
	t.Run("netns is not a netns", func(t *testing.T) {
		e := newTestEnv(t, defaultFiles())
		pod := validPod("sb1")
		pod.NetNS = t.TempDir()
		if _, err := e.m.Setup(ctx, pod); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "NetNS") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("no config", func(t *testing.T) {
		e := newTestEnv(t, nil)
		_, err := e.m.Setup(ctx, chainPod("sb1"))
		if !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), e.confDir) {
			t.Errorf("err = %v, want FailedPrecondition naming the conf dir", err)
		}
	})
	t.Run("already set up", func(t *testing.T) {
		e := newTestEnv(t, defaultFiles())
		if _, err := e.m.Setup(ctx, chainPod("sb1")); err != nil {
			t.Fatal(err)
		}
		e.fake.takeCalls()
		if _, err := e.m.Setup(ctx, chainPod("sb1")); !errdefs.IsAlreadyExists(err) {
			t.Errorf("second Setup: %v, want AlreadyExists", err)
		}
		if calls := e.fake.takeCalls(); len(calls) > 0 {
			t.Errorf("second Setup ran %v", summary(calls))
		}
	})
}

func TestSetupFailureCleansUp(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name          string
		failAdd       string
		wantDel       []string // DEL calls of the cleanup, in order
		wantPrevFrom  string   // plugin whose DEL must get prevResult
		wantErrSubstr string
	}{{
		name:          "firewall fails after bridge and portmap",
		failAdd:       "ADD firewall",
		wantDel:       []string{"DEL bandwidth eth0", "DEL firewall eth0", "DEL portmap eth0", "DEL bridge eth0", "DEL loopback lo"},
		wantPrevFrom:  "firewall",
		wantErrSubstr: `type="firewall"`,
	}, {
		name:          "first plugin fails",
		failAdd:       "ADD bridge",
		wantDel:       []string{"DEL bandwidth eth0", "DEL firewall eth0", "DEL portmap eth0", "DEL bridge eth0", "DEL loopback lo"},
		wantErrSubstr: `type="bridge"`,
	}, {
		name:          "loopback fails",
		failAdd:       "ADD loopback",
		wantDel:       []string{"DEL bandwidth eth0", "DEL firewall eth0", "DEL portmap eth0", "DEL bridge eth0", "DEL loopback lo"},
		wantErrSubstr: "loopback",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, defaultFiles())
			e.fake.setFail(tt.failAdd, errInjected)
			pod := chainPod("sb1")
			_, err := e.m.Setup(ctx, pod)
			if err == nil || !strings.Contains(err.Error(), tt.wantErrSubstr) || !strings.Contains(err.Error(), errInjected.Error()) {
				t.Fatalf("err = %v", err)
			}
			var dels []fakeCall
			for _, c := range e.fake.takeCalls() {
				if c.Command == "DEL" {
					dels = append(dels, c)
				}
			}
			if got := podNetFirst(dels); !slices.Equal(got, tt.wantDel) {
				t.Errorf("cleanup:\n%s\nwant:\n%s", joinLines(got), joinLines(tt.wantDel))
			}
			for _, c := range dels {
				prev, _ := c.Conf["prevResult"].(map[string]any)
				if c.Plugin == tt.wantPrevFrom && prev == nil {
					t.Errorf("DEL %s without the partial prevResult", c.Plugin)
				}
				if c.Plugin == "portmap" && c.Conf["runtimeConfig"] == nil {
					t.Errorf("DEL portmap without its portMappings")
				}
			}
			if left := e.leftovers(t); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			if err := e.m.Teardown(ctx, Pod{ID: "sb1"}); err != nil {
				t.Errorf("Teardown after cleanup: %v", err)
			}
			if calls := e.fake.takeCalls(); len(calls) > 0 {
				t.Errorf("Teardown after cleanup ran %v", summary(calls))
			}
		})
	}
}

func TestFailedCleanupIsRetriedByTeardown(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, defaultFiles())
	e.fake.setFail("ADD bandwidth", errInjected)
	e.fake.setFail("DEL bridge", errInjected)
	if _, err := e.m.Setup(ctx, chainPod("sb1")); err == nil {
		t.Fatal("Setup succeeded")
	}
	e.fake.takeCalls()
	if ids, _ := e.m.Attached(); !slices.Equal(ids, []string{"sb1"}) {
		t.Errorf("Attached = %v, want [sb1]", ids)
	}
	// Still failing: the pod network stays recorded, the loopback is done.
	if err := e.m.Teardown(ctx, Pod{ID: "sb1"}); err == nil {
		t.Fatal("Teardown succeeded with DEL bridge failing")
	}
	if got := summary(e.fake.takeCalls()); !slices.Equal(got, []string{"DEL bandwidth eth0", "DEL firewall eth0", "DEL portmap eth0", "DEL bridge eth0"}) {
		t.Errorf("retry ran %v", got)
	}
	e.fake.setFail("DEL bridge", nil)
	if err := e.m.Teardown(ctx, Pod{ID: "sb1"}); err != nil {
		t.Fatal(err)
	}
	dels := e.fake.takeCalls()
	if got := summary(dels); !slices.Equal(got, []string{"DEL bandwidth eth0", "DEL firewall eth0", "DEL portmap eth0", "DEL bridge eth0"}) {
		t.Errorf("second retry ran %v", got)
	}
	if callsOf(dels, "DEL", "bandwidth")[0].Conf["prevResult"] == nil {
		t.Error("the partial result was not kept for the retry")
	}
	if left := e.leftovers(t); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if ids, _ := e.m.Attached(); len(ids) != 0 {
		t.Errorf("Attached = %v", ids)
	}
}

func TestTeardown(t *testing.T) {
	ctx := context.Background()
	t.Run("never set up", func(t *testing.T) {
		e := newTestEnv(t, defaultFiles())
		for range 2 {
			if err := e.m.Teardown(ctx, Pod{ID: "nobody"}); err != nil {
				t.Fatal(err)
			}
		}
		if calls := e.fake.takeCalls(); len(calls) > 0 {
			t.Errorf("ran %v", summary(calls))
		}
	})
	t.Run("invalid ID", func(t *testing.T) {
		e := newTestEnv(t, defaultFiles())
		if err := e.m.Teardown(ctx, Pod{}); !errdefs.IsInvalidArgument(err) || !strings.HasPrefix(err.Error(), "ID:") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("uses the config of the ADD after the conf dir changed", func(t *testing.T) {
		e := newTestEnv(t, defaultFiles())
		pod := chainPod("sb1")
		if _, err := e.m.Setup(ctx, pod); err != nil {
			t.Fatal(err)
		}
		e.fake.takeCalls()
		os.Remove(filepath.Join(e.confDir, "10-net.conflist"))
		writeFiles(t, e.confDir, map[string]string{"20-other.conf": singleConf})
		e.m.reload(ctx)
		if name, _ := e.m.Network(); name != "single" {
			t.Fatalf("reload: network %q", name)
		}
		// A Teardown without NetNS or metadata, as after a restart.
		if err := e.m.Teardown(ctx, Pod{ID: "sb1"}); err != nil {
			t.Fatal(err)
		}
		calls := e.fake.takeCalls()
		want := []string{"DEL bandwidth eth0", "DEL firewall eth0", "DEL portmap eth0", "DEL bridge eth0", "DEL loopback lo"}
		if got := podNetFirst(calls); !slices.Equal(got, want) {
			t.Fatalf("ran %v, want %v", got, want)
		}
		for _, c := range calls {
			if c.Conf["name"] != "testnet" && c.Plugin != "loopback" {
				t.Errorf("DEL %s with network %v", c.Plugin, c.Conf["name"])
			}
			if !strings.Contains(c.Args, "K8S_POD_NAME=web") || c.NetNS != selfNetNS {
				t.Errorf("DEL %s args %q netns %q", c.Plugin, c.Args, c.NetNS)
			}
			if c.Plugin != "loopback" && c.Conf["prevResult"] == nil {
				t.Errorf("DEL %s without the cached result", c.Plugin)
			}
		}
		rc, _ := callsOf(calls, "DEL", "portmap")[0].Conf["runtimeConfig"].(map[string]any)
		if rc[capPortMappings] == nil {
			t.Error("DEL portmap without the portMappings of the ADD")
		}
		if left := e.leftovers(t); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
		if err := e.m.Teardown(ctx, Pod{ID: "sb1"}); err != nil {
			t.Fatal(err)
		}
		if calls := e.fake.takeCalls(); len(calls) > 0 {
			t.Errorf("second Teardown ran %v", summary(calls))
		}
	})
	t.Run("missing netns is passed as empty", func(t *testing.T) {
		e := newTestEnv(t, defaultFiles())
		if _, err := e.m.Setup(ctx, chainPod("sb1")); err != nil {
			t.Fatal(err)
		}
		e.fake.takeCalls()
		if err := e.m.Teardown(ctx, Pod{ID: "sb1", NetNS: "/run/netns/gone"}); err != nil {
			t.Fatal(err)
		}
		for _, c := range e.fake.takeCalls() {
			if c.NetNS != "" {
				t.Errorf("DEL %s with netns %q", c.Plugin, c.NetNS)
			}
		}
	})
	t.Run("falls back to libcni's cache without a record", func(t *testing.T) {
		e := newTestEnv(t, defaultFiles())
		if _, err := e.m.Setup(ctx, chainPod("sb1")); err != nil {
			t.Fatal(err)
		}
		e.fake.takeCalls()
		if err := os.Remove(recordPath(e.cacheDir, "sb1")); err != nil {
			t.Fatal(err)
		}
		if ids, _ := e.m.Attached(); !slices.Equal(ids, []string{"sb1"}) {
			t.Errorf("Attached = %v", ids)
		}
		if err := e.m.Teardown(ctx, Pod{ID: "sb1"}); err != nil {
			t.Fatal(err)
		}
		want := []string{"DEL bandwidth eth0", "DEL firewall eth0", "DEL portmap eth0", "DEL bridge eth0", "DEL loopback lo"}
		if got := podNetFirst(e.fake.takeCalls()); !slices.Equal(got, want) {
			t.Errorf("ran %v, want %v", got, want)
		}
		if left := e.leftovers(t); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, defaultFiles())
	if err := e.m.Check(ctx, Pod{ID: "sb1"}); !errdefs.IsNotFound(err) {
		t.Errorf("Check of unknown pod: %v, want NotFound", err)
	}
	if _, err := e.m.Setup(ctx, chainPod("sb1")); err != nil {
		t.Fatal(err)
	}
	e.fake.setFail("CHECK firewall", errInjected)
	if err := e.m.Check(ctx, Pod{ID: "sb1"}); err == nil || !strings.Contains(err.Error(), errInjected.Error()) {
		t.Errorf("Check = %v", err)
	}
}

func TestStatus(t *testing.T) {
	e := newTestEnv(t, nil)
	err := e.m.Status()
	if err == nil || !strings.Contains(err.Error(), e.confDir) {
		t.Fatalf("no config: Status() = %v, want an error naming %s", err, e.confDir)
	}

	writeFiles(t, e.confDir, defaultFiles())
	e.fake.installed = map[string]bool{"bridge": true, "portmap": true}
	e.m.reload(context.Background())
	err = e.m.Status()
	for _, s := range []string{"firewall", "bandwidth", "loopback", "/fake/a:/fake/b", "10-net.conflist"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("missing plugins: Status() = %v, want it to name %s", err, s)
		}
	}
	if err != nil && strings.Contains(err.Error(), "bridge") {
		t.Errorf("Status() names an installed plugin: %v", err)
	}

	e.fake.mu.Lock()
	e.fake.installed = nil
	e.fake.versions = map[string][]string{"firewall": {"0.3.1"}}
	e.fake.mu.Unlock()
	if err := e.m.Status(); err == nil || !strings.Contains(err.Error(), "firewall") {
		t.Errorf("unsupported version: Status() = %v", err)
	}

	e.fake.mu.Lock()
	e.fake.versions = nil
	e.fake.mu.Unlock()
	if err := e.m.Status(); err != nil {
		t.Errorf("Status() = %v", err)
	}
	e.fake.takeCalls()
	e.fake.mu.Lock()
	e.fake.calls = nil
	e.fake.mu.Unlock()
	if err := e.m.Status(); err != nil {
		t.Errorf("Status() = %v", err)
	}
	e.fake.mu.Lock()
	n := len(e.fake.calls)
	e.fake.mu.Unlock()
	if n != 0 {
		t.Errorf("a passing Status ran %d plugins again", n)
	}
}

func TestWatch(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.m.Watch(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitStatus := func(wantOK bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := e.m.Status()
			if (err == nil) == wantOK {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Status() = %v after 5s", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitStatus(false)
	writeFiles(t, e.confDir, defaultFiles())
	waitStatus(true)
	if name, _ := e.m.Network(); name != "testnet" {
		t.Errorf("network %q", name)
	}
	// A lexically earlier config takes over.
	writeFiles(t, e.confDir, map[string]string{"05-single.conf": singleConf})
	deadline := time.Now().Add(5 * time.Second)
	for name, _ := e.m.Network(); name != "single"; name, _ = e.m.Network() {
		if time.Now().After(deadline) {
			t.Fatalf("network %q after 5s, want single", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	os.Remove(filepath.Join(e.confDir, "05-single.conf"))
	os.Remove(filepath.Join(e.confDir, "10-net.conflist"))
	waitStatus(false)

	// The conf dir itself removed and recreated: Watch polls, then watches again.
	if err := os.Remove(e.confDir); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := os.Mkdir(e.confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, e.confDir, defaultFiles())
	deadline = time.Now().Add(3 * pollInterval)
	for e.m.Status() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Status() = %v after the conf dir came back", e.m.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConcurrentPods(t *testing.T) {
	e := newTestEnv(t, defaultFiles())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.m.Watch(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("sb%d", i)
			if _, err := e.m.Setup(ctx, validPod(id)); err != nil {
				errs <- err
				return
			}
			if err := e.m.Teardown(ctx, Pod{ID: id}); err != nil {
				errs <- err
			}
			if err := e.m.Teardown(ctx, Pod{ID: id}); err != nil {
				errs <- err
			}
		}()
	}
	// Reloads and Status calls race with the pods.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20 {
			// Atomically, as config tools do: a reload between truncate
			// and write would rightly find no valid config.
			writeFiles(t, e.confDir, map[string]string{".tmp": strings.Replace(bridgeList, "%s", fmt.Sprintf("net%d", i%2), 1)})
			if err := os.Rename(filepath.Join(e.confDir, ".tmp"), filepath.Join(e.confDir, "10-net.conflist")); err != nil {
				t.Error(err)
			}
			e.m.reload(ctx)
			_ = e.m.Status()
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if left := e.leftovers(t); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// chainPod carries a port mapping and bandwidth limits, so every plugin of
// the default chain runs for it (idle ones are trimmed otherwise).
func chainPod(id string) Pod {
	p := validPod(id)
	p.PortMappings = []PortMapping{{ContainerPort: 80, HostPort: 8080}}
	p.Bandwidth = &Bandwidth{EgressRate: 1000, EgressBurst: 1000}
	return p
}

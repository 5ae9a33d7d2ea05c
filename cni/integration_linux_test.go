package cni

// Integration tests against the real plugins in /opt/cni/bin, as root. Each
// test makes its own network namespaces, a bridge with a unique name, a
// private /24 in 10.251.0.0/16, and temp conf, cache and IPAM dirs, and
// removes all of them. Traffic stays between its own namespaces and
// 127.0.0.1.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const pluginDir = "/opt/cni/bin"

func requireIntegration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap", "firewall", "bandwidth", "tuning"} {
		if _, err := os.Stat(filepath.Join(pluginDir, p)); err != nil {
			t.Skipf("CNI plugin %s not installed in %s", p, pluginDir)
		}
	}
	for _, tool := range []string{"ip", "iptables", "iptables-save", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not in PATH", tool)
		}
	}
}

func randHex(n int) string {
	b := make([]byte, (n+1)/2)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newNetNS makes a named network namespace and returns its path.
func newNetNS(t testing.TB) string {
	t.Helper()
	name := "swt-" + randHex(8)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	return "/run/netns/" + name
}

type realEnv struct {
	m                          *Manager
	confDir, cacheDir, dataDir string
	network, bridge            string
	subnet                     *net.IPNet
}

// newRealEnv is a Manager on a conf dir holding the default conflist with
// a test bridge, subnet and IPAM data dir, plus extra plugins at the end.
func newRealEnv(t testing.TB, extra ...map[string]any) *realEnv {
	t.Helper()
	e := &realEnv{
		confDir:  t.TempDir(),
		cacheDir: t.TempDir(),
		dataDir:  t.TempDir(),
		network:  "swtest-" + randHex(8),
		bridge:   "swt" + randHex(8),
		subnet:   freeSubnet(t),
	}
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", e.bridge).Run()
		cleanupIPTables(t, `name: "`+e.network+`"`, e.subnet.String(), subnetPrefix(e.subnet))
	})
	e.writeConf(t, "10-test.conflist", e.network, extra...)
	m, err := New(context.Background(), Options{ConfDir: e.confDir, CacheDir: e.cacheDir, BinDirs: []string{pluginDir}})
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	if err := m.Status(); err != nil {
		t.Fatalf("Status: %v", err)
	}
	return e
}

// writeConf writes the default conflist for the env's bridge and subnet
// under name, with the IPAM data dir moved to the env's.
func (e *realEnv) writeConf(t testing.TB, file, network string, extra ...map[string]any) {
	t.Helper()
	data, err := DefaultConflist(Options{DefaultSubnet: e.subnet.String(), DefaultBridge: e.bridge, DefaultFirewall: true})
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	json.Unmarshal(data, &conf)
	conf["name"] = network
	plugins := conf["plugins"].([]any)
	plugins[0].(map[string]any)["ipam"].(map[string]any)["dataDir"] = e.dataDir
	for _, p := range extra {
		plugins = append(plugins, p)
	}
	conf["plugins"] = plugins
	data, _ = json.Marshal(conf)
	tmp := filepath.Join(e.confDir, ".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.confDir, file)); err != nil {
		t.Fatal(err)
	}
}

// freeSubnet picks a 10.251.X.0/24 the host does not route.
func freeSubnet(t testing.TB) *net.IPNet {
	t.Helper()
	routes := run(t, "ip", "-4", "route", "show", "table", "all")
	for range 50 {
		_, n, _ := net.ParseCIDR(fmt.Sprintf("10.251.%d.0/24", mrand.IntN(256)))
		if !strings.Contains(routes, subnetPrefix(n)) {
			return n
		}
	}
	t.Skip("no free 10.251.X.0/24")
	return nil
}

// subnetPrefix is "10.251.X." for a /24.
func subnetPrefix(n *net.IPNet) string {
	return strings.TrimSuffix(n.IP.String(), "0")
}

func (e *realEnv) pod(t testing.TB) Pod {
	id := randHex(32)
	return Pod{ID: id, Name: "pod-" + id[:6], Namespace: "swtest", UID: randHex(16), NetNS: newNetNS(t)}
}

// ipFiles are host-local's allocation files: one per allocated IP.
func (e *realEnv) ipFiles(t *testing.T) []string {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(e.dataDir, e.network))
	var ips []string
	for _, en := range entries {
		if net.ParseIP(en.Name()) != nil {
			ips = append(ips, en.Name())
		}
	}
	return ips
}

func (e *realEnv) cacheFiles(t *testing.T) []string {
	var files []string
	filepath.WalkDir(e.cacheDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, strings.TrimPrefix(path, e.cacheDir))
		}
		return nil
	})
	return files
}

// iptablesLines are the lines of iptables-save holding any of subs.
func iptablesLines(t *testing.T, subs ...string) []string {
	t.Helper()
	var lines []string
	for _, line := range strings.Split(run(t, "iptables-save"), "\n") {
		for _, s := range subs {
			if strings.Contains(line, s) {
				lines = append(lines, line)
				break
			}
		}
	}
	return lines
}

func TestIntegrationPods(t *testing.T) {
	requireIntegration(t)
	e := newRealEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.m.Watch(ctx)

	hostPort := int32(30000 + mrand.IntN(2000))
	pod1, pod2 := e.pod(t), e.pod(t)
	pod1.PortMappings = []PortMapping{{HostPort: hostPort, ContainerPort: 8080}, {ContainerPort: 9090}}
	pod1.DNS = &DNS{Servers: []string{"10.96.0.10"}, Searches: []string{"swtest.svc.cluster.local"}}

	start := time.Now()
	res1, err := e.m.Setup(ctx, pod1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Setup with a hostPort: %v", time.Since(start))
	start = time.Now()
	res2, err := e.m.Setup(ctx, pod2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Setup: %v", time.Since(start))
	ip1, ip2 := res1.IPs[0], res2.IPs[0]
	for _, r := range []*Result{res1, res2} {
		if len(r.IPs) != 1 || !e.subnet.Contains(r.IPs[0]) || r.Interface != "eth0" || r.MAC == "" ||
			len(r.Gateways) != 1 || !e.subnet.Contains(r.Gateways[0]) || r.Network != e.network {
			t.Errorf("result %+v not in %s", r, e.subnet)
		}
	}
	if ip1.Equal(ip2) {
		t.Fatalf("both pods got %s", ip1)
	}
	if err := e.m.Check(ctx, pod1); err != nil {
		t.Errorf("Check: %v", err)
	}

	// The loopback plugin brought lo up.
	if out := run(t, "ip", "netns", "exec", filepath.Base(pod1.NetNS), "ip", "-o", "link", "show", "lo"); !strings.Contains(out, ",UP") {
		t.Errorf("lo is not up: %s", out)
	}
	run(t, "ip", "netns", "exec", filepath.Base(pod1.NetNS), "busybox", "ping", "-c1", "-W2", ip2.String())

	// hostPort: 127.0.0.1:hostPort reaches an HTTP server in pod1.
	www := t.TempDir()
	os.WriteFile(filepath.Join(www, "index.html"), []byte("hello from pod1\n"), 0o644)
	srv := exec.Command("ip", "netns", "exec", filepath.Base(pod1.NetNS), "busybox", "httpd", "-f", "-p", "8080", "-h", www)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	var body []byte
	client := &http.Client{Timeout: 2 * time.Second}
	for range 40 {
		var resp *http.Response
		if resp, err = client.Get(fmt.Sprintf("http://127.0.0.1:%d/", hostPort)); err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !bytes.Contains(body, []byte("hello from pod1")) {
		t.Errorf("127.0.0.1:%d: %v %s", hostPort, err, body)
	}

	// Rules of the pod: portmap and ipMasq by sandbox ID, firewall by IP.
	pod1Rules := func() []string { return iptablesLines(t, pod1.ID, ip1.String()+"/32") }
	before := pod1Rules()
	if len(iptablesLines(t, pod1.ID)) == 0 || len(iptablesLines(t, ip1.String()+"/32")) == 0 ||
		len(iptablesLines(t, fmt.Sprintf("--dports %d", hostPort))) == 0 {
		t.Errorf("pod1 rules missing:\n%s", joinLines(before))
	}
	if n := len(e.ipFiles(t)); n != 2 {
		t.Errorf("host-local holds %d IPs, want 2", n)
	}

	// A new config (another network) must not change what DEL runs.
	e.writeConf(t, "00-other.conflist", "swtest-other-"+randHex(4))
	deadline := time.Now().Add(5 * time.Second)
	for name, _ := e.m.Network(); !strings.HasPrefix(name, "swtest-other-"); name, _ = e.m.Network() {
		if time.Now().After(deadline) {
			t.Fatalf("Watch did not load the new config: network %q", name)
		}
		time.Sleep(20 * time.Millisecond)
	}

	start = time.Now()
	if err := e.m.Teardown(ctx, Pod{ID: pod1.ID}); err != nil {
		t.Fatal(err)
	}
	t.Logf("Teardown with a hostPort: %v", time.Since(start))
	if left := pod1Rules(); len(left) > 0 {
		t.Errorf("%d of %d iptables lines of pod1 left:\n%s", len(left), len(before), joinLines(left))
	}
	if ips := e.ipFiles(t); len(ips) != 1 || ips[0] != ip2.String() {
		t.Errorf("host-local holds %v, want only %s", ips, ip2)
	}
	if out := run(t, "ip", "netns", "exec", filepath.Base(pod1.NetNS), "ip", "-o", "link"); strings.Contains(out, "eth0") {
		t.Errorf("eth0 left in pod1: %s", out)
	}
	if err := e.m.Teardown(ctx, pod1); err != nil {
		t.Errorf("second Teardown: %v", err)
	}
	start = time.Now()
	if err := e.m.Teardown(ctx, pod2); err != nil {
		t.Fatal(err)
	}
	t.Logf("Teardown: %v", time.Since(start))
	if ips := e.ipFiles(t); len(ips) != 0 {
		t.Errorf("host-local holds %v", ips)
	}
	if files := e.cacheFiles(t); len(files) != 0 {
		t.Errorf("cache holds %v", files)
	}
	if left := iptablesLines(t, pod2.ID, ip2.String()+"/32"); len(left) > 0 {
		t.Errorf("pod2 rules left:\n%s", joinLines(left))
	}
	if out := run(t, "ip", "-o", "link", "show", "master", e.bridge); strings.TrimSpace(out) != "" {
		t.Errorf("veths left on the bridge: %s", out)
	}
}

func TestIntegrationBandwidth(t *testing.T) {
	requireIntegration(t)
	e := newRealEnv(t)
	ctx := context.Background()
	ifbs := func() string { return run(t, "ip", "-o", "link", "show", "type", "ifb") }
	ifbBefore := strings.Count(ifbs(), "bwp")
	pod := e.pod(t)
	pod.Bandwidth = &Bandwidth{IngressRate: 10_000_000, IngressBurst: math.MaxUint32, EgressRate: 5_000_000, EgressBurst: math.MaxUint32}
	if _, err := e.m.Setup(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(ifbs(), "bwp"); n != ifbBefore+1 {
		t.Errorf("%d bandwidth ifb devices, want %d", n, ifbBefore+1)
	}
	veths := run(t, "ip", "-o", "link", "show", "master", e.bridge)
	hostVeth := strings.TrimSpace(strings.Split(strings.Split(veths, ":")[1], "@")[0])
	if out := run(t, "tc", "qdisc", "show", "dev", hostVeth); !strings.Contains(out, "tbf") {
		t.Errorf("no tbf qdisc on %s: %s", hostVeth, out)
	}
	if err := e.m.Teardown(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(ifbs(), "bwp"); n != ifbBefore {
		t.Errorf("%d bandwidth ifb devices after Teardown, want %d", n, ifbBefore)
	}
}

func TestIntegrationPartialAddFailure(t *testing.T) {
	requireIntegration(t)
	// tuning fails after bridge, portmap, firewall and bandwidth succeeded.
	e := newRealEnv(t, map[string]any{"type": "tuning", "sysctl": map[string]string{"net.ipv4.conf.eth0.no_such_sysctl": "1"}})
	ctx := context.Background()
	pod := e.pod(t)
	pod.PortMappings = []PortMapping{{HostPort: int32(30000 + mrand.IntN(2000)), ContainerPort: 80}}
	_, err := e.m.Setup(ctx, pod)
	if err == nil || !strings.Contains(err.Error(), "tuning") {
		t.Fatalf("Setup = %v, want the tuning failure", err)
	}
	t.Logf("Setup error: %v", err)
	if ips := e.ipFiles(t); len(ips) != 0 {
		t.Errorf("host-local still holds %v", ips)
	}
	if left := iptablesLines(t, pod.ID, subnetPrefix(e.subnet)); len(left) > 0 {
		t.Errorf("iptables lines left:\n%s", joinLines(left))
	}
	if out := run(t, "ip", "-o", "link", "show", "master", e.bridge); strings.TrimSpace(out) != "" {
		t.Errorf("veths left on the bridge: %s", out)
	}
	if files := e.cacheFiles(t); len(files) != 0 {
		t.Errorf("cache holds %v", files)
	}
	if err := e.m.Teardown(ctx, pod); err != nil {
		t.Errorf("Teardown after failed Setup: %v", err)
	}
}

func TestIntegrationTeardownWithoutNetNS(t *testing.T) {
	requireIntegration(t)
	e := newRealEnv(t)
	ctx := context.Background()
	pod := e.pod(t)
	res, err := e.m.Setup(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "netns", "del", filepath.Base(pod.NetNS))
	if err := e.m.Teardown(ctx, pod); err != nil {
		t.Fatalf("Teardown with the netns gone: %v", err)
	}
	if ips := e.ipFiles(t); len(ips) != 0 {
		t.Errorf("host-local still holds %v", ips)
	}
	if left := iptablesLines(t, "-A CNI-FORWARD -d "+res.IPs[0].String()+"/32", "-A CNI-FORWARD -s "+res.IPs[0].String()+"/32"); len(left) > 0 {
		t.Errorf("firewall rules left:\n%s", joinLines(left))
	}
	// Known limit of the bridge plugin: without the netns it cannot find the
	// pod's addresses, so its ipMasq rule and chain stay (cleanup removes them).
	if left := iptablesLines(t, pod.ID); len(left) > 0 {
		t.Logf("bridge ipMasq lines left without the netns (known plugin limit):\n%s", joinLines(left))
	}
	if files := e.cacheFiles(t); len(files) != 0 {
		t.Errorf("cache holds %v", files)
	}
}

func TestIntegrationWatch(t *testing.T) {
	requireIntegration(t)
	e := &realEnv{confDir: t.TempDir(), dataDir: t.TempDir(), network: "swtest-" + randHex(8), bridge: "swt" + randHex(8), subnet: freeSubnet(t)}
	m, err := New(context.Background(), Options{ConfDir: e.confDir, CacheDir: t.TempDir(), BinDirs: []string{pluginDir}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Status(); err == nil || !strings.Contains(err.Error(), e.confDir) {
		t.Fatalf("Status() = %v, want an error naming %s", err, e.confDir)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Watch(ctx)
	time.Sleep(50 * time.Millisecond)
	e.writeConf(t, "10-late.conflist", e.network)
	start := time.Now()
	for m.Status() != nil {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("Status() = %v 5s after a config was written", m.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("ready %v after the config was written", time.Since(start))
}

// cleanupIPTables removes, as a safety net after a failed test, the
// iptables rules holding any of subs and the per-pod chains they jump to.
func cleanupIPTables(t testing.TB, subs ...string) {
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		return
	}
	table := ""
	var chains []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "*") {
			table = line[1:]
			continue
		}
		if !strings.HasPrefix(line, "-A ") || !containsAny(line, subs) {
			continue
		}
		args := splitShellWords(line)
		args[0] = "-D"
		if err := exec.Command("iptables", append([]string{"-w", "-t", table}, args...)...).Run(); err != nil {
			t.Logf("cleanup: iptables -t %s %s: %v", table, strings.Join(args, " "), err)
		}
		for i, a := range args {
			if a == "-j" && i+1 < len(args) && strings.HasPrefix(args[i+1], "CNI-") && !isSharedChain(args[i+1]) {
				chains = append(chains, table+" "+args[i+1])
			}
		}
	}
	for _, tc := range chains {
		table, chain, _ := strings.Cut(tc, " ")
		exec.Command("iptables", "-w", "-t", table, "-F", chain).Run()
		exec.Command("iptables", "-w", "-t", table, "-X", chain).Run()
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// sharedChains are created by the plugins once and shared by all pods.
var sharedChains = []string{"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ", "CNI-FORWARD", "CNI-ADMIN"}

func isSharedChain(c string) bool {
	for _, s := range sharedChains {
		if c == s {
			return true
		}
	}
	return false
}

// splitShellWords splits an iptables-save rule line: words separated by
// spaces, "quoted" words with \" escapes.
func splitShellWords(s string) []string {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted && c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			quoted = !quoted
			inWord = true
		case c == ' ' && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// BenchmarkSetupTeardown times Setup and Teardown of a pod without
// hostPorts on the default conflist (firewall included with
// FIREWALL=1): go test -run x -bench SetupTeardown ./cni/
func BenchmarkSetupTeardown(b *testing.B) {
	requireIntegration(b)
	e := newRealEnv(b)
	if os.Getenv("FIREWALL") == "" {
		e.writeConfWithout(b, "firewall")
		e.m.reload(context.Background())
	}
	ctx := context.Background()
	var setup, teardown time.Duration
	for b.Loop() {
		b.StopTimer()
		pod := e.pod(b)
		b.StartTimer()
		start := time.Now()
		if _, err := e.m.Setup(ctx, pod); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if err := e.m.Teardown(ctx, pod); err != nil {
			b.Fatal(err)
		}
		setup += mid.Sub(start)
		teardown += time.Since(mid)
		b.StopTimer()
		exec.Command("ip", "netns", "del", filepath.Base(pod.NetNS)).Run()
		b.StartTimer()
	}
	b.ReportMetric(float64(setup.Microseconds())/1000/float64(b.N), "setup-ms/op")
	b.ReportMetric(float64(teardown.Microseconds())/1000/float64(b.N), "teardown-ms/op")
}

// writeConfWithout rewrites the env's config without the plugins of type.
func (e *realEnv) writeConfWithout(t testing.TB, pluginType string) {
	t.Helper()
	path := filepath.Join(e.confDir, "10-test.conflist")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	json.Unmarshal(data, &conf)
	var keep []any
	for _, p := range conf["plugins"].([]any) {
		if p.(map[string]any)["type"] != pluginType {
			keep = append(keep, p)
		}
	}
	conf["plugins"] = keep
	data, _ = json.Marshal(conf)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

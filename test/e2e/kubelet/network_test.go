package kubelet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/gomega"
)

// The suite's pod network: its own bridge, subnet and network name (apart
// from test/e2e's, so the two suites never share a rule), host-local's
// allocations under the suite's work dir, and portmap for hostPort.
const (
	testBridge  = "swkubelet0"
	testSubnet  = "10.252.40.0/24"
	testNetwork = "slipway-kubelet-e2e"
)

var ipamDir string

// writeTestNetwork writes the suite's conflist and returns its conf dir.
func writeTestNetwork(work string) string {
	dir := filepath.Join(work, "net.d")
	ipamDir = filepath.Join(work, "ipam")
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	conflist := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}`, testNetwork, testBridge, testSubnet, ipamDir)
	Expect(os.WriteFile(filepath.Join(dir, "10-kubelet-e2e.conflist"), []byte(conflist), 0o644)).To(Succeed())
	return dir
}

// ipAllocations counts host-local's live allocations on the suite network.
func ipAllocations() int {
	entries, _ := os.ReadDir(filepath.Join(ipamDir, testNetwork))
	n := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "last_reserved_ip") && e.Name() != "lock" {
			n++
		}
	}
	return n
}

// networkRules lists the iptables rules that name the suite's network (the
// plugins' comments do).
func networkRules() []string {
	out, err := exec.Command("iptables-save").Output()
	Expect(err).NotTo(HaveOccurred())
	var rules []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "-A ") && strings.Contains(line, testNetwork) {
			rules = append(rules, line)
		}
	}
	return rules
}

// removeTestNetwork deletes the suite's bridge, and the NAT rules and
// chains of pods a failed spec could not remove; after a clean run there
// are none.
func removeTestNetwork() {
	_ = exec.Command("ip", "link", "del", testBridge).Run()
	out, err := exec.Command("iptables", "-t", "nat", "-S").Output()
	if err != nil {
		return
	}
	chains := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "-A ") || !strings.Contains(line, testNetwork) {
			continue
		}
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "CNI-") && !strings.HasPrefix(f, "CNI-HOSTPORT-") {
				chains[f] = true
			}
		}
		// The rule's comment is quoted: let the shell split it.
		_ = exec.Command("sh", "-c", "iptables -t nat "+strings.Replace(line, "-A ", "-D ", 1)).Run()
	}
	for chain := range chains {
		_ = exec.Command("iptables", "-t", "nat", "-F", chain).Run()
		_ = exec.Command("iptables", "-t", "nat", "-X", chain).Run()
	}
}

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/gomega"
)

// The suite's pod network: its own bridge and subnet, and host-local's
// allocations under the suite's work dir, so nothing collides with the node.
const (
	testBridge = "swe2e0"
	testSubnet = "10.252.0.0/24"
)

var ipamDir string

// writeTestNetwork writes the suite's conflist and returns its conf dir.
func writeTestNetwork(work string) string {
	dir := filepath.Join(work, "net.d")
	ipamDir = filepath.Join(work, "ipam")
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	conflist := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "slipway-e2e",
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}`, testBridge, testSubnet, ipamDir)
	Expect(os.WriteFile(filepath.Join(dir, "10-e2e.conflist"), []byte(conflist), 0o644)).To(Succeed())
	return dir
}

// removeTestNetwork deletes the suite's bridge, and the NAT rules and
// chains of pods a failed spec could not remove (the plugins' comments name
// the suite's network); after a clean run there are none.
func removeTestNetwork() {
	_ = exec.Command("ip", "link", "del", testBridge).Run()
	out, err := exec.Command("iptables", "-t", "nat", "-S").Output()
	if err != nil {
		return
	}
	chains := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "-A ") || !strings.Contains(line, "slipway-e2e") {
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

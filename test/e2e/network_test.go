package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

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

// removeTestNetwork deletes the suite's bridge; pods' rules and addresses
// are gone with the pods.
func removeTestNetwork() {
	_ = exec.Command("ip", "link", "del", testBridge).Run()
}

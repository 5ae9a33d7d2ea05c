// Package harness holds what the e2e suites (test/e2e and test/e2e/kubelet)
// share about the node they run on: a pod network of the suite's own and the
// clean-up of mounts under a work directory.
package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Network is a suite's pod network: its own CNI network name, bridge and
// subnet (so suites never share a rule with each other or the node), a
// bridge + host-local + portmap conflist, and host-local's allocations
// under the suite's work dir. The plugins' iptables comments carry Name.
type Network struct {
	Name   string
	Bridge string
	Subnet string

	// ConfDir holds the conflist and IPAMDir host-local's allocations; Write
	// sets both.
	ConfDir string
	IPAMDir string
}

// Write writes the network's conflist under work and sets ConfDir and
// IPAMDir.
func (n *Network) Write(work string) error {
	n.ConfDir = filepath.Join(work, "net.d")
	n.IPAMDir = filepath.Join(work, "ipam")
	if err := os.MkdirAll(n.ConfDir, 0o755); err != nil {
		return err
	}
	conflist := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}`, n.Name, n.Bridge, n.Subnet, n.IPAMDir)
	return os.WriteFile(filepath.Join(n.ConfDir, "10-"+n.Name+".conflist"), []byte(conflist), 0o644)
}

// Allocations lists the files of host-local's live allocations on the
// network (its last-reserved markers and lock left out).
func (n *Network) Allocations() []string {
	dir := filepath.Join(n.IPAMDir, n.Name)
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "last_reserved_ip") && e.Name() != "lock" {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// Rules lists the iptables rules (every table) that name the network.
func (n *Network) Rules() ([]string, error) {
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		return nil, fmt.Errorf("iptables-save: %w", err)
	}
	var rules []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "-A ") && strings.Contains(line, n.Name) {
			rules = append(rules, line)
		}
	}
	return rules, nil
}

// Remove deletes the bridge, and the NAT rules and chains of pods a failed
// spec could not remove; after a clean run there are none.
func (n *Network) Remove() {
	_ = exec.Command("ip", "link", "del", n.Bridge).Run()
	out, err := exec.Command("iptables", "-t", "nat", "-S").Output()
	if err != nil {
		return
	}
	chains := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "-A ") || !strings.Contains(line, n.Name) {
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

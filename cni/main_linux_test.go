package cni

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain undoes, as root, the host-wide traces the integration tests'
// plugins leave once all pods are gone: the shared iptables chains portmap
// and firewall create (only if they did not exist before and no pod uses
// them now) and the ip_forward sysctl the bridge plugin turns on.
func TestMain(m *testing.M) {
	restore := func() {}
	if os.Geteuid() == 0 {
		restore = snapshotHost()
	}
	code := m.Run()
	restore()
	os.Exit(code)
}

const ipForward = "/proc/sys/net/ipv4/ip_forward"

func snapshotHost() func() {
	forward, _ := os.ReadFile(ipForward)
	before := iptablesChains()
	return func() {
		if now, _ := os.ReadFile(ipForward); len(forward) > 0 && string(now) != string(forward) {
			os.WriteFile(ipForward, forward, 0o644)
		}
		removeIdleSharedChains(before)
		removeEmptyTables(before)
	}
}

// builtinChains are the chains iptables-nft creates with a table.
var builtinChains = map[string]bool{"INPUT": true, "FORWARD": true, "OUTPUT": true, "PREROUTING": true, "POSTROUTING": true}

// removeEmptyTables deletes the iptables-nft tables that did not exist
// before and hold nothing but empty built-in chains now (the firewall
// plugin creates the filter table on a node that had none).
func removeEmptyTables(before map[string][]string) {
	if before == nil {
		return
	}
	if out, err := exec.Command("iptables", "-V").Output(); err != nil || !strings.Contains(string(out), "nf_tables") {
		return
	}
	existed, used := map[string]bool{}, map[string]bool{}
	for tc := range before {
		table, _, _ := strings.Cut(tc, " ")
		existed[table] = true
	}
	now := iptablesChains()
	for tc, rules := range now {
		table, chain, _ := strings.Cut(tc, " ")
		if len(rules) > 0 || !builtinChains[chain] {
			used[table] = true
		}
	}
	for tc := range now {
		table, _, _ := strings.Cut(tc, " ")
		if !existed[table] && !used[table] {
			used[table] = true // once
			exec.Command("nft", "delete", "table", "ip", table).Run()
		}
	}
}

// iptablesChains maps "table chain" to its rules ("-A ..." lines).
func iptablesChains() map[string][]string {
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		return nil
	}
	chains := map[string][]string{}
	table := ""
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			chains[table+" "+name] = chains[table+" "+name]
		case strings.HasPrefix(line, "-A "):
			name, _, _ := strings.Cut(line[3:], " ")
			chains[table+" "+name] = append(chains[table+" "+name], line)
		}
	}
	return chains
}

func removeIdleSharedChains(before map[string][]string) {
	if before == nil {
		return
	}
	now := iptablesChains()
	if len(now["nat CNI-HOSTPORT-DNAT"]) > 0 {
		return // some pod still has a hostPort
	}
	for _, rule := range now["filter CNI-FORWARD"] {
		if !strings.Contains(rule, "-j CNI-ADMIN") {
			return // some pod still has firewall rules
		}
	}
	var created []string
	for _, tc := range []string{"nat CNI-HOSTPORT-DNAT", "nat CNI-HOSTPORT-SETMARK", "nat CNI-HOSTPORT-MASQ", "filter CNI-FORWARD", "filter CNI-ADMIN"} {
		if _, existed := before[tc]; !existed {
			if _, exists := now[tc]; exists {
				created = append(created, tc)
			}
		}
	}
	// Jumps to them first, then their rules, then the chains.
	for tc, rules := range now {
		table, _, _ := strings.Cut(tc, " ")
		for _, rule := range rules {
			for _, c := range created {
				ct, chain, _ := strings.Cut(c, " ")
				if ct == table && strings.HasSuffix(rule, "-j "+chain) || ct == table && strings.Contains(rule, "-j "+chain+" ") {
					args := splitShellWords(rule)
					args[0] = "-D"
					exec.Command("iptables", append([]string{"-w", "-t", table}, args...)...).Run()
				}
			}
		}
	}
	for _, c := range created {
		table, chain, _ := strings.Cut(c, " ")
		exec.Command("iptables", "-w", "-t", table, "-F", chain).Run()
	}
	for _, c := range created {
		table, chain, _ := strings.Cut(c, " ")
		exec.Command("iptables", "-w", "-t", table, "-X", chain).Run()
	}
}

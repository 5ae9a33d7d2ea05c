package pod

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/slipway-dev/slipway/runtime/namespaces"
)

// InterfaceStats are one network interface's counters.
type InterfaceStats struct {
	Name                                    string
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// NetworkStats reads the counters of every interface but lo in the network
// namespace pinned at netns.
func NetworkStats(netns string) ([]InterfaceStats, error) {
	var raw []byte
	err := namespaces.Enter(netns, namespaces.Net, func() error {
		var err error
		raw, err = os.ReadFile("/proc/thread-self/net/dev")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading network stats: %w", err)
	}
	return parseNetDev(raw)
}

// NetworkStatsVia reads what NetworkStats reads through /proc/PID/net/dev
// of a process in the namespace, without entering it (entering costs an
// OS thread, about 0.2 ms). ok is false, and nothing read, when pid is not
// in the network namespace pinned at netns, before or after the read (it
// ended, or its PID was reused): the caller uses NetworkStats then.
func NetworkStatsVia(pid uint32, netns string) (stats []InterfaceStats, ok bool, err error) {
	want, err := os.Stat(netns)
	if err != nil {
		return nil, false, fmt.Errorf("reading network stats: %w", err)
	}
	proc := "/proc/" + strconv.FormatUint(uint64(pid), 10)
	inNetns := func() bool {
		got, err := os.Stat(proc + "/ns/net")
		return err == nil && os.SameFile(got, want)
	}
	if !inNetns() {
		return nil, false, nil
	}
	raw, err := os.ReadFile(proc + "/net/dev")
	if err != nil || !inNetns() {
		return nil, false, nil
	}
	stats, err = parseNetDev(raw)
	return stats, err == nil, err
}

// parseNetDev parses /proc/net/dev: two header lines, then
// "iface: rxbytes rxpackets rxerrs ... txbytes txpackets txerrs ...".
func parseNetDev(raw []byte) ([]InterfaceStats, error) {
	var out []InterfaceStats
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for line := 0; sc.Scan(); line++ {
		if line < 2 {
			continue
		}
		name, counters, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		fields := strings.Fields(counters)
		if len(fields) < 16 || name == "lo" {
			continue
		}
		n := func(i int) uint64 { v, _ := strconv.ParseUint(fields[i], 10, 64); return v }
		out = append(out, InterfaceStats{
			Name:    name,
			RxBytes: n(0), RxPackets: n(1), RxErrors: n(2), RxDropped: n(3),
			TxBytes: n(8), TxPackets: n(9), TxErrors: n(10), TxDropped: n(11),
		})
	}
	return out, sc.Err()
}

package pod

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestParseNetDev(t *testing.T) {
	raw := []byte(`Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    5000      40    2    4    0     0          0         0     3000      30    1    6    0     0       0          0
`)
	got, err := parseNetDev(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d interfaces, want eth0 only: %+v", len(got), got)
	}
	want := InterfaceStats{
		Name:    "eth0",
		RxBytes: 5000, RxPackets: 40, RxErrors: 2, RxDropped: 4,
		TxBytes: 3000, TxPackets: 30, TxErrors: 1, TxDropped: 6,
	}
	if got[0] != want {
		t.Errorf("eth0 = %+v, want %+v", got[0], want)
	}
}

// TestNetworkStatsVia reads this process's own network namespace through
// its PID, as NetworkStats reads it by entering, and refuses a PID that is
// not in the namespace.
func TestNetworkStatsVia(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (setns)")
	}
	self := uint32(os.Getpid())
	via, ok, err := NetworkStatsVia(self, "/proc/self/ns/net")
	if err != nil || !ok {
		t.Fatalf("NetworkStatsVia(self) = %v, %v", ok, err)
	}
	entered, err := NetworkStats("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	names := func(s []InterfaceStats) (out []string) {
		for _, i := range s {
			out = append(out, i.Name)
		}
		return out
	}
	if !slices.Equal(names(via), names(entered)) {
		t.Errorf("interfaces through the PID %v, entering %v", names(via), names(entered))
	}
	notNetns := filepath.Join(t.TempDir(), "not-a-netns")
	if err := os.WriteFile(notNetns, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := NetworkStatsVia(self, notNetns); ok || err != nil {
		t.Errorf("a PID outside the namespace: ok %v, err %v; want not ok, no error", ok, err)
	}
	if _, ok, err := NetworkStatsVia(1<<22+1, "/proc/self/ns/net"); ok || err != nil {
		t.Errorf("a PID that does not exist: ok %v, err %v; want not ok, no error", ok, err)
	}
	if _, _, err := NetworkStatsVia(self, filepath.Join(t.TempDir(), "gone")); err == nil {
		t.Error("a missing namespace file is no error")
	}
}

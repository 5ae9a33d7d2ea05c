package pod

import "testing"

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

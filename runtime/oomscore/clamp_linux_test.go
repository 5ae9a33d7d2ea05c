package oomscore

import (
	"os"
	"strings"
	"testing"
)

func TestClampNeverGoesBelowFloor(t *testing.T) {
	for _, v := range []int{-1000, -998, -1, 0, 500, 1000} {
		got := Clamp(v)
		if got < Floor() || (v >= Floor() && got != v) {
			t.Errorf("Clamp(%d) = %d with floor %d", v, got, Floor())
		}
	}
}

// TestFloorMatchesBoundingSet checks the floor against what the kernel says
// about CAP_SYS_RESOURCE (bit 24) in this process's bounding set.
func TestFloorMatchesBoundingSet(t *testing.T) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	var hasCap bool
	for _, line := range strings.Split(string(b), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:\t"); ok {
			var v uint64
			for _, c := range hex {
				v = v<<4 | uint64(strings.IndexRune("0123456789abcdef", c))
			}
			hasCap = v&(1<<capSysResource) != 0
		}
	}
	if hasCap != !Restricted() {
		t.Errorf("CAP_SYS_RESOURCE effective = %v but Restricted() = %v", hasCap, Restricted())
	}
}

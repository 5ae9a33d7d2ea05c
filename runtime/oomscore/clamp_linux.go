// Package oomscore clamps oom_score_adj values to what this process may set.
// Without CAP_SYS_RESOURCE a process cannot lower oom_score_adj below its
// own; runc would then fail the container. containerd's
// restrict_oom_score_adj does the same clamping.
package oomscore

import (
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

const capSysResource = 24

var floor = sync.OnceValue(func() int {
	if hasCapSysResource() {
		return -1000
	}
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return v
})

// Clamp returns v, raised to the lowest oom_score_adj this process may give
// its children.
func Clamp(v int) int { return max(v, floor()) }

// Restricted reports whether values below Floor would be refused.
func Restricted() bool { return floor() > -1000 }

// Floor is the lowest oom_score_adj this process may give its children.
func Floor() int { return floor() }

func hasCapSysResource() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[0].Effective&(1<<capSysResource) != 0
}

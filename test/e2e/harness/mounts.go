package harness

import (
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// UnmountUnder lazily unmounts every mount at or below dir, deepest first:
// what a failed spec (or kubelet's rshared bind of its root dir) left
// mounted, before dir is removed.
func UnmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			points = append(points, fields[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = unix.Unmount(points[i], unix.MNT_DETACH)
	}
}

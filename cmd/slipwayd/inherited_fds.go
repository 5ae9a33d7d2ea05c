package main

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// closeInheritedFDsOnExec marks every descriptor above stderr that slipwayd
// inherited close-on-exec. Without it, a descriptor its parent leaked (a
// lock, a socket, a pipe) would pass on to every process slipwayd starts —
// its containerd, pod infra processes — and outlive slipwayd there. Called
// first in main, before any descriptor of slipwayd's own is open.
func closeInheritedFDsOnExec() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		unix.CloseOnExec(fd)
	}
}

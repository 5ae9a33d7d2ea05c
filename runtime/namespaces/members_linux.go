package namespaces

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// KillMembers SIGKILLs every process inside a namespace pinned in dir
// (dir/net, dir/ipc, dir/uts, dir/user, as Pin lays them out) and returns
// their pids. It is for a pod with no record, whose processes nothing else
// can name: an infra process a crash left between its fork and its pid
// file. A pin of the calling thread's own namespaces (the node's) is never
// matched. Processes that end meanwhile are not errors.
func KillMembers(dir string) ([]int, error) {
	type nsID struct{ dev, ino uint64 }
	pinned := map[Kind]nsID{}
	for _, kind := range []Kind{Net, IPC, UTS, User} {
		var pin, own syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, string(kind)), &pin); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("namespace pin %s: %w", kind, err)
		}
		// The calling thread's, not /proc/self's: the main thread may be
		// one a Pin or Enter left wedged in a pod's namespaces.
		if err := syscall.Stat("/proc/thread-self/ns/"+string(kind), &own); err != nil {
			return nil, err
		}
		if pin.Dev == own.Dev && pin.Ino == own.Ino {
			continue
		}
		pinned[kind] = nsID{pin.Dev, pin.Ino}
	}
	if len(pinned) == 0 {
		return nil, nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	// This process is never a member: /proc/PID/ns shows a process's main
	// thread, which a Pin or Enter may have left wedged in a pod's namespaces.
	self := os.Getpid()
	var killed []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		for kind, id := range pinned {
			var st syscall.Stat_t
			if syscall.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, kind), &st) != nil || st.Dev != id.dev || st.Ino != id.ino {
				continue
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return killed, fmt.Errorf("killing process %d in pinned %s namespace: %w", pid, kind, err)
			}
			killed = append(killed, pid)
			break
		}
	}
	return killed, nil
}

package cni

import (
	"golang.org/x/sys/unix"
)

// isNetNS reports whether path is a network namespace file (an nsfs bind
// mount or /proc/<pid>/ns/net). A mount point left behind after its
// namespace was unmounted is not.
func isNetNS(path string) bool {
	if path == "" {
		return false
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

//go:build !linux

package cni

import "os"

// isNetNS reports whether path exists; network namespaces are Linux only.
func isNetNS(path string) bool {
	if path == "" {
		return false
	}
	_, err := os.Stat(path)
	return err == nil
}

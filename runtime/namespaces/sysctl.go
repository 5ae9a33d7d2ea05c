package namespaces

import (
	"fmt"
	"strings"
)

// ipcSysctls are the IPC-namespaced sysctls (besides fs.mqueue.*).
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true,
	"kernel.sem": true, "kernel.shmall": true, "kernel.shmmax": true,
	"kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// SysctlKind is the namespace a sysctl belongs to, or an error when it is
// not namespaced (it would change the whole node) or is not a sysctl name.
// Keys may use dots or slashes as separators.
func SysctlKind(key string) (Kind, error) {
	if strings.Contains(key, "/") {
		key = strings.ReplaceAll(key, "/", ".")
	}
	if key == "" || strings.ContainsAny(key, " \t\n=") || strings.Contains(key, "..") {
		return "", fmt.Errorf("%q is not a sysctl name", key)
	}
	switch {
	case strings.HasPrefix(key, "net."):
		return Net, nil
	case ipcSysctls[key], strings.HasPrefix(key, "fs.mqueue."):
		return IPC, nil
	case key == "kernel.hostname", key == "kernel.domainname":
		return UTS, nil
	}
	return "", fmt.Errorf("sysctl %q is not namespaced: a pod may not set it", key)
}

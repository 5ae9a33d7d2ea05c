package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/containerd/v2/pkg/apparmor"
	"github.com/containerd/containerd/v2/pkg/cap"
	"golang.org/x/sys/unix"
)

// Host is what the options need to know about the node. DetectHost reads
// it once; tests build their own.
type Host struct {
	// CgroupV2 is true on a unified (cgroup v2 only) hierarchy; hybrid
	// nodes count as v1.
	CgroupV2 bool
	// SwapAccounting is true when memory+swap can be limited
	// (memory.memsw.* on v1, memory.swap.max on v2).
	SwapAccounting bool
	// Hugetlb is true when the hugetlb controller is available.
	Hugetlb bool
	// AppArmor is true when the kernel enforces AppArmor and
	// apparmor_parser is installed.
	AppArmor bool
	// RecursiveReadOnly is true when the kernel can make a mount read-only
	// recursively (mount_setattr, Linux 5.12), which runc needs for "rro".
	RecursiveReadOnly bool
	// Capabilities are the effective capabilities of this process: "ALL"
	// and privileged containers get these, since runc cannot grant more.
	Capabilities []string
}

// DetectHost returns this node's facts, read on first use.
func DetectHost() Host { return detectHost() }

var detectHost = sync.OnceValue(func() Host {
	caps, err := cap.Current()
	if err != nil {
		caps = cap.Known()
	}
	v2 := cgroups.Mode() == cgroups.Unified
	return Host{
		CgroupV2:          v2,
		SwapAccounting:    swapAccounting(v2),
		Hugetlb:           hugetlb(v2),
		AppArmor:          apparmor.HostSupports(),
		RecursiveReadOnly: recursiveReadOnly(),
		Capabilities:      caps,
	}
})

// RecursiveReadOnlySupported reports whether recursive read-only mounts
// work on this node, for the CRI's RuntimeHandlerFeatures.
func RecursiveReadOnlySupported() bool { return DetectHost().RecursiveReadOnly }

func swapAccounting(v2 bool) bool {
	p := "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"
	if v2 {
		_, group, err := cgroups.ParseCgroupFileUnified("/proc/self/cgroup")
		if err != nil {
			return false
		}
		p = filepath.Join("/sys/fs/cgroup", group, "memory.swap.max")
	}
	_, err := os.Stat(p)
	return err == nil
}

func hugetlb(v2 bool) bool {
	if v2 {
		b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		return err == nil && strings.Contains(string(b), "hugetlb")
	}
	_, err := os.Stat("/sys/fs/cgroup/hugetlb")
	return err == nil
}

// recursiveReadOnly probes for mount_setattr(2): an invalid call fails with
// EBADF or EINVAL where the syscall exists and ENOSYS where it does not.
func recursiveReadOnly() bool {
	err := unix.MountSetattr(-1, "", unix.AT_EMPTY_PATH, &unix.MountAttr{})
	return !errors.Is(err, unix.ENOSYS)
}

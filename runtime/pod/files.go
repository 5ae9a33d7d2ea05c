package pod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The files in a pod's Dir that its containers mount.
const (
	ResolvConfFile = "resolv.conf"
	HostnameFile   = "hostname"
	HostsFile      = "hosts"
	hostResolvConf = "/etc/resolv.conf"
	shmSize        = 64 << 20 // kubelet's and Docker's default /dev/shm size
)

// hostsContent is the /etc/hosts a pod's containers get unless kubelet
// mounts its own, the same localhost entries containerd writes.
const hostsContent = `127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::0	ip6-localnet
fe00::0	ip6-mcastprefix
fe00::1	ip6-allnodes
fe00::2	ip6-allrouters
`

// WriteFiles writes the pod's resolv.conf (from its DNS config, or the
// node's when it has none), hostname and hosts into dir.
func WriteFiles(dir string, config *runtimeapi.PodSandboxConfig, hostname string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating pod dir: %w", err)
	}
	resolv, err := resolvConf(config.GetDnsConfig())
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ResolvConfFile), resolv, 0o644); err != nil {
		return fmt.Errorf("writing resolv.conf: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, HostnameFile), []byte(hostname+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing hostname: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, HostsFile), []byte(hostsContent), 0o644); err != nil {
		return fmt.Errorf("writing hosts: %w", err)
	}
	return nil
}

func resolvConf(dns *runtimeapi.DNSConfig) ([]byte, error) {
	if dns == nil {
		b, err := os.ReadFile(hostResolvConf)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return b, err
	}
	var b strings.Builder
	if len(dns.Searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(dns.Searches, " "))
	}
	for _, s := range dns.Servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(dns.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(dns.Options, " "))
	}
	return []byte(b.String()), nil
}

// MountShm mounts a tmpfs at path for the pod's shared /dev/shm.
func MountShm(path string) error {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return fmt.Errorf("creating shm dir: %w", err)
	}
	opts := fmt.Sprintf("mode=1777,size=%d", shmSize)
	if err := unix.Mount("shm", path, "tmpfs", unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mounting pod shm at %s: %w", path, err)
	}
	return nil
}

// UnmountShm unmounts the pod's shm; an unmounted or missing path is fine.
func UnmountShm(path string) error {
	if path == "" {
		return nil
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting pod shm %s: %w", path, err)
	}
	return nil
}

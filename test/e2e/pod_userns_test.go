package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// usernsHostID is the first host ID of the e2e pods' user namespaces, as
// kubelet allocates them (a multiple of 65536, 65536 long).
const usernsHostID = 65536 * 41

func usernsOptions(hostID uint32) *runtimeapi.UserNamespace {
	m := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: hostID, Length: 65536}}
	return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: m, Gids: m}
}

// usernsPod runs a pod like kubelet's hostUsers: false, with pid mode for
// its PID namespace.
func usernsPod(ctx context.Context, prefix string, pid runtimeapi.NamespaceMode) testPod {
	GinkgoHelper()
	config := podConfig(prefix)
	config.LogDirectory = GinkgoT().TempDir()
	config.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Pid: pid, UsernsOptions: usernsOptions(usernsHostID)}
	config.Linux.Sysctls = map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}
	return testPod{ID: runPod(ctx, config), Config: config}
}

// nsInode is the inode of a namespace file (a pin or /proc/PID/ns/KIND).
func nsInode(path string) uint64 {
	GinkgoHelper()
	var st unix.Stat_t
	Expect(unix.Stat(path, &st)).To(Succeed(), path)
	return st.Ino
}

// ownerInode is the inode of the user namespace that owns namespace path.
func ownerInode(path string) uint64 {
	GinkgoHelper()
	f, err := os.Open(path)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	fd, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_USERNS)
	Expect(err).NotTo(HaveOccurred(), "NS_GET_USERNS of %s", path)
	defer unix.Close(fd)
	var st unix.Stat_t
	Expect(unix.Fstat(fd, &st)).To(Succeed())
	return st.Ino
}

func ownerOf(path string) (uint32, uint32) {
	GinkgoHelper()
	st, err := os.Stat(path)
	Expect(err).NotTo(HaveOccurred())
	s := st.Sys().(*syscall.Stat_t)
	return s.Uid, s.Gid
}

// isMountPoint reports whether path is a mount point in this mount namespace.
func isMountPoint(path string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	Expect(err).NotTo(HaveOccurred())
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

var _ = Describe("A pod with its own user namespace", func() {
	It("maps its IDs onto host IDs in the rootfs and volumes, owns its namespaces, and leaves nothing behind", func(ctx context.Context) {
		pod := usernsPod(ctx, "userns", runtimeapi.NamespaceMode_CONTAINER)
		info := podVerbose(ctx, pod.ID)
		Expect(info.Namespaces).To(HaveKey("user"))
		userPin := info.Namespaces["user"]
		for _, kind := range []string{"net", "ipc", "uts"} {
			Expect(ownerInode(info.Namespaces[kind])).To(Equal(nsInode(userPin)), "the pod's %s namespace is owned by its user namespace", kind)
		}

		// A plain volume: the container's root writes as its host ID. An
		// ID-mapped one: as the node's root.
		plain, err := os.MkdirTemp("", "slipway-userns-plain-")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(os.RemoveAll, plain)
		Expect(os.Chown(plain, usernsHostID, usernsHostID)).To(Succeed())
		mapped, err := os.MkdirTemp("", "slipway-userns-mapped-")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(os.RemoveAll, mapped)
		Expect(os.Chmod(mapped, 0o755)).To(Succeed())

		config := containerConfig("writer", `cat /proc/self/uid_map; id -u; `+
			`cat /proc/sys/net/ipv4/ip_unprivileged_port_start; `+
			`echo hi > /plain/f && echo hi > /mapped/f && echo hi > /rootfs-file && echo wrote; `+
			`ls -ln /etc/hostname | awk '{print "hostname-owner", $3}'; sleep 3600`)
		config.Mounts = []*runtimeapi.Mount{
			{ContainerPath: "/plain", HostPath: plain},
			{ContainerPath: "/mapped", HostPath: mapped,
				UidMappings: usernsOptions(usernsHostID).Uids, GidMappings: usernsOptions(usernsHostID).Gids},
		}
		id := runContainer(ctx, pod, config)
		var lines []string
		Eventually(func() []string {
			lines = containerLog(pod, "writer")
			return lines
		}).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).Should(ContainElement("hostname-owner 0"), "log: %v", lines)
		Expect(lines).To(HaveLen(5), "log: %v", lines)
		Expect(strings.Fields(lines[0])).To(Equal([]string{"0", strconv.Itoa(usernsHostID), "65536"}), "uid_map in the container")
		Expect(lines[1]).To(Equal("0"), "root inside")
		Expect(lines[2]).To(Equal("0"), "the pod's network sysctl")
		Expect(lines[3]).To(Equal("wrote"))

		uid, gid := ownerOf(filepath.Join(plain, "f"))
		Expect([]uint32{uid, gid}).To(Equal([]uint32{usernsHostID, usernsHostID}), "a plain volume's file is owned by the mapped IDs")
		uid, gid = ownerOf(filepath.Join(mapped, "f"))
		Expect([]uint32{uid, gid}).To(Equal([]uint32{0, 0}), "an ID-mapped volume's file is owned by the node's root")
		rootfs := filepath.Join(daemon.State, "containerd", "io.containerd.runtime.v2.task", "k8s.io", id, "rootfs", "rootfs-file")
		uid, gid = ownerOf(rootfs)
		Expect([]uint32{uid, gid}).To(Equal([]uint32{usernsHostID, usernsHostID}), "a rootfs file is owned by the mapped IDs")
		uid, _ = ownerOf(filepath.Join(daemon.State, "containerd", "io.containerd.runtime.v2.task", "k8s.io", id, "rootfs", "bin"))
		Expect(uid).To(Equal(uint32(usernsHostID)), "image files owned by root appear owned by the mapped root")

		removePod(ctx, pod.ID)
		Expect(isMountPoint(userPin)).To(BeFalse(), "the user namespace pin is unmounted")
		_, err = os.Stat(userPin)
		Expect(os.IsNotExist(err)).To(BeTrue(), "the user namespace pin is removed: %v", err)
	})

	It("shares a PID namespace that its user namespace owns, held by the infra process", func(ctx context.Context) {
		pod := usernsPod(ctx, "userns-pid", runtimeapi.NamespaceMode_POD)
		info := podVerbose(ctx, pod.ID)
		Expect(info.Infra).To(BeTrue())
		b, err := os.ReadFile(filepath.Join(daemon.State, "pods", pod.ID, "infra.pid"))
		Expect(err).NotTo(HaveOccurred())
		pid := strings.Fields(string(b))[0]
		Expect(nsInode("/proc/"+pid+"/ns/user")).To(Equal(nsInode(info.Namespaces["user"])), "the infra process is in the pod's user namespace")
		Expect(ownerInode("/proc/"+pid+"/ns/pid")).To(Equal(nsInode(info.Namespaces["user"])), "the shared PID namespace is owned by it")
		Expect(nsInode("/proc/" + pid + "/ns/net")).To(Equal(nsInode(info.Namespaces["net"])))

		config := containerConfig("ps", `tr -d '\000' < /proc/1/cmdline; echo; cat /proc/self/uid_map; ls /proc | grep -c '^[0-9]'`)
		config.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
		lines, st := runToExit(ctx, pod, config)
		Expect(st.ExitCode).To(BeZero(), "log: %v", lines)
		Expect(lines).To(HaveLen(3), "log: %v", lines)
		Expect(lines[0]).To(Equal("/infra"), "PID 1 is the infra process")
		Expect(strings.Fields(lines[1])).To(Equal([]string{"0", strconv.Itoa(usernsHostID), "65536"}))

		removePod(ctx, pod.ID)
		Eventually(func() bool { _, err := os.Stat("/proc/" + pid); return err == nil }).
			WithTimeout(10*time.Second).WithPolling(50*time.Millisecond).Should(BeFalse(), "the infra process is gone")
	})

	It("runs a sandbox image's pause process in its user namespace through runc", func(ctx context.Context) {
		daemon.restart(ctx, "--sandbox-image", "registry.k8s.io/pause:3.9")
		DeferCleanup(func(ctx context.Context) { daemon.restart(ctx) })

		pod := usernsPod(ctx, "userns-pause", runtimeapi.NamespaceMode_POD)
		info := podVerbose(ctx, pod.ID)
		Expect(info.Infra).To(BeTrue())
		resp, err := runtimeSvc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod.ID, Verbose: true})
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.Status.GetLinux().GetNamespaces().GetOptions().GetUsernsOptions().GetUids()).To(HaveLen(1))

		config := containerConfig("pause-ps", `tr -d '\000' < /proc/1/cmdline; echo; cat /proc/self/uid_map`)
		config.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
		lines, st := runToExit(ctx, pod, config)
		Expect(st.ExitCode).To(BeZero(), "log: %v", lines)
		Expect(lines).To(HaveLen(2), "log: %v", lines)
		Expect(lines[0]).To(Equal("/pause"), "PID 1 is the pause process")
		Expect(strings.Fields(lines[1])).To(Equal([]string{"0", strconv.Itoa(usernsHostID), "65536"}))
		removePod(ctx, pod.ID)
		Expect(processesRunning("/pause")).To(BeZero())
	})

	It("has its pins removed at start-up when a crash left them without a pod record", func(ctx context.Context) {
		id := "0000000000000000000000000000000000000000000000000000000000005e75"
		stateDir := filepath.Join(daemon.State, "pods", id)
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: usernsHostID, Size: 65536}}
		sleep, err := exec.LookPath("sleep")
		Expect(err).NotTo(HaveOccurred())
		pinned, err := namespaces.Pin(namespaces.Request{
			Dir: filepath.Join(stateDir, "ns"), Kinds: []namespaces.Kind{namespaces.Net, namespaces.IPC, namespaces.UTS},
			User: &namespaces.UserNS{UIDs: m, GIDs: m, Spawn: func(attr *syscall.SysProcAttr) (*os.Process, error) {
				return os.StartProcess(sleep, []string{"sleep", "60"}, &os.ProcAttr{Sys: attr})
			}},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(isMountPoint(pinned[namespaces.User])).To(BeTrue())

		daemon.restart(ctx)

		for kind, path := range pinned {
			Expect(isMountPoint(path)).To(BeFalse(), "the %s pin is unmounted", kind)
		}
		Expect(stateDir).NotTo(BeAnExistingFile())
	})

	It("refuses bad user namespace options with InvalidArgument naming the field", func(ctx context.Context) {
		field := "userns_options"
		two := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: usernsHostID, Length: 65536}, {ContainerId: 0, HostId: 2 * usernsHostID, Length: 65536}}
		unmapped0 := []*runtimeapi.IDMapping{{ContainerId: 1, HostId: usernsHostID, Length: 65536}}
		for name, opts := range map[string]*runtimeapi.UserNamespace{
			"two mappings":       {Mode: runtimeapi.NamespaceMode_POD, Uids: two, Gids: two},
			"0 unmapped":         {Mode: runtimeapi.NamespaceMode_POD, Uids: unmapped0, Gids: unmapped0},
			"no mappings":        {Mode: runtimeapi.NamespaceMode_POD},
			"CONTAINER":          {Mode: runtimeapi.NamespaceMode_CONTAINER},
			"TARGET":             {Mode: runtimeapi.NamespaceMode_TARGET},
			"NODE with mappings": {Mode: runtimeapi.NamespaceMode_NODE, Uids: usernsOptions(usernsHostID).Uids, Gids: usernsOptions(usernsHostID).Gids},
		} {
			By(name)
			config := podConfig("userns-bad")
			config.Linux.SecurityContext.NamespaceOptions.UsernsOptions = opts
			_, err := runtimeSvc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: config})
			expectInvalid(err, field)
		}

		By("a container asking for another user namespace than its pod's")
		pod := usernsPod(ctx, "userns-other", runtimeapi.NamespaceMode_CONTAINER)
		for name, opts := range map[string]*runtimeapi.UserNamespace{
			"other mapping": usernsOptions(2 * usernsHostID),
			"node's":        {Mode: runtimeapi.NamespaceMode_NODE},
		} {
			By(name)
			config := containerConfig("other-userns", "true")
			config.Linux.SecurityContext.NamespaceOptions.UsernsOptions = opts
			pullImage(ctx, config.Image.Image, nil)
			_, err := runtimeSvc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod.ID, Config: config, SandboxConfig: pod.Config})
			expectInvalid(err, field)
		}
	})
})

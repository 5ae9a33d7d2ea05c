package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/slipway-dev/slipway/runtime/embedded"
	"github.com/slipway-dev/slipway/test/e2e/harness"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The fault specs break things on purpose, so they run on a slipwayd of
// their own (faultNode), in one of two modes: with its embedded
// containerd, or with a containerd the spec runs itself and passes with
// --containerd-address. While a fault spec runs, the suite's globals
// (daemon, runtimeSvc, imageSvc) point at the fault node, so every helper
// works on it.

// faultMode is how a fault node gets its containerd.
type faultMode string

const (
	embeddedContainerd faultMode = "embedded containerd"
	externalContainerd faultMode = "external containerd"
)

// faultNode is a slipwayd for fault specs, with the containerd of its mode.
type faultNode struct {
	mode faultMode
	*slipwayd
	// external is the spec's own containerd in externalContainerd mode.
	external *exec.Cmd
	// externalExited is closed when external has exited.
	externalExited <-chan struct{}
	ctrdCfg        embedded.Config
	// cgroupParents are the cgroup parents (cgroupfs paths) the spec's
	// pods use besides the default; leftoversOf counts their children.
	cgroupParents []string
}

// startFaultNode starts a fault node and points the suite's globals at it
// until the spec (or container) that called it ends.
func startFaultNode(ctx context.Context, mode faultMode) *faultNode {
	GinkgoHelper()
	n := &faultNode{mode: mode}
	n.start(ctx)
	return n
}

// start starts n in its mode; see startFaultNode.
func (n *faultNode) start(ctx context.Context) {
	GinkgoHelper()
	mode := n.mode
	work, err := os.MkdirTemp("", "slipway-fault-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		if CurrentSpecReport().Failed() {
			// Logs stay for the post-mortem (run/slipwayd.log is beside
			// containerd's); only the mounts go.
			GinkgoWriter.Printf("fault node files kept in %s\n", work)
			return
		}
		_ = os.RemoveAll(work)
	})
	DeferCleanup(harness.UnmountUnder, work)
	var extra []string
	if mode == externalContainerd {
		n.ctrdCfg = embedded.Config{
			Root: filepath.Join(work, "containerd-root"), State: filepath.Join(work, "containerd-state"), LogLevel: "debug",
		}
		Expect(n.ctrdCfg.Write()).To(Succeed())
		n.startContainerd(ctx)
		DeferCleanup(n.stopContainerd)
		extra = []string{"--containerd-address", n.ctrdCfg.Address()}
	}
	n.slipwayd = startSlipwayd(ctx, work, suiteHostsDir, daemon.cniConfDir, extra...)
	DeferCleanup(n.slipwayd.stop)

	prevDaemon, prevRuntime, prevImage := daemon, runtimeSvc, imageSvc
	daemon = n.slipwayd
	runtimeSvc = runtimeapi.NewRuntimeServiceClient(n.Conn)
	imageSvc = runtimeapi.NewImageServiceClient(n.Conn)
	DeferCleanup(func() { daemon, runtimeSvc, imageSvc = prevDaemon, prevRuntime, prevImage })
}

// withFaultNode gives the specs of the current ordered container a fault
// node of mode (set up in BeforeAll, so use the result inside specs only)
// and checks after each spec that removing every pod leaves nothing.
func withFaultNode(mode faultMode) *faultNode {
	node := &faultNode{mode: mode}
	var baseline leftovers
	BeforeAll(func(ctx context.Context) {
		node.start(ctx)
		pullImage(ctx, busyboxImage, nil)
		// At rest a node holds no lease but BuildKit's. The baseline waits
		// for that: a lease that ended just after the pull returned was
		// once counted in it, and every spec then "lost" it.
		Eventually(func() int { return node.leftoversOf(ctx).Leases }).WithTimeout(30*time.Second).WithPolling(200*time.Millisecond).
			Should(BeZero(), "no lease is left after the pull")
		baseline = node.leftoversOf(ctx)
	})
	AfterEach(func(ctx context.Context) {
		removeAllPods(ctx)
		Eventually(func() leftovers { return node.leftoversOf(ctx) }).WithTimeout(30*time.Second).WithPolling(200*time.Millisecond).
			Should(Equal(baseline), "nothing is leaked")
	})
	return node
}

// containerdAddress is the node's containerd socket.
func (n *faultNode) containerdAddress() string {
	if n.mode == externalContainerd {
		return n.ctrdCfg.Address()
	}
	return filepath.Join(n.State, "containerd", "containerd.sock")
}

// startContainerd runs the external containerd and waits until it serves.
func (n *faultNode) startContainerd(ctx context.Context) {
	GinkgoHelper()
	logFile, err := os.OpenFile(n.ctrdCfg.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	Expect(err).NotTo(HaveOccurred())
	cmd := exec.Command("containerd", "--config", n.ctrdCfg.ConfigPath())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// It ends with the test process even if that is killed before its
	// cleanup runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	waited, err := embedded.StartTied(cmd)
	Expect(err).NotTo(HaveOccurred())
	logFile.Close()
	exited := make(chan struct{})
	go func() { <-waited; close(exited) }()
	n.external, n.externalExited = cmd, exited
	Eventually(func() error { return embedded.Ping(ctx, n.ctrdCfg.Address()) }).
		WithTimeout(60 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
}

// stopContainerd ends the external containerd with SIGTERM; its shims and
// containers keep running.
func (n *faultNode) stopContainerd() {
	if n.external == nil || n.external.Process == nil {
		return
	}
	_ = n.external.Process.Signal(syscall.SIGTERM)
	<-n.externalExited
	n.external = nil
}

// killContainerd SIGKILLs the node's containerd. In embedded mode slipwayd
// restarts it; in external mode it stays down until startContainerd.
func (n *faultNode) killContainerd() {
	GinkgoHelper()
	if n.mode == externalContainerd {
		Expect(n.external.Process.Kill()).To(Succeed())
		<-n.externalExited
		n.external = nil
		return
	}
	pid := n.ContainerdPid()
	Expect(pid).To(BeNumerically(">", 0))
	Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
}

// client is a containerd client on the node's containerd, in the CRI
// namespace, closed when the spec ends.
func (n *faultNode) client() (*containerd.Client, context.Context) {
	GinkgoHelper()
	c, err := containerd.New(n.containerdAddress(), containerd.WithDefaultNamespace("k8s.io"))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(c.Close)
	return c, namespaces.WithNamespace(context.Background(), "k8s.io")
}

// leftovers counts what pods and containers may leave on the node once
// every pod is removed: containerd objects, processes, state files,
// cgroups and mounts, and the images' content.
type leftovers struct {
	Containers, Tasks, Snapshots, Leases, Sandboxes int
	Shims, Loggers, Infras                          int
	StateFiles                                      []string
	Node                                            nodeFootprint
	// Cgroups are the cgroup directories right below the parents the
	// node's pods use, as "PARENT/NAME (HIERARCHIES)": containerd's
	// namespace, where runc puts the containers of pods without a cgroup
	// parent (/k8s.io/ID; their infra processes get no cgroup of their
	// own), and the node's cgroupParents. /k8s.io is host-wide: a
	// containerd of another node in that namespace shows there too.
	Cgroups []string
	// Mounts are the mounts (FSTYPE PATH) below the node's root and
	// state directories.
	Mounts []string
	// Content, Images and ImageSnapshots count the blobs, image records
	// and committed snapshots (image layers) in the CRI namespace.
	Content, Images, ImageSnapshots int
}

// leftoversOf reads n's leftovers. Snapshots count only those of
// containers (image layers are committed snapshots, in ImageSnapshots).
func (n *faultNode) leftoversOf(ctx context.Context) leftovers {
	GinkgoHelper()
	client, nsCtx := n.client()
	var l leftovers
	cs, err := client.Containers(nsCtx)
	Expect(err).NotTo(HaveOccurred())
	l.Containers = len(cs)
	for _, c := range cs {
		if _, err := c.Task(nsCtx, nil); err == nil {
			l.Tasks++
		}
	}
	Expect(client.SnapshotService("overlayfs").Walk(nsCtx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind != snapshots.KindCommitted {
			l.Snapshots++
		} else {
			l.ImageSnapshots++
		}
		return nil
	})).To(Succeed())
	Expect(client.ContentStore().Walk(nsCtx, func(content.Info) error {
		l.Content++
		return nil
	})).To(Succeed())
	imgs, err := client.ImageService().List(nsCtx)
	Expect(err).NotTo(HaveOccurred())
	l.Images = len(imgs)
	ls, err := client.LeasesService().List(nsCtx)
	Expect(err).NotTo(HaveOccurred())
	for _, lease := range ls {
		if !isBuilderLease(lease) {
			l.Leases++
		}
	}
	sbs, err := client.SandboxStore().List(nsCtx)
	Expect(err).NotTo(HaveOccurred())
	l.Sandboxes = len(sbs)
	l.Shims = processesWith("containerd-shim", n.containerdAddress())
	l.Loggers = processesWith("slipway-logger", n.State)
	l.Infras = processesRunning("/infra")
	for _, dir := range []string{"pods", "attach", "loggers"} {
		entries, _ := os.ReadDir(filepath.Join(n.State, dir))
		for _, e := range entries {
			l.StateFiles = append(l.StateFiles, dir+"/"+e.Name())
		}
	}
	entries, _ := os.ReadDir(filepath.Join(n.Root, "pods"))
	for _, e := range entries {
		l.StateFiles = append(l.StateFiles, "root/pods/"+e.Name())
	}
	l.Node = footprint()
	l.Cgroups = cgroupsBelow(append([]string{"k8s.io"}, n.cgroupParents...))
	l.Mounts = mountsBelow(n.Root, n.State)
	return l
}

// cgroupsBelow lists the directories right below each parent in the
// cgroup v1 hierarchies (and the cgroup2 mount of a hybrid host) as
// "PARENT/NAME (HIERARCHY,...)", sorted.
func cgroupsBelow(parents []string) []string {
	in := map[string][]string{}
	hierarchies, _ := os.ReadDir("/sys/fs/cgroup")
	for _, h := range hierarchies {
		if !h.IsDir() {
			continue // cpu and cpuacct may be links to cpu,cpuacct
		}
		for _, parent := range parents {
			entries, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup", h.Name(), parent))
			for _, e := range entries {
				if e.IsDir() {
					rel := strings.TrimPrefix(parent, "/") + "/" + e.Name()
					in[rel] = append(in[rel], h.Name())
				}
			}
		}
	}
	out := make([]string, 0, len(in))
	for rel, hs := range in {
		out = append(out, rel+" ("+strings.Join(hs, ",")+")")
	}
	slices.Sort(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// mountsBelow lists the mounts below any of dirs as FSTYPE PATH, sorted.
func mountsBelow(dirs ...string) []string {
	GinkgoHelper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		sep := slices.Index(fields, "-")
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		for _, dir := range dirs {
			if strings.HasPrefix(fields[4], dir+"/") {
				out = append(out, fields[sep+1]+" "+fields[4])
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

func isBuilderLease(l leases.Lease) bool {
	return strings.HasPrefix(l.ID, "buildkit") || l.Labels["buildkit/lease.temporary"] != ""
}

// processesWith counts the processes whose command line has every one of
// the given substrings.
func processesWith(parts ...string) int {
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		cmdline := string(b)
		all := true
		for _, p := range parts {
			all = all && strings.Contains(cmdline, p)
		}
		if all {
			n++
		}
	}
	return n
}

// removeAllPods removes every pod of the node (and so its containers).
func removeAllPods(ctx context.Context) {
	GinkgoHelper()
	resp, err := runtimeSvc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	Expect(err).NotTo(HaveOccurred())
	for _, p := range resp.Items {
		removePod(ctx, p.Id)
	}
	cs, err := runtimeSvc.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	Expect(err).NotTo(HaveOccurred())
	Expect(cs.Containers).To(BeEmpty(), "removing every pod removes every container")
}

// containerPid is a running container's host pid, from its verbose status.
func containerPid(ctx context.Context, id string) int {
	GinkgoHelper()
	resp, err := runtimeSvc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	Expect(err).NotTo(HaveOccurred())
	info := resp.Info["info"]
	i := strings.LastIndex(info, `"pid":`)
	Expect(i).To(BeNumerically(">=", 0), "verbose status has the pid: %s", info)
	digits := strings.TrimLeft(info[i+len(`"pid":`):], " ")
	end := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
	pid, err := strconv.Atoi(digits[:end])
	Expect(err).NotTo(HaveOccurred())
	Expect(pid).To(BeNumerically(">", 0))
	return pid
}

// sleeperScript runs until SIGTERM, then exits 143 (as PID 1 of its PID
// namespace it needs a handler to end on the signal).
const sleeperScript = `trap 'exit 143' TERM; sleep 3600 & wait`

// enderScript waits for the file /tmp/end in its own rootfs and then exits
// with code 7: the spec makes it end at the moment it chooses, without
// any call through containerd (see endContainer).
const enderScript = `while [ ! -e /tmp/end ]; do sleep 0.05; done; exit 7`

// endContainer makes an enderScript container with host pid pid exit, by
// creating /tmp/end through /proc/PID/root, and waits until the process is
// gone. It returns the moments before and after.
func endContainer(pid int) (before, after time.Time) {
	GinkgoHelper()
	before = time.Now()
	Expect(os.WriteFile("/proc/"+strconv.Itoa(pid)+"/root/tmp/end", nil, 0o644)).To(Succeed())
	Eventually(func() bool { return processAlive(pid) }).WithTimeout(10*time.Second).WithPolling(10*time.Millisecond).
		Should(BeFalse(), "the container's process should end")
	return before, time.Now()
}

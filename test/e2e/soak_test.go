package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The soak: soakWorkers clients make a seeded random mix of CRI calls on
// shared pods, containers and images of a node of its own, for
// $SLIPWAY_SOAK_DURATION (default 2m; $SLIPWAY_SOAK_SEED replays a mix).
// Every error must be one the race that caused it explains (soak_ops), no
// invariant may break, removing every pod must leave the node as it was
// after a warm-up, and the daemons' memory must come back near where it
// started.

const (
	soakWorkers = 8
	// soakCgroupParent is the cgroup parent of a third of the soak's pods;
	// the others use the default (containerd's namespace).
	soakCgroupParent = "/slipway-soak"
	// soakRSSSlack and soakRSSFactor bound the daemons' RSS after the soak:
	// at most the larger of start+slack and start*factor. Measured here,
	// slipwayd starts near 60 MiB and containerd near 50 MiB after the
	// warm-up, and Go returns freed heap to the OS only gradually, so a
	// few tens of MiB of retained heap after a load peak is not a leak; a
	// leak per call grows past both bounds within a 2-minute soak.
	soakRSSSlack  = 50 << 20
	soakRSSFactor = 1.5
)

var _ = Describe("Soak", func() {
	duration := soakDuration()
	It(fmt.Sprintf("makes random CRI calls from %d workers for %s with no unexpected error and leaks nothing", soakWorkers, duration),
		SpecTimeout(duration+15*time.Minute), func(ctx SpecContext) {
			seed := soakSeed()
			GinkgoWriter.Printf("soak seed %d (SLIPWAY_SOAK_SEED=%d replays the mix), duration %s\n", seed, seed, duration)
			AddReportEntry("soak seed and duration", fmt.Sprintf("SLIPWAY_SOAK_SEED=%d SLIPWAY_SOAK_DURATION=%s", seed, duration))
			DeferCleanup(removeCgroup, soakCgroupParent)
			node := startFaultNode(ctx, embeddedContainerd)
			node.cgroupParents = []string{soakCgroupParent}
			DeferCleanup(removeAllPods)
			images := soakImages()
			start := node.leftoversOf(ctx)

			soakWarmUp(ctx, images)
			baseline := stableLeftovers(ctx, node)
			rssStart := daemonRSS(node)

			tally, world := newSoakTally(), &soakWorld{}
			peak := runSoak(ctx, node, seed, duration, images, tally, world)
			AddReportEntry("soak calls", tally.table())

			// Every pod and container the workers know is listed, and
			// nothing else.
			pods, containers := world.snapshot()
			listed, err := runtimeSvc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
			Expect(err).NotTo(HaveOccurred())
			var listedPods []string
			for _, p := range listed.Items {
				listedPods = append(listedPods, p.Id)
			}
			Expect(soakIDs(listedPods)).To(Equal(soakIDs(pods)), "the node lists the pods the workers made and did not remove")
			listedCtrs, err := runtimeSvc.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
			Expect(err).NotTo(HaveOccurred())
			var listedContainers []string
			for _, c := range listedCtrs.Containers {
				listedContainers = append(listedContainers, c.Id)
			}
			Expect(soakIDs(listedContainers)).To(Equal(soakIDs(containers)), "the node lists the containers the workers made and did not remove")

			removeAllPods(ctx)
			for _, img := range images {
				pullImage(ctx, img.ref, nil) // the image set of the baseline
			}
			var end leftovers
			Eventually(func() leftovers {
				end = node.leftoversOf(ctx)
				return end
			}).WithTimeout(60*time.Second).WithPolling(500*time.Millisecond).Should(Equal(baseline), "removing every pod leaves the node as after the warm-up")
			rssEnd := daemonRSS(node)
			expectIndexMatchesContainerd(ctx, node)

			for _, img := range images {
				removeImage(ctx, img.ref)
			}
			Eventually(func() [3]int {
				l := node.leftoversOf(ctx)
				return [3]int{l.Content, l.Images, l.ImageSnapshots}
			}).WithTimeout(60*time.Second).WithPolling(500*time.Millisecond).Should(Equal([3]int{start.Content, start.Images, start.ImageSnapshots}),
				"removing the images leaves no content, image record or layer")
			expectIndexMatchesContainerd(ctx, node)

			calls, unexpected, violations := tally.totals()
			AddReportEntry("soak daemon memory", fmt.Sprintf("slipwayd RSS %s at start, %s peak, %s at end; containerd %s, %s, %s",
				mib(rssStart.slipwayd), mib(peak.slipwayd), mib(rssEnd.slipwayd), mib(rssStart.containerd), mib(peak.containerd), mib(rssEnd.containerd)))
			GinkgoWriter.Printf("soak: %d calls, %d unexpected errors, %d violations\n%s\n", calls, unexpected, violations, tally.table())
			Expect(unexpected).To(BeZero(), "unexpected errors (see the soak calls report entry)")
			Expect(violations).To(BeZero(), "broken invariants (see the soak calls report entry)")
			Expect(rssEnd.slipwayd).To(BeNumerically("<=", rssBound(rssStart.slipwayd)), "slipwayd's RSS comes back near its start")
			Expect(rssEnd.containerd).To(BeNumerically("<=", rssBound(rssStart.containerd)), "containerd's RSS comes back near its start")
		})
})

// soakWarmUp pulls the soak's images and runs and removes a pod with
// every feature the workers use, so that what the first pod creates for
// good (NAT chains, the cgroup parent) is in the baseline.
func soakWarmUp(ctx context.Context, images []soakImage) {
	GinkgoHelper()
	for _, img := range images {
		pullImage(ctx, img.ref, nil)
	}
	config := podConfig("soak-warmup")
	config.LogDirectory = GinkgoT().TempDir()
	config.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	config.Linux.CgroupParent = soakCgroupParent
	config.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: 39999, HostIp: "127.0.0.1"}}
	pod := testPod{ID: runPod(ctx, config), Config: config}
	id := runContainer(ctx, pod, containerConfig("warmup", sleeperScript))
	resp, err := runtimeSvc.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"echo", "warm"}, Timeout: 30})
	Expect(err).NotTo(HaveOccurred())
	Expect(string(resp.Stdout)).To(Equal("warm\n"))
	_, err = runtimeSvc.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{
		ContainerId: id, Linux: &runtimeapi.LinuxContainerResources{CpuShares: 512, MemoryLimitInBytes: 128 << 20},
	})
	Expect(err).NotTo(HaveOccurred())
	removePod(ctx, pod.ID)
}

// stableLeftovers reads the node's leftovers until two reads a second
// apart agree, so asynchronous cleanups of the warm-up are done.
func stableLeftovers(ctx context.Context, node *faultNode) leftovers {
	GinkgoHelper()
	prev := node.leftoversOf(ctx)
	Eventually(func() leftovers {
		cur := node.leftoversOf(ctx)
		last := prev
		prev = cur
		return last
	}).WithTimeout(30*time.Second).WithPolling(time.Second).Should(Equal(prev), "the node settles after the warm-up")
	return prev
}

// runSoak runs the workers until duration has passed and returns the
// daemons' peak RSS, sampled while they run.
func runSoak(ctx context.Context, node *faultNode, seed uint64, duration time.Duration, images []soakImage, tally *soakTally, world *soakWorld) daemonMemory {
	GinkgoHelper()
	ports := make([]chan int32, soakWorkers)
	for i := range ports {
		ports[i] = make(chan int32, soakPortsPerWorker)
		for k := range soakPortsPerWorker {
			ports[i] <- int32(40000 + 10*i + k)
		}
	}
	logRoot := GinkgoT().TempDir()
	deadline := time.Now().Add(duration)
	var workers sync.WaitGroup
	for n := range soakWorkers {
		w := &soakWorker{
			n: n, rng: rand.New(rand.NewPCG(seed, uint64(n))), world: world, tally: tally, images: images,
			ports: ports, logRoot: logRoot, cgroupParent: soakCgroupParent,
		}
		workers.Go(func() {
			defer GinkgoRecover()
			w.loop(ctx, deadline)
		})
	}
	done := make(chan struct{})
	var peak daemonMemory
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			m := daemonRSS(node)
			peak.slipwayd, peak.containerd = max(peak.slipwayd, m.slipwayd), max(peak.containerd, m.containerd)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	workers.Wait()
	close(done)
	sampler.Wait()
	Expect(ctx.Err()).NotTo(HaveOccurred(), "the soak ran to its end")
	return peak
}

// expectIndexMatchesContainerd checks that the CRI lists exactly the image
// names containerd has: the image index missed no change.
func expectIndexMatchesContainerd(ctx context.Context, node *faultNode) {
	GinkgoHelper()
	var cri []string
	for _, img := range listImages(ctx, "") {
		cri = append(cri, img.RepoTags...)
		cri = append(cri, img.RepoDigests...)
	}
	client, nsCtx := node.client()
	records, err := client.ImageService().List(nsCtx)
	Expect(err).NotTo(HaveOccurred())
	var names []string
	for _, r := range records {
		names = append(names, r.Name)
	}
	Expect(soakIDs(cri)).To(Equal(soakIDs(names)), "the CRI lists the images containerd has")
}

// daemonMemory is the RSS of a node's slipwayd and containerd, in bytes.
type daemonMemory struct{ slipwayd, containerd int64 }

func daemonRSS(node *faultNode) daemonMemory {
	return daemonMemory{slipwayd: vmRSS(node.cmd.Process.Pid), containerd: vmRSS(node.containerdPid())}
}

// vmRSS is the resident set of process pid in bytes, 0 if it is gone.
func vmRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func rssBound(start int64) int64 {
	return max(start+soakRSSSlack, int64(float64(start)*soakRSSFactor))
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// soakDuration is $SLIPWAY_SOAK_DURATION, 2 minutes when unset or invalid.
func soakDuration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("SLIPWAY_SOAK_DURATION")); err == nil && d > 0 {
		return d
	}
	return 2 * time.Minute
}

// soakSeed is $SLIPWAY_SOAK_SEED, or a new seed.
func soakSeed() uint64 {
	if s, err := strconv.ParseUint(os.Getenv("SLIPWAY_SOAK_SEED"), 10, 64); err == nil {
		return s
	}
	return rand.Uint64()
}

// removeCgroup removes an empty cgroup from every hierarchy.
func removeCgroup(path string) {
	hierarchies, _ := os.ReadDir("/sys/fs/cgroup")
	for _, h := range hierarchies {
		_ = os.Remove(filepath.Join("/sys/fs/cgroup", h.Name(), path))
	}
}

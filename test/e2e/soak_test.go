package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
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
	// soakRSSSlack and soakRSSFactor bound the daemons' RSS after the soak
	// (every pod removed): at most the larger of start+slack and
	// start*factor. Measured here over five 2-minute soaks (3,700 to 5,400
	// calls): slipwayd 63-66 MiB after the warm-up, 70-73 MiB at its
	// peak, 68-73 MiB at the end; containerd 45-53, 53-54, 50.5-51.5. Go
	// hands freed heap back to the OS only gradually, so the end may sit
	// at the peak without a leak; 50 MiB is far above that, and is crossed
	// by a leak of 1 KiB per call in a 30-minute soak.
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
			cgroupParents := []string{"k8s.io", soakCgroupParent}
			DeferCleanup(removeCgroupsBut, cgroupParents, cgroupsBelow(cgroupParents))
			node := startFaultNode(ctx, embeddedContainerd)
			node.cgroupParents = []string{soakCgroupParent}
			DeferCleanup(removePodsAndOrphans)
			images := soakImages()
			start := node.leftoversOf(ctx)

			soakWarmUp(ctx, images)
			baseline := stableLeftovers(ctx, node)
			rssStart := daemonRSS(node)

			tally, world := newSoakTally(), &soakWorld{}
			peak := runSoak(ctx, node, seed, duration, images, tally, world)
			AddReportEntry("soak calls", tally.table())
			pods, containers := world.snapshot()
			listedPods, listedContainers := listedIDs(ctx)

			// The workers pulled and removed images at random: the image
			// counts are checked once every image is removed, below.
			removePodsAndOrphans(ctx)
			afterPods := settle(func() leftovers { return withoutImages(node.leftoversOf(ctx)) }, withoutImages(baseline))
			rssEnd := daemonRSS(node)
			AddReportEntry("soak daemon memory", fmt.Sprintf("slipwayd RSS %s at start, %s peak, %s at end; containerd %s, %s, %s",
				mib(rssStart.slipwayd), mib(peak.slipwayd), mib(rssEnd.slipwayd), mib(rssStart.containerd), mib(peak.containerd), mib(rssEnd.containerd)))
			criImages, ctrdImages := imageNames(ctx, node)

			for _, img := range images {
				removeImage(ctx, img.ref)
			}
			imageCounts := func(l leftovers) [3]int { return [3]int{l.Content, l.Images, l.ImageSnapshots} }
			imagesLeft := settle(func() [3]int { return imageCounts(node.leftoversOf(ctx)) }, imageCounts(start))
			criImagesGone, ctrdImagesGone := imageNames(ctx, node)

			calls, unexpected, violations := tally.totals()
			GinkgoWriter.Printf("soak: %d calls, %d unexpected errors, %d violations\n%s\n", calls, unexpected, violations, tally.table())
			// Every check runs, so one run reports every finding.
			failures := InterceptGomegaFailures(func() {
				Expect(unexpected).To(BeZero(), "unexpected errors (see the soak calls report entry)")
				Expect(violations).To(BeZero(), "broken invariants (see the soak calls report entry)")
				Expect(listedPods).To(Equal(pods), "the node lists the pods the workers made and did not remove, and no other")
				Expect(listedContainers).To(Equal(containers), "the node lists the containers the workers made and did not remove, and no other")
				Expect(afterPods).To(Equal(withoutImages(baseline)), "removing every pod leaves the node as after the warm-up")
				Expect(criImages).To(Equal(ctrdImages), "the CRI lists the images containerd has")
				Expect(imagesLeft).To(Equal(imageCounts(start)), "removing the images leaves no content, image record or layer (content, images, layers)")
				Expect(criImagesGone).To(Equal(ctrdImagesGone), "the CRI lists the images containerd has")
				Expect(rssEnd.slipwayd).To(BeNumerically("<=", rssBound(rssStart.slipwayd)), "slipwayd's RSS comes back near its start")
				Expect(rssEnd.containerd).To(BeNumerically("<=", rssBound(rssStart.containerd)), "containerd's RSS comes back near its start")
			})
			if len(failures) > 0 {
				Fail(strings.Join(failures, "\n\n"))
			}
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

// stableLeftovers reads the node's leftovers every second until they have
// not changed for soakQuiet, so the warm-up's asynchronous cleanups are
// done: among them a shim group's keeper, which outlives the group's last
// pod by 2 s, and the containerd lease creations share, dropped after 10 s
// without one (runtime/container/lease.go). Two equal reads a second apart
// could still be inside either.
func stableLeftovers(ctx context.Context, node *faultNode) leftovers {
	GinkgoHelper()
	last, since := node.leftoversOf(ctx), time.Now()
	for deadline := time.Now().Add(time.Minute); time.Since(since) < soakQuiet; time.Sleep(time.Second) {
		Expect(time.Now().Before(deadline)).To(BeTrue(), "the node settles after the warm-up: %+v", last)
		if cur := node.leftoversOf(ctx); !reflect.DeepEqual(cur, last) {
			last, since = cur, time.Now()
		}
	}
	return last
}

// soakQuiet is how long the node's leftovers must stay unchanged to count
// as settled: past the shared creation lease's 10 s idle time.
const soakQuiet = 15 * time.Second

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

// removePodsAndOrphans removes every pod of the node, and then every
// container left without a pod (the workers record each as a violation).
func removePodsAndOrphans(ctx context.Context) {
	GinkgoHelper()
	pods, _ := listedIDs(ctx)
	for _, id := range pods {
		removePod(ctx, id)
	}
	_, orphans := listedIDs(ctx)
	for _, id := range orphans {
		_, err := runtimeSvc.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id})
		Expect(err).NotTo(HaveOccurred())
	}
}

// listedIDs are the IDs of the pods and containers the node lists, sorted.
func listedIDs(ctx context.Context) (pods, containers []string) {
	GinkgoHelper()
	ps, err := runtimeSvc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	Expect(err).NotTo(HaveOccurred())
	for _, p := range ps.Items {
		pods = append(pods, p.Id)
	}
	cs, err := runtimeSvc.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	Expect(err).NotTo(HaveOccurred())
	for _, c := range cs.Containers {
		containers = append(containers, c.Id)
	}
	return soakIDs(pods), soakIDs(containers)
}

// imageNames are the image names the CRI lists (tags and digests) and the
// names of containerd's image records, sorted: the same when the image
// index missed no change.
func imageNames(ctx context.Context, node *faultNode) (cri, containerd []string) {
	GinkgoHelper()
	for _, img := range listImages(ctx, "") {
		cri = append(cri, img.RepoTags...)
		cri = append(cri, img.RepoDigests...)
	}
	client, nsCtx := node.client()
	records, err := client.ImageService().List(nsCtx)
	Expect(err).NotTo(HaveOccurred())
	for _, r := range records {
		containerd = append(containerd, r.Name)
	}
	return soakIDs(cri), soakIDs(containerd)
}

// settle reads until the reading equals want, for at most a minute, and
// returns the last reading: cleanups that finish asynchronously (shims
// exiting, containerd's GC) get their time, and the caller asserts.
func settle[T any](read func() T, want T) T {
	got := read()
	for deadline := time.Now().Add(time.Minute); !reflect.DeepEqual(got, want) && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		got = read()
	}
	return got
}

// withoutImages is l without its image counts.
func withoutImages(l leftovers) leftovers {
	l.Content, l.Images, l.ImageSnapshots = 0, 0, 0
	return l
}

// daemonMemory is the RSS of a node's slipwayd and containerd, in bytes.
type daemonMemory struct{ slipwayd, containerd int64 }

func daemonRSS(node *faultNode) daemonMemory {
	return daemonMemory{slipwayd: vmRSS(node.Cmd.Process.Pid), containerd: vmRSS(node.ContainerdPid())}
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

// removeCgroupsBut removes the cgroups below parents that are not in keep
// (cgroupsBelow's entries), and then the parents except containerd's
// namespace: those a failed spec leaked are empty and go.
func removeCgroupsBut(parents, keep []string) {
	kept := map[string]bool{}
	for _, entry := range keep {
		rel, _, _ := strings.Cut(entry, " ")
		kept[rel] = true
	}
	hierarchies, _ := os.ReadDir("/sys/fs/cgroup")
	for _, entry := range cgroupsBelow(parents) {
		rel, _, _ := strings.Cut(entry, " ")
		if kept[rel] {
			continue
		}
		for _, h := range hierarchies {
			_ = os.Remove(filepath.Join("/sys/fs/cgroup", h.Name(), rel))
		}
	}
	for _, h := range hierarchies {
		for _, parent := range parents {
			if parent != "k8s.io" {
				_ = os.Remove(filepath.Join("/sys/fs/cgroup", h.Name(), parent))
			}
		}
	}
}

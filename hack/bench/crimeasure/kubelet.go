package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// kubeletResult is one round of `crimeasure kubelet` on one runtime: a
// phase per pod count, in the order run (the warm-up pod is not kept).
type kubeletResult struct {
	Phases []kubeletPhase `json:"phases"`
}

// kubeletPhase is N static pods placed at once into the kubelet's
// manifest directory. Durations are nanoseconds from the moment the
// manifests were placed (all of them within a millisecond) to:
//   - Start: the pod's last container StartedAt, as the runtime reports it
//     in ContainerStatus (what kubelet shows as the container's startedAt);
//   - FirstLog: the timestamp of the first line the pod's logging container
//     wrote, as the runtime's logger stamped it in the CRI log file.
//
// The slowest pod's Start is the time for all N pods. SLICount and SLISum
// are what kubelet_pod_start_sli_duration_seconds observed during the phase
// (kubelet v1.37 leaves static pods out of that SLI, so both stay 0 here).
type kubeletPhase struct {
	Pods     int     `json:"pods"`
	Start    []int64 `json:"start"`
	FirstLog []int64 `json:"firstLog"`
	Restarts int     `json:"restarts"`
	SLICount float64 `json:"sliCount"`
	SLISum   float64 `json:"sliSum"`
}

// kubeletFlags are the flags of `crimeasure kubelet`.
type kubeletFlags struct {
	endpoint  string
	kubelet   string
	manifests string
	node      string
	pods      string
	webImage  string
	logImage  string
	out       string
	timeout   time.Duration
}

// runKubelet runs a warm-up pod, then each pod count of -pods, through the
// kubelet serving -kubelet (its static pod directory is -manifests),
// timing pod start from the runtime's CRI records, and tears every phase
// down until the runtime lists none of its pods.
func runKubelet(args []string) error {
	var f kubeletFlags
	fs := flag.NewFlagSet("kubelet", flag.ContinueOnError)
	fs.StringVar(&f.endpoint, "endpoint", "", "the runtime's CRI endpoint, unix:///path (the one kubelet uses)")
	fs.StringVar(&f.kubelet, "kubelet", "", "kubelet's server, https://127.0.0.1:PORT (anonymous, AlwaysAllow)")
	fs.StringVar(&f.manifests, "manifests", "", "kubelet's staticPodPath (empty; this command fills and empties it)")
	fs.StringVar(&f.node, "node", "", "kubelet's node name (static pod names end in -NODE)")
	fs.StringVar(&f.pods, "pods", "10,50", "pod counts, comma-separated, one phase each")
	fs.StringVar(&f.webImage, "web-image", "registry.k8s.io/e2e-test-images/nginx:1.14-2", "web server image (port 80, has wget)")
	fs.StringVar(&f.logImage, "log-image", "registry.k8s.io/e2e-test-images/busybox:1.29-2", "logging container image (has sh)")
	fs.StringVar(&f.out, "out", "", "JSON result file")
	fs.DurationVar(&f.timeout, "timeout", 20*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var counts []int
	for _, s := range strings.Split(f.pods, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-pods: %q is not a positive pod count", s)
		}
		counts = append(counts, n)
	}
	switch {
	case f.endpoint == "", f.kubelet == "", f.manifests == "", f.node == "", f.out == "":
		return fmt.Errorf("-endpoint, -kubelet, -manifests, -node and -out are required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	rs, is, closeConn, err := dial(f.endpoint)
	if err != nil {
		return err
	}
	defer closeConn()
	// Both images are on the runtime before anything is timed.
	for _, img := range []string{f.webImage, f.logImage} {
		st, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: img}})
		if err != nil || st.GetImage() == nil {
			return fmt.Errorf("image %s is not on the runtime (pull it first): %v", img, err)
		}
	}
	k := newKubeletClient(f.kubelet)
	ph := &phaseRunner{f: f, rs: rs, k: k}
	defer ph.removeAll()

	fmt.Println("warm-up: 1 pod")
	if _, err := ph.run(ctx, "kbench-warm", 1); err != nil {
		return fmt.Errorf("warm-up pod: %w", err)
	}
	var res kubeletResult
	for _, n := range counts {
		p, err := ph.run(ctx, fmt.Sprintf("kbench-%d", n), n)
		if err != nil {
			return fmt.Errorf("%d pods: %w", n, err)
		}
		res.Phases = append(res.Phases, p)
		s := slices.Clone(p.Start)
		slices.Sort(s)
		fmt.Printf("%d pods: start p50 %v p90 %v all %v\n", n,
			percentile(s, 50).Round(time.Millisecond), percentile(s, 90).Round(time.Millisecond), percentile(s, 100).Round(time.Millisecond))
	}
	return writeJSON(f.out, res)
}

// phaseRunner places, measures and removes one phase's pods at a time.
type phaseRunner struct {
	f  kubeletFlags
	rs runtimeapi.RuntimeServiceClient
	k  *kubeletClient
}

// run places n manifests in namespace ns, waits until the runtime runs all
// their containers, reads the CRI timestamps, checks kubelet reports every
// pod Ready (the probe works), and tears the phase down.
func (r *phaseRunner) run(ctx context.Context, ns string, n int) (_ kubeletPhase, retErr error) {
	p := kubeletPhase{Pods: n}
	staging := filepath.Join(filepath.Dir(r.f.manifests), "staging-"+ns)
	if err := os.MkdirAll(staging, 0o755); err != nil {
		return p, err
	}
	defer os.RemoveAll(staging)
	for i := range n {
		b, err := podManifest(ns, i, r.f.webImage, r.f.logImage)
		if err != nil {
			return p, err
		}
		if err := os.WriteFile(filepath.Join(staging, fmt.Sprintf("%s-%d.json", ns, i)), b, 0o644); err != nil {
			return p, err
		}
	}
	before, err := r.k.sli(ctx)
	if err != nil {
		return p, err
	}
	placed := time.Now()
	for i := range n {
		name := fmt.Sprintf("%s-%d.json", ns, i)
		if err := os.Rename(filepath.Join(staging, name), filepath.Join(r.f.manifests, name)); err != nil {
			return p, err
		}
	}
	defer func() {
		if retErr != nil {
			_ = r.teardown(ns)
		}
	}()

	pods, err := r.waitRunning(ctx, ns, n)
	if err != nil {
		return p, err
	}
	for _, pod := range pods {
		p.Start = append(p.Start, pod.lastStart.Sub(placed).Nanoseconds())
		p.Restarts += pod.restarts
		first, err := firstLogLine(ctx, pod.logPath)
		if err != nil {
			return p, err
		}
		p.FirstLog = append(p.FirstLog, first.Sub(placed).Nanoseconds())
	}
	if err := r.k.waitReady(ctx, ns, n); err != nil {
		return p, err
	}
	after, err := r.k.sli(ctx)
	if err != nil {
		return p, err
	}
	p.SLICount, p.SLISum = after.count-before.count, after.sum-before.sum
	return p, r.teardown(ns)
}

// runningPod is what the runtime reports of one started pod.
type runningPod struct {
	lastStart time.Time // the latest StartedAt of its containers
	logPath   string    // the logging container's log file
	restarts  int       // containers past their first attempt
}

// waitRunning polls the runtime (not kubelet) until ns has n ready
// sandboxes, each with a running web and log container, and returns them.
// The times come from the runtime's records, so the polling period does
// not enter them.
func (r *phaseRunner) waitRunning(ctx context.Context, ns string, n int) ([]runningPod, error) {
	sel := map[string]string{"io.kubernetes.pod.namespace": ns}
	for {
		sbs, err := r.rs.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
			LabelSelector: sel, State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}}})
		if err != nil {
			return nil, fmt.Errorf("ListPodSandbox: %w", err)
		}
		ctrs, err := r.rs.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
			LabelSelector: sel, State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}})
		if err != nil {
			return nil, fmt.Errorf("ListContainers: %w", err)
		}
		byPod := map[string][]*runtimeapi.Container{}
		for _, c := range ctrs.Containers {
			byPod[c.PodSandboxId] = append(byPod[c.PodSandboxId], c)
		}
		complete := 0
		for _, sb := range sbs.Items {
			if len(byPod[sb.Id]) == 2 {
				complete++
			}
		}
		if complete == n && len(sbs.Items) == n {
			var out []runningPod
			for _, sb := range sbs.Items {
				rp, err := r.podTimes(ctx, byPod[sb.Id])
				if err != nil {
					return nil, err
				}
				out = append(out, rp)
			}
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d pods running when giving up: %w", complete, n, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r *phaseRunner) podTimes(ctx context.Context, ctrs []*runtimeapi.Container) (runningPod, error) {
	var rp runningPod
	for _, c := range ctrs {
		st, err := r.rs.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.Id})
		if err != nil {
			return rp, fmt.Errorf("ContainerStatus %s: %w", c.Id, err)
		}
		if t := time.Unix(0, st.Status.StartedAt); t.After(rp.lastStart) {
			rp.lastStart = t
		}
		if c.Metadata.Attempt > 0 {
			rp.restarts++
		}
		if c.Metadata.Name == "log" {
			rp.logPath = st.Status.LogPath
		}
	}
	if rp.logPath == "" {
		return rp, fmt.Errorf("pod %s: no log path for its logging container", ctrs[0].PodSandboxId)
	}
	return rp, nil
}

// firstLogLine waits for the first line of a CRI log file and returns its
// timestamp (the logger's, RFC 3339 with nanoseconds).
func firstLogLine(ctx context.Context, path string) (time.Time, error) {
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			if line, _, ok := strings.Cut(string(b), "\n"); ok {
				stamp, _, _ := strings.Cut(line, " ")
				return time.Parse(time.RFC3339Nano, stamp)
			}
		} else if !os.IsNotExist(err) {
			return time.Time{}, err
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("no line in %s: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// teardown removes ns's manifests, waits until kubelet has stopped every
// pod of ns, removes the stopped sandboxes (kubelet would only garbage
// collect them a minute later) and waits until the runtime lists none.
// It is idempotent.
func (r *phaseRunner) teardown(ns string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	files, _ := filepath.Glob(filepath.Join(r.f.manifests, ns+"-*.json"))
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	sel := map[string]string{"io.kubernetes.pod.namespace": ns}
	for {
		sbs, err := r.rs.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
		if err != nil {
			return fmt.Errorf("ListPodSandbox: %w", err)
		}
		if len(sbs.Items) == 0 {
			return nil
		}
		ready := 0
		for _, sb := range sbs.Items {
			if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
				ready++
			}
		}
		if ready == 0 {
			for _, sb := range sbs.Items {
				if _, err := r.rs.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
					fmt.Printf("RemovePodSandbox %s: %v (retrying)\n", sb.Id, err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d pods of %s left (%d ready): %w", len(sbs.Items), ns, ready, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// removeAll tears down every phase's namespace, for an early return.
func (r *phaseRunner) removeAll() {
	files, _ := filepath.Glob(filepath.Join(r.f.manifests, "kbench-*.json"))
	seen := map[string]bool{}
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".json")
		seen[base[:strings.LastIndex(base, "-")]] = true
	}
	for ns := range seen {
		if err := r.teardown(ns); err != nil {
			fmt.Println("crimeasure: teardown of", ns, "failed:", err)
		}
	}
}

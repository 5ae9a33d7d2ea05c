package cri

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/pod"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// badInputCase is a request that must fail with InvalidArgument whose
// message names field.
type badInputCase struct {
	name  string
	field string
	call  func(context.Context, runtimeapi.RuntimeServiceClient) error
}

func badPod(name, field string, change func(*runtimeapi.PodSandboxConfig)) badInputCase {
	return badInputCase{name: "RunPodSandbox " + name, field: field, call: func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
		req := kubeletPodRequest()
		change(req.Config)
		_, err := c.RunPodSandbox(ctx, req)
		return err
	}}
}

func badContainer(name, field string, change func(*runtimeapi.CreateContainerRequest)) badInputCase {
	return badInputCase{name: "CreateContainer " + name, field: field, call: func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
		req := kubeletContainerRequest(readyPod)
		change(req)
		_, err := c.CreateContainer(ctx, req)
		return err
	}}
}

func emptyID(rpc, field string, call func(context.Context, runtimeapi.RuntimeServiceClient) error) badInputCase {
	return badInputCase{name: rpc + " without " + field, field: field, call: call}
}

func badInputCases() []badInputCase {
	res := func(r *runtimeapi.CreateContainerRequest) *runtimeapi.LinuxContainerResources {
		return r.Config.Linux.Resources
	}
	sc := func(r *runtimeapi.CreateContainerRequest) *runtimeapi.LinuxContainerSecurityContext {
		return r.Config.Linux.SecurityContext
	}
	localhost := func(ref string) *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: ref}
	}
	huge := strings.Repeat("x", 300<<10)
	cases := []badInputCase{
		// Pod metadata.
		{name: "RunPodSandbox no config", field: "config", call: func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
			_, err := c.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{})
			return err
		}},
		badPod("no metadata", "config.metadata", func(c *runtimeapi.PodSandboxConfig) { c.Metadata = nil }),
		badPod("empty name", "config.metadata.name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "" }),
		badPod("empty namespace", "config.metadata.namespace", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = "" }),
		badPod("empty uid", "config.metadata.uid", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Uid = "" }),
		badPod("name breaking CNI_ARGS", "config.metadata.name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "a;K8S_POD_NAMESPACE=kube-system" }),
		// Pod labels and annotations.
		badPod("label key with a blank", "config.labels", func(c *runtimeapi.PodSandboxConfig) { c.Labels["bad key"] = "v" }),
		badPod("label name over 63", "config.labels", func(c *runtimeapi.PodSandboxConfig) { c.Labels[strings.Repeat("n", 64)] = "v" }),
		badPod("label prefix over 253", "config.labels", func(c *runtimeapi.PodSandboxConfig) { c.Labels[strings.Repeat("p", 254)+"/n"] = "v" }),
		badPod("empty annotation key", "config.annotations", func(c *runtimeapi.PodSandboxConfig) { c.Annotations[""] = "v" }),
		badPod("labels over 256 KiB", "config.labels", func(c *runtimeapi.PodSandboxConfig) { c.Labels["big"] = huge }),
		badPod("annotations over 256 KiB", "config.annotations", func(c *runtimeapi.PodSandboxConfig) { c.Annotations["big"] = huge }),
		badPod("bad bandwidth annotation", "config.annotations", func(c *runtimeapi.PodSandboxConfig) {
			c.Annotations["kubernetes.io/ingress-bandwidth"] = "fast"
		}),
		badPod("bandwidth annotation that would take ParseQuantity minutes", "config.annotations", func(c *runtimeapi.PodSandboxConfig) {
			c.Annotations["kubernetes.io/egress-bandwidth"] = "99999999999999999999999999999999999999e-99999999"
		}),
		// Pod log directory.
		badPod("relative log directory", "config.log_directory", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "var/log/pods/x" }),
		badPod("log directory with ..", "config.log_directory", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "/var/log/pods/../../etc" }),
		// Pod DNS, seccomp and resources.
		badPod("DNS search with a line break", "config.dns_config.searches[1]", func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig.Searches[1] = "x\nnameserver 6.6.6.6"
		}),
		badPod("unknown seccomp type", "config.linux.security_context.seccomp.profile_type", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext.Seccomp.ProfileType = 9
		}),
		badPod("missing Localhost seccomp profile", "config.linux.security_context.seccomp.localhost_ref", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext.Seccomp = localhost("/var/lib/kubelet/seccomp/profiles/missing.json")
		}),
		badPod("negative cpu_shares", "config.linux.resources.cpu_shares", func(c *runtimeapi.PodSandboxConfig) { c.Linux.Resources.CpuShares = -1 }),
		badPod("cpu_quota below -1", "config.linux.resources.cpu_quota", func(c *runtimeapi.PodSandboxConfig) { c.Linux.Resources.CpuQuota = -2 }),
		badPod("negative overhead memory", "config.linux.overhead.memory_limit_in_bytes", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.Overhead.MemoryLimitInBytes = -1
		}),

		// Container request and metadata.
		badContainer("without pod_sandbox_id", "pod_sandbox_id", func(r *runtimeapi.CreateContainerRequest) { r.PodSandboxId = "" }),
		badContainer("no config", "config", func(r *runtimeapi.CreateContainerRequest) { r.Config = nil }),
		badContainer("no metadata", "config.metadata", func(r *runtimeapi.CreateContainerRequest) { r.Config.Metadata = nil }),
		badContainer("empty name", "config.metadata.name", func(r *runtimeapi.CreateContainerRequest) { r.Config.Metadata.Name = "" }),
		badContainer("no image", "config.image.image", func(r *runtimeapi.CreateContainerRequest) { r.Config.Image = nil }),
		// Container labels and annotations.
		badContainer("label key with a slash too many", "config.labels", func(r *runtimeapi.CreateContainerRequest) { r.Config.Labels["a/b/c"] = "v" }),
		badContainer("annotations over 256 KiB", "config.annotations", func(r *runtimeapi.CreateContainerRequest) { r.Config.Annotations["big"] = huge }),
		// Log path.
		badContainer("absolute log path", "config.log_path", func(r *runtimeapi.CreateContainerRequest) { r.Config.LogPath = "/etc/cron.d/x" }),
		badContainer("log path leaving the log directory", "config.log_path", func(r *runtimeapi.CreateContainerRequest) {
			r.Config.LogPath = "web/../../../../etc/cron.d/x"
		}),
		// Mounts and devices.
		badContainer("mount container path with ..", "config.mounts[0].container_path", func(r *runtimeapi.CreateContainerRequest) {
			r.Config.Mounts[0].ContainerPath = "/var/run/../../etc"
		}),
		badContainer("mount host path with ..", "config.mounts[1].host_path", func(r *runtimeapi.CreateContainerRequest) {
			r.Config.Mounts[1].HostPath = kubeletPodDir + "/../../../../etc"
		}),
		badContainer("relative mount host path", "config.mounts[2].host_path", func(r *runtimeapi.CreateContainerRequest) { r.Config.Mounts[2].HostPath = "etc" }),
		badContainer("relative mount container path", "config.mounts[0].container_path", func(r *runtimeapi.CreateContainerRequest) {
			r.Config.Mounts[0].ContainerPath = "data"
		}),
		badContainer("unknown propagation", "config.mounts[0].propagation", func(r *runtimeapi.CreateContainerRequest) { r.Config.Mounts[0].Propagation = 9 }),
		badContainer("device container path with ..", "config.devices[0].container_path", func(r *runtimeapi.CreateContainerRequest) {
			r.Config.Devices = []*runtimeapi.Device{{HostPath: "/dev/null", ContainerPath: "/dev/../etc/passwd", Permissions: "rw"}}
		}),
		badContainer("env key with =", "config.envs[0].key", func(r *runtimeapi.CreateContainerRequest) { r.Config.Envs[0].Key = "A=B" }),
		// Seccomp.
		badContainer("unknown seccomp type", "config.linux.security_context.seccomp.profile_type", func(r *runtimeapi.CreateContainerRequest) {
			sc(r).Seccomp.ProfileType = 9
		}),
		badContainer("missing Localhost seccomp profile", "config.linux.security_context.seccomp.localhost_ref", func(r *runtimeapi.CreateContainerRequest) {
			sc(r).Seccomp = localhost("/var/lib/kubelet/seccomp/profiles/missing.json")
		}),
		badContainer("Localhost seccomp profile that never ends", "config.linux.security_context.seccomp.localhost_ref", func(r *runtimeapi.CreateContainerRequest) {
			sc(r).Seccomp = localhost("/dev/zero")
		}),
		badContainer("Localhost seccomp profile leaving its directory", "config.linux.security_context.seccomp.localhost_ref", func(r *runtimeapi.CreateContainerRequest) {
			sc(r).Seccomp = localhost("../../etc/shadow")
		}),
		badContainer("unknown deprecated seccomp profile", "config.linux.security_context.seccomp_profile_path", func(r *runtimeapi.CreateContainerRequest) {
			sc(r).Seccomp, sc(r).SeccompProfilePath = nil, "strict"
		}),
		// Resources.
		badContainer("negative cpu_shares", "config.linux.resources.cpu_shares", func(r *runtimeapi.CreateContainerRequest) { res(r).CpuShares = -1 }),
		badContainer("cpu_quota below -1", "config.linux.resources.cpu_quota", func(r *runtimeapi.CreateContainerRequest) { res(r).CpuQuota = -2 }),
		badContainer("negative cpu_period", "config.linux.resources.cpu_period", func(r *runtimeapi.CreateContainerRequest) { res(r).CpuPeriod = -1 }),
		badContainer("negative memory limit", "config.linux.resources.memory_limit_in_bytes", func(r *runtimeapi.CreateContainerRequest) {
			res(r).MemoryLimitInBytes = -1
		}),
		badContainer("swap below -1", "config.linux.resources.memory_swap_limit_in_bytes", func(r *runtimeapi.CreateContainerRequest) {
			res(r).MemorySwapLimitInBytes = -2
		}),
		badContainer("oom_score_adj above 1000", "config.linux.resources.oom_score_adj", func(r *runtimeapi.CreateContainerRequest) { res(r).OomScoreAdj = 1001 }),
		badContainer("oom_score_adj below -1000", "config.linux.resources.oom_score_adj", func(r *runtimeapi.CreateContainerRequest) { res(r).OomScoreAdj = -1001 }),
		badContainer("hugepage page size", "config.linux.resources.hugepage_limits[1].page_size", func(r *runtimeapi.CreateContainerRequest) {
			res(r).HugepageLimits[1].PageSize = "-1GB"
		}),
		badContainer("negative supplemental group", "config.linux.security_context.supplemental_groups[0]", func(r *runtimeapi.CreateContainerRequest) {
			sc(r).SupplementalGroups = []int64{-1}
		}),

		// Empty IDs in every RPC that takes one.
		emptyID("StopPodSandbox", "pod_sandbox_id", func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
			_, err := c.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{})
			return err
		}),
		emptyID("RemovePodSandbox", "pod_sandbox_id", func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
			_, err := c.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{})
			return err
		}),
		emptyID("PodSandboxStatus", "pod_sandbox_id", func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
			_, err := c.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{})
			return err
		}),
		emptyID("PodSandboxStats", "pod_sandbox_id", func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
			_, err := c.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{})
			return err
		}),
		emptyID("UpdatePodSandboxResources", "pod_sandbox_id", func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
			_, err := c.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{})
			return err
		}),
		emptyID("PortForward", "pod_sandbox_id", func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
			_, err := c.PortForward(ctx, &runtimeapi.PortForwardRequest{Port: []int32{80}})
			return err
		}),
		emptyID("StartContainer", "container_id", func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
			_, err := c.StartContainer(ctx, &runtimeapi.StartContainerRequest{})
			return err
		}),
		emptyID("StopContainer", "container_id", func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
			_, err := c.StopContainer(ctx, &runtimeapi.StopContainerRequest{})
			return err
		}),
		emptyID("RemoveContainer", "container_id", func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
			_, err := c.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{})
			return err
		}),
		emptyID("ContainerStatus", "container_id", func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
			_, err := c.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{})
			return err
		}),
		emptyID("ContainerStats", "container_id", func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
			_, err := c.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{})
			return err
		}),
		emptyID("UpdateContainerResources", "container_id", func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
			_, err := c.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{Linux: &runtimeapi.LinuxContainerResources{}})
			return err
		}),
		emptyID("ReopenContainerLog", "container_id", func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
			_, err := c.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{})
			return err
		}),
		emptyID("ExecSync", "container_id", func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
			_, err := c.ExecSync(ctx, &runtimeapi.ExecSyncRequest{Cmd: []string{"true"}})
			return err
		}),
		emptyID("Exec", "container_id", func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
			_, err := c.Exec(ctx, &runtimeapi.ExecRequest{Cmd: []string{"sh"}, Stdout: true})
			return err
		}),
		emptyID("Attach", "container_id", func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
			_, err := c.Attach(ctx, &runtimeapi.AttachRequest{Stdout: true})
			return err
		}),
		{name: "UpdateContainerResources with negative cpu_shares", field: "cpu_shares", call: func(ctx context.Context, c runtimeapi.RuntimeServiceClient) error {
			_, err := c.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{
				ContainerId: runningID, Linux: &runtimeapi.LinuxContainerResources{CpuShares: -1},
			})
			return err
		}},
	}
	return cases
}

// guardedPods is the PodRuntime of the bad-input tests: Stop, Remove and
// InfraPid are a real pod.Runtime's over the test's store (they check the
// ID before touching anything); Run and WhileReady, which create, record
// that a request got past validation and fail.
type guardedPods struct {
	*pod.Runtime
	mu      sync.Mutex
	reached []string
}

var _ PodRuntime = (*guardedPods)(nil)

func (g *guardedPods) reach(call string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reached = append(g.reached, call)
	return fmt.Errorf("%s reached the pod runtime", call)
}

func (g *guardedPods) Run(context.Context, *runtimeapi.PodSandboxConfig, string) (string, error) {
	return "", g.reach("Run")
}

func (g *guardedPods) WhileReady(string, func(pod.Sandbox) error) error { return g.reach("WhileReady") }

// badInputServer is a Server with a ready pod and a running container and
// no container runtime: a request that got past validation fails with
// another code (or panics, answered Internal), and guardedPods records it.
func badInputServer(t *testing.T) (*Server, *guardedPods) {
	t.Helper()
	containers := container.NewStore(nil)
	containers.Put(runningID, container.Container{ID: runningID, PodID: readyPod, State: runtimeapi.ContainerState_CONTAINER_RUNNING})
	pods := pod.NewStore(nil)
	existing := kubeletPodConfig()
	existing.Metadata.Name = "existing"
	pods.Put(readyPod, pod.Sandbox{ID: readyPod, Config: existing, State: runtimeapi.PodSandboxState_SANDBOX_READY})
	guard := &guardedPods{Runtime: pod.NewRuntime(pod.Options{Store: pods})}
	s := NewServer(Options{
		Images: &fakeImages{}, PodRuntime: guard, Pods: pods, ContainerStore: containers,
		Streaming: &recordingStreams{}, CgroupDriver: "cgroupfs",
	})
	return s, guard
}

func TestBadInputIsInvalidArgument(t *testing.T) {
	s, guard := badInputServer(t)
	client, stop := serveForTest(t, s)
	defer stop()
	ctx := context.Background()
	for _, tc := range badInputCases() {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(ctx, client)
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("%v, want InvalidArgument", err)
			}
			if msg := status.Convert(err).Message(); !strings.HasPrefix(msg, tc.field) && !strings.Contains(msg, " "+tc.field) &&
				!strings.Contains(msg, tc.field+":") && !strings.Contains(msg, tc.field+" ") {
				t.Errorf("message %q does not name %s", msg, tc.field)
			}
		})
	}
	if len(guard.reached) > 0 {
		t.Errorf("requests reached the pod runtime: %v", guard.reached)
	}
	if n := len(s.opts.Pods.List()); n != 1 {
		t.Errorf("%d pods, want the 1 there was", n)
	}
	if n := len(s.opts.ContainerStore.List()); n != 1 {
		t.Errorf("%d containers, want the 1 there was", n)
	}
}

// The kubelet-shaped requests pass validation, so the table's cases fail
// for the one thing each changes.
// So are the fuzz seeds, so that fuzzing starts past validation.
func TestKubeletRequestsAreValid(t *testing.T) {
	for i, req := range podSeeds() {
		if err := validatePodConfig(req.Config, "cgroupfs"); err != nil {
			t.Errorf("pod seed %d: %v", i, err)
		}
	}
	for i, req := range containerSeeds() {
		if err := validateContainerRequest(req); err != nil {
			t.Errorf("container seed %d: %v", i, err)
		}
	}
}

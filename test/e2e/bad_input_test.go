package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Bad input gets InvalidArgument naming the field, nothing is created, and
// slipwayd keeps serving.
var _ = Describe("Bad input", func() {
	// objects is the IDs of every pod and container slipwayd lists.
	objects := func(ctx context.Context) []string {
		GinkgoHelper()
		pods, err := runtimeSvc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		Expect(err).NotTo(HaveOccurred())
		ctrs, err := runtimeSvc.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		Expect(err).NotTo(HaveOccurred())
		var ids []string
		for _, p := range pods.Items {
			ids = append(ids, "pod "+p.Id)
		}
		for _, c := range ctrs.Containers {
			ids = append(ids, "container "+c.Id)
		}
		return ids
	}
	// call bounds each bad request: a refusal is immediate.
	call := func(ctx context.Context, fn func(context.Context) error) error {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return fn(ctx)
	}
	huge := strings.Repeat("x", 300<<10)
	localhost := func(ref string) *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: ref}
	}

	It("refuses bad pod configs, naming the field, and creates nothing", func(ctx context.Context) {
		before := objects(ctx)
		name := podConfig("bad-pod").Metadata
		for _, tc := range []struct {
			field  string
			change func(*runtimeapi.PodSandboxConfig)
		}{
			{"config.metadata", func(c *runtimeapi.PodSandboxConfig) { c.Metadata = nil }},
			{"config.metadata.name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "" }},
			{"config.metadata.namespace", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = "" }},
			{"config.metadata.uid", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Uid = "" }},
			{"config.labels", func(c *runtimeapi.PodSandboxConfig) { c.Labels["not a key"] = "v" }},
			{"config.labels", func(c *runtimeapi.PodSandboxConfig) { c.Labels[strings.Repeat("n", 64)] = "v" }},
			{"config.labels", func(c *runtimeapi.PodSandboxConfig) { c.Labels["big"] = huge }},
			{"config.annotations", func(c *runtimeapi.PodSandboxConfig) { c.Annotations = map[string]string{"big": huge} }},
			{"config.annotations", func(c *runtimeapi.PodSandboxConfig) {
				c.Annotations = map[string]string{"kubernetes.io/egress-bandwidth": "99999999999999999999999999999999999999e-99999999"}
			}},
			{"config.log_directory", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "var/log/pods/x" }},
			{"config.log_directory", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "/var/log/pods/../../etc" }},
			{"config.dns_config.searches[0]", func(c *runtimeapi.PodSandboxConfig) {
				c.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"127.0.0.53"}, Searches: []string{"x\nnameserver 127.0.0.54"}}
			}},
			{"config.linux.security_context.seccomp.profile_type", func(c *runtimeapi.PodSandboxConfig) {
				c.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: 9}
			}},
			{"config.linux.security_context.seccomp.localhost_ref", func(c *runtimeapi.PodSandboxConfig) {
				c.Linux.SecurityContext.Seccomp = localhost("/nonexistent/seccomp/profile.json")
			}},
			{"config.linux.resources.cpu_shares", func(c *runtimeapi.PodSandboxConfig) {
				c.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuShares: -1}
			}},
			{"config.linux.overhead.memory_limit_in_bytes", func(c *runtimeapi.PodSandboxConfig) {
				c.Linux.Overhead = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -1}
			}},
		} {
			config := podConfig("bad-pod")
			config.Metadata = &runtimeapi.PodSandboxMetadata{Name: name.Name, Namespace: name.Namespace, Uid: name.Uid}
			tc.change(config)
			err := call(ctx, func(ctx context.Context) error {
				_, err := runtimeSvc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: config})
				return err
			})
			expectInvalid(err, tc.field)
		}
		_, err := runtimeSvc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{})
		expectInvalid(err, "config")
		Expect(objects(ctx)).To(Equal(before))

		By("leaving the refused pod's name free")
		config := podConfig("bad-pod")
		config.Metadata = name
		runPod(ctx, config)
	})

	It("refuses bad container configs, naming the field, and creates nothing", func(ctx context.Context) {
		pod := runTestPod(ctx, "bad-container")
		pullImage(ctx, busyboxImage, nil)
		outside := GinkgoT().TempDir()
		Expect(os.Symlink(outside, filepath.Join(pod.Config.LogDirectory, "escape"))).To(Succeed())
		Expect(os.Symlink("../..", filepath.Join(pod.Config.LogDirectory, "up"))).To(Succeed())
		before := objects(ctx)
		for _, tc := range []struct {
			field  string
			change func(*runtimeapi.CreateContainerRequest)
		}{
			{"pod_sandbox_id", func(r *runtimeapi.CreateContainerRequest) { r.PodSandboxId = "" }},
			{"config.metadata", func(r *runtimeapi.CreateContainerRequest) { r.Config.Metadata = nil }},
			{"config.metadata.name", func(r *runtimeapi.CreateContainerRequest) { r.Config.Metadata.Name = "" }},
			{"config.image.image", func(r *runtimeapi.CreateContainerRequest) { r.Config.Image = nil }},
			{"config.labels", func(r *runtimeapi.CreateContainerRequest) { r.Config.Labels["a/b/c"] = "v" }},
			{"config.annotations", func(r *runtimeapi.CreateContainerRequest) { r.Config.Annotations = map[string]string{"big": huge} }},
			{"config.log_path", func(r *runtimeapi.CreateContainerRequest) { r.Config.LogPath = "/etc/cron.d/evil" }},
			{"config.log_path", func(r *runtimeapi.CreateContainerRequest) { r.Config.LogPath = "../../../etc/cron.d/evil" }},
			{"log_path", func(r *runtimeapi.CreateContainerRequest) { r.Config.LogPath = "escape/0.log" }},
			{"log_path", func(r *runtimeapi.CreateContainerRequest) { r.Config.LogPath = "up/0.log" }},
			{"config.mounts[0].container_path", func(r *runtimeapi.CreateContainerRequest) {
				r.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data/../../etc", HostPath: outside}}
			}},
			{"config.mounts[0].host_path", func(r *runtimeapi.CreateContainerRequest) {
				r.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: outside + "/../../etc"}}
			}},
			{"config.mounts[0].host_path", func(r *runtimeapi.CreateContainerRequest) {
				r.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "etc"}}
			}},
			{"config.linux.security_context.seccomp.profile_type", func(r *runtimeapi.CreateContainerRequest) {
				r.Config.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: 9}
			}},
			{"config.linux.security_context.seccomp.localhost_ref", func(r *runtimeapi.CreateContainerRequest) {
				r.Config.Linux.SecurityContext.Seccomp = localhost("/nonexistent/seccomp/profile.json")
			}},
			{"config.linux.security_context.seccomp.localhost_ref", func(r *runtimeapi.CreateContainerRequest) {
				r.Config.Linux.SecurityContext.Seccomp = localhost("/dev/zero")
			}},
			{"config.linux.security_context.seccomp_profile_path", func(r *runtimeapi.CreateContainerRequest) {
				r.Config.Linux.SecurityContext.SeccompProfilePath = "strict"
			}},
			{"config.linux.resources.cpu_shares", func(r *runtimeapi.CreateContainerRequest) {
				r.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuShares: -2}
			}},
			{"config.linux.resources.cpu_quota", func(r *runtimeapi.CreateContainerRequest) {
				r.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuQuota: -2}
			}},
			{"config.linux.resources.cpu_period", func(r *runtimeapi.CreateContainerRequest) {
				r.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuPeriod: -1}
			}},
			{"config.linux.resources.memory_limit_in_bytes", func(r *runtimeapi.CreateContainerRequest) {
				r.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -1}
			}},
			{"config.linux.resources.oom_score_adj", func(r *runtimeapi.CreateContainerRequest) {
				r.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{OomScoreAdj: 1001}
			}},
			{"config.linux.resources.oom_score_adj", func(r *runtimeapi.CreateContainerRequest) {
				r.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{OomScoreAdj: -1001}
			}},
			{"config.linux.resources.hugepage_limits[0].page_size", func(r *runtimeapi.CreateContainerRequest) {
				r.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "huge", Limit: 1}}}
			}},
		} {
			config := containerConfig("bad", "true")
			req := &runtimeapi.CreateContainerRequest{PodSandboxId: pod.ID, Config: config, SandboxConfig: pod.Config}
			tc.change(req)
			err := call(ctx, func(ctx context.Context) error {
				_, err := runtimeSvc.CreateContainer(ctx, req)
				return err
			})
			expectInvalid(err, tc.field)
		}
		Expect(objects(ctx)).To(Equal(before))
		entries, err := os.ReadDir(outside)
		Expect(err).NotTo(HaveOccurred())
		Expect(entries).To(BeEmpty(), "nothing written through the escaping log paths")

		By("leaving the refused container's name free")
		id := createContainer(ctx, pod, containerConfig("bad", "true"))
		Expect(id).NotTo(BeEmpty())
	})

	It("refuses an empty ID in every call that takes one", func(ctx context.Context) {
		before := objects(ctx)
		for rpc, fn := range map[string]func(context.Context) error{
			"StopPodSandbox": func(ctx context.Context) error {
				_, err := runtimeSvc.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{})
				return err
			},
			"RemovePodSandbox": func(ctx context.Context) error {
				_, err := runtimeSvc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{})
				return err
			},
			"PodSandboxStatus": func(ctx context.Context) error {
				_, err := runtimeSvc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{})
				return err
			},
			"PodSandboxStats": func(ctx context.Context) error {
				_, err := runtimeSvc.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{})
				return err
			},
			"UpdatePodSandboxResources": func(ctx context.Context) error {
				_, err := runtimeSvc.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{})
				return err
			},
			"PortForward": func(ctx context.Context) error {
				_, err := runtimeSvc.PortForward(ctx, &runtimeapi.PortForwardRequest{Port: []int32{80}})
				return err
			},
			"StartContainer": func(ctx context.Context) error {
				_, err := runtimeSvc.StartContainer(ctx, &runtimeapi.StartContainerRequest{})
				return err
			},
			"StopContainer": func(ctx context.Context) error {
				_, err := runtimeSvc.StopContainer(ctx, &runtimeapi.StopContainerRequest{})
				return err
			},
			"RemoveContainer": func(ctx context.Context) error {
				_, err := runtimeSvc.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{})
				return err
			},
			"ContainerStatus": func(ctx context.Context) error {
				_, err := runtimeSvc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{})
				return err
			},
			"ContainerStats": func(ctx context.Context) error {
				_, err := runtimeSvc.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{})
				return err
			},
			"UpdateContainerResources": func(ctx context.Context) error {
				_, err := runtimeSvc.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{Linux: &runtimeapi.LinuxContainerResources{}})
				return err
			},
			"ReopenContainerLog": func(ctx context.Context) error {
				_, err := runtimeSvc.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{})
				return err
			},
			"ExecSync": func(ctx context.Context) error {
				_, err := runtimeSvc.ExecSync(ctx, &runtimeapi.ExecSyncRequest{Cmd: []string{"true"}})
				return err
			},
			"Exec": func(ctx context.Context) error {
				_, err := runtimeSvc.Exec(ctx, &runtimeapi.ExecRequest{Cmd: []string{"sh"}, Stdout: true})
				return err
			},
			"Attach": func(ctx context.Context) error {
				_, err := runtimeSvc.Attach(ctx, &runtimeapi.AttachRequest{Stdout: true})
				return err
			},
		} {
			field := "container_id"
			if strings.Contains(rpc, "PodSandbox") || rpc == "PortForward" {
				field = "pod_sandbox_id"
			}
			By(rpc)
			expectInvalid(call(ctx, fn), field)
		}
		Expect(objects(ctx)).To(Equal(before))
		_, err := runtimeSvc.Version(ctx, &runtimeapi.VersionRequest{})
		Expect(err).NotTo(HaveOccurred(), "slipwayd still serves")
	})
})

package cri

import (
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Requests shaped as kubelet 1.37 sends them for a Deployment's pod on a
// cgroupfs node: metadata, labels and annotations kubelet adds, the log
// directory, DNS, pod-level resources, and a restricted-PSS container with
// a service-account volume, /etc/hosts, a termination log, env and
// resources. Tests and fuzz seeds start from these.
const (
	kubeletPodUID  = "0b5c7c1e-4c8e-4a55-9a8e-6f0d2c1b9a31"
	kubeletPodName = "web-7d9f8c6b5-x2xkq"
	kubeletPodDir  = "/var/lib/kubelet/pods/" + kubeletPodUID
)

func kubeletPodConfig() *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: kubeletPodName, Uid: kubeletPodUID, Namespace: "default"},
		Hostname:     kubeletPodName,
		LogDirectory: "/var/log/pods/default_" + kubeletPodName + "_" + kubeletPodUID,
		DnsConfig: &runtimeapi.DNSConfig{
			Servers:  []string{"10.96.0.10"},
			Searches: []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local"},
			Options:  []string{"ndots:5"},
		},
		PortMappings: []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080}},
		Labels: map[string]string{
			"app": "web", "pod-template-hash": "7d9f8c6b5",
			"io.kubernetes.pod.name": kubeletPodName, "io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.uid": kubeletPodUID,
		},
		Annotations: map[string]string{
			"kubernetes.io/config.seen":   "2026-03-02T10:11:12.123456789Z",
			"kubernetes.io/config.source": "api",
		},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: "/kubepods/burstable/pod" + kubeletPodUID,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD,
				},
				RunAsUser:                &runtimeapi.Int64Value{Value: 1000},
				RunAsGroup:               &runtimeapi.Int64Value{Value: 3000},
				SupplementalGroups:       []int64{2000},
				Seccomp:                  &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
				SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy_Merge,
			},
			Sysctls:  map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"},
			Overhead: &runtimeapi.LinuxContainerResources{},
			Resources: &runtimeapi.LinuxContainerResources{
				CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 256 << 20,
			},
		},
	}
}

func kubeletPodRequest() *runtimeapi.RunPodSandboxRequest {
	return &runtimeapi.RunPodSandboxRequest{Config: kubeletPodConfig()}
}

// kubeletMaskedPaths and kubeletReadonlyPaths are kubelet's defaults for
// ProcMountType Default.
var (
	kubeletMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	kubeletReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

func kubeletContainerConfig() *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "web"},
		Image: &runtimeapi.ImageSpec{
			Image:              "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741",
			UserSpecifiedImage: "registry.k8s.io/e2e-test-images/busybox:1.29-2",
		},
		Command: []string{"/bin/sh", "-c"},
		Args:    []string{"httpd -f -p 8080"},
		Envs: []*runtimeapi.KeyValue{
			{Key: "MODE", Value: []byte("production")},
			{Key: "KUBERNETES_SERVICE_HOST", Value: []byte("10.96.0.1")},
			{Key: "KUBERNETES_SERVICE_PORT", Value: []byte("443")},
			{Key: "KUBERNETES_PORT", Value: []byte("tcp://10.96.0.1:443")},
		},
		Mounts: []*runtimeapi.Mount{
			{
				ContainerPath: "/var/run/secrets/kubernetes.io/serviceaccount",
				HostPath:      kubeletPodDir + "/volumes/kubernetes.io~projected/kube-api-access-7xq2d",
				Readonly:      true, Propagation: runtimeapi.MountPropagation_PROPAGATION_PRIVATE,
			},
			{ContainerPath: "/etc/hosts", HostPath: kubeletPodDir + "/etc-hosts"},
			{ContainerPath: "/dev/termination-log", HostPath: kubeletPodDir + "/containers/web/4d3c2b1a"},
		},
		Labels: map[string]string{
			"io.kubernetes.container.name": "web", "io.kubernetes.pod.name": kubeletPodName,
			"io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.uid": kubeletPodUID,
		},
		Annotations: map[string]string{
			"io.kubernetes.container.hash":                     "6f1c2a9b",
			"io.kubernetes.container.ports":                    `[{"name":"http","containerPort":8080,"protocol":"TCP"}]`,
			"io.kubernetes.container.restartCount":             "0",
			"io.kubernetes.container.terminationMessagePath":   "/dev/termination-log",
			"io.kubernetes.container.terminationMessagePolicy": "File",
			"io.kubernetes.pod.terminationGracePeriod":         "30",
		},
		LogPath: "web/0.log",
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: &runtimeapi.LinuxContainerResources{
				CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 128 << 20, OomScoreAdj: 968,
				HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB"}, {PageSize: "1GB"}},
			},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				Capabilities:             &runtimeapi.Capability{DropCapabilities: []string{"ALL"}},
				NamespaceOptions:         &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD},
				RunAsUser:                &runtimeapi.Int64Value{Value: 1000},
				RunAsGroup:               &runtimeapi.Int64Value{Value: 3000},
				SupplementalGroups:       []int64{2000},
				SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy_Merge,
				ReadonlyRootfs:           true,
				NoNewPrivs:               true,
				MaskedPaths:              kubeletMaskedPaths,
				ReadonlyPaths:            kubeletReadonlyPaths,
				Seccomp:                  &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
			},
		},
	}
}

func kubeletContainerRequest(podID string) *runtimeapi.CreateContainerRequest {
	return &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: kubeletContainerConfig(), SandboxConfig: kubeletPodConfig()}
}

// marshal is m's wire form, for fuzz seeds.
func marshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

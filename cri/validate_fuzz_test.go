package cri

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/slipway-dev/slipway/cni"
	"github.com/slipway-dev/slipway/runtime/pod"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podSeeds are RunPodSandbox requests as kubelet and critest send them.
func podSeeds() []*runtimeapi.RunPodSandboxRequest {
	hostNet := kubeletPodRequest()
	hostNet.Config.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
	hostNet.Config.Linux.Sysctls = nil
	hostNet.Config.DnsConfig = nil
	sharedPID := kubeletPodRequest()
	sharedPID.Config.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	sharedPID.Config.Annotations["kubernetes.io/egress-bandwidth"] = "10M"
	privileged := kubeletPodRequest()
	privileged.Config.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{Privileged: true}
	privileged.Config.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53, HostPort: 5353, HostIp: "127.0.0.1"}}
	critest := &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "PodSandbox-for-create-container-1a2b", Uid: "1a2b", Namespace: "cri-test-1a2b"},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/kubepods/besteffort/pod1a2b"},
		LogDirectory: "/tmp/podsandbox1a2b",
		Labels:       map[string]string{"cri-test": "true"},
	}}
	return []*runtimeapi.RunPodSandboxRequest{kubeletPodRequest(), hostNet, sharedPID, privileged, critest}
}

// containerSeeds are CreateContainer requests as kubelet and critest send
// them.
func containerSeeds() []*runtimeapi.CreateContainerRequest {
	privileged := kubeletContainerRequest(readyPod)
	privileged.Config.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{
		Privileged: true, NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD},
	}
	privileged.Config.Devices = []*runtimeapi.Device{{HostPath: "/dev/null", ContainerPath: "/dev/mynull", Permissions: "rwm"}}
	interactive := kubeletContainerRequest(readyPod)
	interactive.Config.Tty, interactive.Config.Stdin, interactive.Config.StdinOnce = true, true, true
	interactive.Config.WorkingDir = "/srv"
	interactive.Config.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{
		AddCapabilities: []string{"NET_ADMIN", "CAP_SYS_TIME"}, DropCapabilities: []string{"MKNOD"},
	}
	interactive.Config.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{
		ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "profiles/audit.json",
	}
	debug := kubeletContainerRequest(readyPod)
	debug.Config.Metadata = &runtimeapi.ContainerMetadata{Name: "debugger-x7k2p", Attempt: 1}
	debug.Config.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_TARGET
	debug.Config.Linux.SecurityContext.NamespaceOptions.TargetId = runningID
	debug.Config.Linux.SecurityContext.RunAsUsername = "nobody"
	debug.Config.Linux.SecurityContext.RunAsUser = nil
	debug.Config.Mounts = append(debug.Config.Mounts, &runtimeapi.Mount{
		ContainerPath: "/host/var/log", HostPath: "/var/log", Readonly: true, RecursiveReadOnly: true,
		MountOptions: []string{"nosuid", "nodev"},
	})
	critest := &runtimeapi.CreateContainerRequest{PodSandboxId: readyPod, Config: &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "container-for-create-test-9f8e"},
		Image:    &runtimeapi.ImageSpec{Image: "registry.k8s.io/e2e-test-images/busybox:1.29-2"},
		Command:  []string{"top"},
		Linux:    &runtimeapi.LinuxContainerConfig{},
	}}
	return []*runtimeapi.CreateContainerRequest{kubeletContainerRequest(readyPod), privileged, interactive, debug, critest}
}

// invalidClass reports whether err is what bad input must give: an
// InvalidArgument error (NotImplemented for a feature slipway lacks), also
// once the interceptor made it a status.
func invalidClass(err error) bool {
	if !errdefs.IsInvalidArgument(err) && !errdefs.IsNotImplemented(err) {
		return false
	}
	code := status.Code(toStatus(err))
	return code == codes.InvalidArgument || code == codes.Unimplemented
}

func FuzzValidatePodConfig(f *testing.F) {
	for _, req := range podSeeds() {
		f.Add(marshal(req))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req runtimeapi.RunPodSandboxRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		c := req.GetConfig()
		for _, driver := range []string{"cgroupfs", "systemd"} {
			err := validatePodConfig(c, driver)
			if err != nil {
				if !invalidClass(err) || !strings.HasPrefix(err.Error(), "config") {
					t.Fatalf("%s: error %v is not InvalidArgument naming a config field", driver, err)
				}
				continue
			}
			checkValidPod(t, c)
		}
	})
}

// checkValidPod checks what RunPodSandbox relies on in a config that
// passed validation.
func checkValidPod(t *testing.T, c *runtimeapi.PodSandboxConfig) {
	md := c.GetMetadata()
	if md.GetName() == "" || md.GetNamespace() == "" || md.GetUid() == "" || pod.Name(md) == "" {
		t.Fatalf("valid pod with metadata %v", md)
	}
	if dir := c.GetLogDirectory(); dir != "" && (!filepath.IsAbs(dir) || strings.Contains(dir, "/../")) {
		t.Fatalf("valid pod with log directory %q", dir)
	}
	for _, w := range append(c.GetDnsConfig().GetSearches(), c.GetDnsConfig().GetOptions()...) {
		if len(strings.Fields(w)) != 1 || strings.ContainsAny(w, "\n\r\x00") {
			t.Fatalf("valid pod with resolv.conf word %q", w)
		}
	}
	// What the pod network gets: CNI_ARGS and bandwidth.
	for _, v := range []string{md.GetName(), md.GetNamespace(), md.GetUid()} {
		if strings.ContainsAny(v, ";=") {
			t.Fatalf("valid pod with metadata %q, which breaks CNI_ARGS", v)
		}
	}
	if _, err := cni.BandwidthFromAnnotations(c.GetAnnotations()); err != nil {
		t.Fatalf("valid pod, but its bandwidth annotations fail: %v", err)
	}
}

func FuzzValidateContainerRequest(f *testing.F) {
	for _, req := range containerSeeds() {
		f.Add(marshal(req))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req runtimeapi.CreateContainerRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		err := validateContainerRequest(&req)
		if err != nil {
			field := strings.HasPrefix(err.Error(), "config") || strings.HasPrefix(err.Error(), "pod_sandbox_id")
			if !invalidClass(err) || !field {
				t.Fatalf("error %v is not InvalidArgument naming a field", err)
			}
			return
		}
		c := req.GetConfig()
		if req.GetPodSandboxId() == "" || c.GetMetadata().GetName() == "" || c.GetImage().GetImage() == "" {
			t.Fatalf("valid request without ID, name or image: %v", &req)
		}
		if lp := c.GetLogPath(); lp != "" && !filepath.IsLocal(lp) {
			t.Fatalf("valid log path %q leaves the log directory", lp)
		}
		for i, m := range c.GetMounts() {
			for _, p := range []string{m.GetContainerPath(), m.GetHostPath()} {
				if !filepath.IsAbs(p) || strings.Contains("/"+p+"/", "/../") {
					t.Fatalf("valid mount %d with path %q", i, p)
				}
			}
		}
	})
}

package cri

import (
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func usernsPodConfig(u *runtimeapi.UserNamespace) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: u},
		}},
	}
}

func TestPodUserNamespaceValidation(t *testing.T) {
	kubelet := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 65536 * 5, Length: 65536}}
	pod := &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: kubelet, Gids: kubelet}
	if err := validatePodConfig(usernsPodConfig(pod), "cgroupfs"); err != nil {
		t.Errorf("kubelet's hostUsers: false pod: %v", err)
	}
	for _, u := range []*runtimeapi.UserNamespace{
		{Mode: runtimeapi.NamespaceMode_CONTAINER},
		{Mode: runtimeapi.NamespaceMode_TARGET},
		{Mode: runtimeapi.NamespaceMode_NODE, Uids: kubelet, Gids: kubelet},
		{Mode: runtimeapi.NamespaceMode_POD, Uids: append(kubelet, kubelet...), Gids: kubelet},
	} {
		err := validatePodConfig(usernsPodConfig(u), "cgroupfs")
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), "config.linux.security_context.namespace_options.userns_options") {
			t.Errorf("%v: %v, want InvalidArgument naming config.linux...userns_options", u, err)
		}
	}
	hostPID := usernsPodConfig(pod)
	hostPID.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_NODE
	if err := validatePodConfig(hostPID, "cgroupfs"); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "namespace_options.pid: NODE") {
		t.Errorf("host PID with a user namespace: %v, want InvalidArgument naming pid", err)
	}
	if err := checkUserNamespaceSupport(usernsPodConfig(pod), false); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("on a node without support: %v, want FailedPrecondition", err)
	}
	for _, c := range []*runtimeapi.PodSandboxConfig{usernsPodConfig(pod), usernsPodConfig(nil)} {
		if err := checkUserNamespaceSupport(c, true); err != nil {
			t.Errorf("supported: %v", err)
		}
	}
	if err := checkUserNamespaceSupport(usernsPodConfig(nil), false); err != nil {
		t.Errorf("a pod without a user namespace on a node without support: %v", err)
	}
}

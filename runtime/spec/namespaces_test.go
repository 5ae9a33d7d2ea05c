package spec

import (
	"errors"
	"maps"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func testPod(pidMode runtimeapi.NamespaceMode) pod.Sandbox {
	return pod.Sandbox{
		ID: "pod1",
		Config: &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "uid1"},
			Hostname: "web",
			Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: pidMode},
			}},
		},
		Namespaces: namespaces.Pinned{namespaces.Net: "/run/ns/net", namespaces.IPC: "/run/ns/ipc", namespaces.UTS: "/run/ns/uts"},
		Infra:      pidMode == runtimeapi.NamespaceMode_POD,
	}
}

func TestWithNamespaces(t *testing.T) {
	hostNet := testPod(runtimeapi.NamespaceMode_CONTAINER)
	hostNet.Namespaces = namespaces.Pinned{namespaces.IPC: "/run/ns/ipc"}
	pinned := map[specs.LinuxNamespaceType]string{
		specs.NetworkNamespace: "/run/ns/net", specs.IPCNamespace: "/run/ns/ipc", specs.UTSNamespace: "/run/ns/uts",
		specs.MountNamespace: "",
	}
	with := func(m map[specs.LinuxNamespaceType]string, k specs.LinuxNamespaceType, v string) map[specs.LinuxNamespaceType]string {
		m = maps.Clone(m)
		m[k] = v
		return m
	}
	for _, tc := range []struct {
		name      string
		pod       pod.Sandbox
		ns        *runtimeapi.NamespaceOption
		infraPID  int
		targetPID int
		cgroupNS  bool
		want      map[specs.LinuxNamespaceType]string
		err       string
		kind      error
	}{
		{
			name: "pid CONTAINER", pod: testPod(runtimeapi.NamespaceMode_CONTAINER),
			ns:   &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			want: with(pinned, specs.PIDNamespace, ""),
		},
		{
			name: "pid POD joins the infra process", pod: testPod(runtimeapi.NamespaceMode_POD), infraPID: 42,
			ns:   &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD},
			want: with(pinned, specs.PIDNamespace, "/proc/42/ns/pid"),
		},
		{
			name: "pid POD without infra process", pod: testPod(runtimeapi.NamespaceMode_CONTAINER),
			ns:  &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD},
			err: "namespace_options.pid: POD, but pod pod1 has no shared PID namespace (its PID mode is CONTAINER)",
		},
		{
			name: "pid NODE", pod: testPod(runtimeapi.NamespaceMode_NODE),
			ns:   &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE},
			want: pinned,
		},
		{
			name: "pid TARGET", pod: testPod(runtimeapi.NamespaceMode_CONTAINER), targetPID: 77,
			ns:   &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, TargetId: "c0"},
			want: with(pinned, specs.PIDNamespace, "/proc/77/ns/pid"),
		},
		{
			name: "pid TARGET not running", pod: testPod(runtimeapi.NamespaceMode_CONTAINER),
			ns:  &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, TargetId: "c0"},
			err: "target_id: container c0 is not running",
		},
		{
			name: "host network and UTS", pod: hostNet,
			ns:   &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			want: map[specs.LinuxNamespaceType]string{specs.IPCNamespace: "/run/ns/ipc", specs.MountNamespace: "", specs.PIDNamespace: ""},
		},
		{
			name: "cgroup namespace", pod: testPod(runtimeapi.NamespaceMode_CONTAINER), cgroupNS: true,
			ns:   &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			want: with(with(pinned, specs.PIDNamespace, ""), specs.CgroupNamespace, ""),
		},
		{
			name: "user namespace NODE", pod: testPod(runtimeapi.NamespaceMode_CONTAINER),
			ns: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER,
				UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}},
			want: with(pinned, specs.PIDNamespace, ""),
		},
		{
			name: "user namespace POD", pod: testPod(runtimeapi.NamespaceMode_CONTAINER),
			ns: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER,
				UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}},
			err: "userns_options.uids: mode POD needs exactly one mapping, got 0",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t)
			err := apply(s, WithNamespaces(tc.pod, tc.ns, tc.infraPID, tc.targetPID, tc.cgroupNS))
			wantErr(t, err, tc.err)
			if err != nil {
				kind := tc.kind
				if kind == nil {
					kind = errdefs.ErrInvalidArgument
				}
				if !errors.Is(err, kind) {
					t.Errorf("error %v is not %v", err, kind)
				}
				return
			}
			got := map[specs.LinuxNamespaceType]string{}
			for _, ns := range s.Linux.Namespaces {
				if _, dup := got[ns.Type]; dup {
					t.Errorf("namespace %s twice", ns.Type)
				}
				got[ns.Type] = ns.Path
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("namespaces %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWithAnnotations(t *testing.T) {
	s := newSpec(t)
	config := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
		Image:    &runtimeapi.ImageSpec{Image: "sha256:abc", UserSpecifiedImage: "busybox:1"},
	}
	if err := apply(s, WithAnnotations(testPod(runtimeapi.NamespaceMode_POD), config)); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		pod.SandboxIDAnnotation: "pod1", ContainerTypeAnnotation: "container",
		SandboxNamespaceAnnotation: "default", SandboxUIDAnnotation: "uid1", SandboxNameAnnotation: "web",
		ContainerNameAnnotation: "app", ImageNameAnnotation: "busybox:1",
	}
	if !maps.Equal(s.Annotations, want) {
		t.Errorf("annotations %v, want %v", s.Annotations, want)
	}
}

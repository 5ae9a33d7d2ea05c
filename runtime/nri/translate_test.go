package nri

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// newTestHost is a Host that is not started (no plugin listens) over
// empty stores, with spec answering Spec.
func newTestHost(t *testing.T, spec func(context.Context, string) (*specs.Spec, error)) *Host {
	t.Helper()
	h, err := New(Options{
		Config:      Config{SocketPath: filepath.Join(t.TempDir(), "nri.sock")},
		RuntimeName: "slipway", RuntimeVersion: "test",
		Pods:       pod.NewStore(nil),
		Containers: container.NewStore(nil),
		Spec:       spec,
		InfraPid:   func(context.Context, string) (uint32, error) { return 42, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestPodToNRI(t *testing.T) {
	h := newTestHost(t, nil)
	p := pod.Sandbox{
		ID: "p1",
		Config: &runtimeapi.PodSandboxConfig{
			Metadata:    &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "ns", Uid: "u1"},
			Labels:      map[string]string{"l": "1"},
			Annotations: map[string]string{"a": "2"},
			Linux:       &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/kubepods/pod-u1"},
		},
		RuntimeHandler: "runc",
		Namespaces:     namespaces.Pinned{namespaces.Net: "/run/ns/net"},
		IPs:            []string{"10.0.0.2"},
		Infra:          true,
	}
	got := h.podToNRI(context.Background(), p)
	want := &api.PodSandbox{
		Id: "p1", Name: "web", Namespace: "ns", Uid: "u1",
		Labels: map[string]string{"l": "1"}, Annotations: map[string]string{"a": "2"},
		RuntimeHandler: "runc", Ips: []string{"10.0.0.2"}, Pid: 42,
		Linux: &api.LinuxPodSandbox{
			CgroupParent: "/kubepods/pod-u1",
			Namespaces:   []*api.LinuxNamespace{{Type: "network", Path: "/run/ns/net"}},
		},
	}
	if got.String() != want.String() {
		t.Errorf("podToNRI =\n%v\nwant\n%v", got, want)
	}
}

func TestContainerToNRI(t *testing.T) {
	oom := 100
	spec := &specs.Spec{
		Annotations: map[string]string{"io.kubernetes.cri.container-name": "app"},
		Process: &specs.Process{Args: []string{"sleep", "1"}, Env: []string{"A=1"}, OOMScoreAdj: &oom,
			Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 2, Soft: 1}}},
		Mounts: []specs.Mount{{Destination: "/data", Type: "bind", Source: "/host"}},
		Linux:  &specs.Linux{CgroupsPath: "/kubepods/c1", Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}}},
	}
	started := time.Unix(100, 0)
	c := container.Container{
		ID: "c1", PodID: "p1", State: runtimeapi.ContainerState_CONTAINER_EXITED,
		Config:    &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Labels: map[string]string{"l": "1"}},
		Image:     "busybox",
		StartedAt: started, FinishedAt: started.Add(time.Second), ExitCode: 3, Reason: "Error",
		User: container.ProcessUser{UID: 1, GID: 2},
	}
	loaded := 0
	h := newTestHost(t, func(_ context.Context, id string) (*specs.Spec, error) {
		loaded++
		if id != "c1" {
			return nil, errors.New("unknown container")
		}
		return spec, nil
	})
	got := h.containerToNRI(context.Background(), c, nil)
	if loaded != 1 {
		t.Errorf("spec loaded %d times, want 1", loaded)
	}
	if got.Id != "c1" || got.PodSandboxId != "p1" || got.Name != "app" || got.State != api.ContainerState_CONTAINER_STOPPED ||
		got.ExitCode != 3 || got.StatusReason != "Error" || got.StartedAt != started.UnixNano() ||
		got.FinishedAt != started.Add(time.Second).UnixNano() || got.GetUser().GetUid() != 1 {
		t.Errorf("status fields: %v", got)
	}
	if !reflect.DeepEqual(got.Args, spec.Process.Args) || !reflect.DeepEqual(got.Env, spec.Process.Env) ||
		got.Annotations["io.kubernetes.cri.container-name"] != "app" {
		t.Errorf("process fields: %v", got)
	}
	if len(got.Mounts) != 1 || got.Mounts[0].Destination != "/data" || len(got.Rlimits) != 1 {
		t.Errorf("mounts %v rlimits %v", got.Mounts, got.Rlimits)
	}
	if got.GetLinux().GetCgroupsPath() != "/kubepods/c1" || got.GetLinux().GetOomScoreAdj().GetValue() != 100 ||
		len(got.GetLinux().GetNamespaces()) != 1 {
		t.Errorf("linux: %v", got.GetLinux())
	}

	// Without a spec (the container is gone), the record still describes it.
	c.ID = "gone"
	if got := h.containerToNRI(context.Background(), c, nil); got.Id != "gone" || got.Name != "app" || got.Linux != nil {
		t.Errorf("without a spec: %v", got)
	}
}

func TestHooksWithoutPlugins(t *testing.T) {
	h := newTestHost(t, func(context.Context, string) (*specs.Spec, error) {
		t.Error("a spec was loaded with no plugin listening")
		return nil, errors.New("no")
	})
	ctx := context.Background()
	unblock := h.BlockSync()
	defer unblock()
	p := pod.Sandbox{ID: "p1", Config: &runtimeapi.PodSandboxConfig{}}
	if err := h.RunPodSandbox(ctx, p); err != nil {
		t.Errorf("RunPodSandbox: %v", err)
	}
	h.StopPodSandbox(ctx, p)
	h.RemovePodSandbox(ctx, p)
	c := container.Container{ID: "c1", PodID: "p1", Config: &runtimeapi.ContainerConfig{}}
	s := &specs.Spec{}
	if err := h.CreateContainer(ctx, c, s); err != nil || !reflect.DeepEqual(s, &specs.Spec{}) {
		t.Errorf("CreateContainer: %v, spec %+v", err, s)
	}
	res := &specs.LinuxResources{}
	if got, err := h.UpdateContainer(ctx, c, res); err != nil || got != res {
		t.Errorf("UpdateContainer = %v, %v", got, err)
	}
	h.Notify(ctx, container.Stopped, c)
}

func TestStopPodSandboxOnce(t *testing.T) {
	h := newTestHost(t, nil)
	p := pod.Sandbox{ID: "p1", Config: &runtimeapi.PodSandboxConfig{}}
	h.StopPodSandbox(context.Background(), p)
	if !h.podsStopped["p1"] {
		t.Fatal("the stop is not remembered")
	}
	h.RemovePodSandbox(context.Background(), p)
	if h.podsStopped["p1"] {
		t.Error("a removed pod's stop is still remembered")
	}
}

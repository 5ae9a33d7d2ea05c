package pod

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// memSandboxes is containerd's sandbox store in memory.
type memSandboxes struct {
	mu sync.Mutex
	m  map[string]sandbox.Sandbox
}

func (s *memSandboxes) Create(_ context.Context, sb sandbox.Sandbox) (sandbox.Sandbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[sb.ID]; ok {
		return sandbox.Sandbox{}, errdefs.ErrAlreadyExists
	}
	s.m[sb.ID] = sb
	return sb, nil
}

func (s *memSandboxes) Update(_ context.Context, sb sandbox.Sandbox, _ ...string) (sandbox.Sandbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.m[sb.ID]
	if !ok {
		return sandbox.Sandbox{}, errdefs.ErrNotFound
	}
	for k, v := range sb.Extensions {
		old.Extensions[k] = v
	}
	s.m[sb.ID] = old
	return old, nil
}

func (s *memSandboxes) Get(_ context.Context, id string) (sandbox.Sandbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, ok := s.m[id]
	if !ok {
		return sandbox.Sandbox{}, errdefs.ErrNotFound
	}
	return sb, nil
}

func (s *memSandboxes) List(context.Context, ...string) ([]sandbox.Sandbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sandbox.Sandbox
	for _, sb := range s.m {
		out = append(out, sb)
	}
	return out, nil
}

func (s *memSandboxes) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

type noNetwork struct{}

func (noNetwork) Setup(context.Context, Sandbox) ([]string, error) { return nil, nil }
func (noNetwork) Teardown(context.Context, Sandbox) error          { return nil }

type noInfra struct{}

func (noInfra) Start(context.Context, Sandbox, string) error { return nil }
func (noInfra) Stop(context.Context, string) error           { return nil }
func (noInfra) Remove(context.Context, string) error         { return nil }
func (noInfra) Pid(context.Context, string) (uint32, error)  { return 0, errdefs.ErrNotFound }
func (noInfra) Image() string                                { return "" }

// stoppedContainers records the pods whose containers were stopped.
type stoppedContainers struct{ stopped map[string]bool }

func (c *stoppedContainers) StopInPod(_ context.Context, id string) error {
	c.stopped[id] = true
	return nil
}
func (c *stoppedContainers) RemoveInPod(context.Context, string) error { return nil }

// checkingHooks checks, in each hook, what the NRI contracts promise
// plugins, and records the hooks run.
type checkingHooks struct {
	t          *testing.T
	store      *Store
	containers *stoppedContainers
	// failRun fails RunPodSandbox this many times.
	failRun int
	blocked int
	events  []string
}

func (h *checkingHooks) BlockSync() func() {
	h.blocked++
	return func() { h.blocked-- }
}

func (h *checkingHooks) RunPodSandbox(_ context.Context, p Sandbox) error {
	h.events = append(h.events, "Run")
	if h.blocked != 1 {
		h.t.Error("RunPodSandbox runs without plugin sync held off")
	}
	if _, err := h.store.Get(p.ID); !errdefs.IsNotFound(err) {
		h.t.Errorf("the pod is in the store while RunPodSandbox runs (Get: %v)", err)
	}
	if h.failRun > 0 {
		h.failRun--
		return errors.New("refused")
	}
	return nil
}

func (h *checkingHooks) StopPodSandbox(_ context.Context, p Sandbox) {
	h.events = append(h.events, "Stop")
	if h.blocked != 1 {
		h.t.Error("StopPodSandbox runs without plugin sync held off")
	}
	if !h.containers.stopped[p.ID] {
		h.t.Error("StopPodSandbox runs before the pod's containers are stopped")
	}
	if got, err := h.store.Get(p.ID); err != nil || got.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		h.t.Errorf("during StopPodSandbox the pod is %v (Get: %v), want listed and ready", got.State, err)
	}
}

func (h *checkingHooks) RemovePodSandbox(_ context.Context, p Sandbox) {
	h.events = append(h.events, "Remove")
	if _, err := h.store.Get(p.ID); err != nil {
		h.t.Errorf("the pod is gone from the store before RemovePodSandbox: %v", err)
	}
}

func (h *checkingHooks) UpdatePodSandbox(_ context.Context, _ Sandbox, _, res *runtimeapi.LinuxContainerResources) error {
	h.events = append(h.events, "Update")
	if res.GetCpuShares() != 512 {
		h.t.Errorf("UpdatePodSandbox got resources %v", res)
	}
	return nil
}

func (h *checkingHooks) PostUpdatePodSandbox(context.Context, Sandbox) {
	h.events = append(h.events, "PostUpdate")
}

func TestRunStopRemoveHooks(t *testing.T) {
	ctx := context.Background()
	store := NewStore(&memSandboxes{m: map[string]sandbox.Sandbox{}})
	containers := &stoppedContainers{stopped: map[string]bool{}}
	hooks := &checkingHooks{t: t, store: store, containers: containers, failRun: 1}
	root := t.TempDir()
	r := NewRuntime(Options{
		Store: store, Network: noNetwork{}, Infra: noInfra{}, Containers: containers,
		RootDir: filepath.Join(root, "pods"), StateDir: filepath.Join(root, "state"),
		CgroupsPath: func(_, id string) (string, error) { return id, nil },
		EnsureImage: func(context.Context, string) error { return nil },
		Hooks:       hooks,
	})
	config := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u"},
		Hostname: "p",
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE},
		}},
	}

	if _, err := r.Run(ctx, config, ""); err == nil {
		t.Fatal("Run succeeded though a plugin refused the pod")
	}
	if n := len(store.List()); n != 0 {
		t.Errorf("a refused pod left %d records", n)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "pods")); len(entries) != 0 {
		t.Errorf("a refused pod left its dir: %v", entries)
	}

	id, err := r.Run(ctx, config, "")
	if err != nil {
		t.Fatalf("a retried Run: %v", err)
	}
	if hooks.blocked != 0 {
		t.Errorf("Run left plugin sync held off %d times", hooks.blocked)
	}
	if err := r.UpdateResources(ctx, id, nil, &runtimeapi.LinuxContainerResources{CpuShares: 512}); err != nil {
		t.Fatalf("UpdateResources: %v", err)
	}
	if err := r.UpdateResources(ctx, "missing", nil, nil); !errdefs.IsNotFound(err) {
		t.Errorf("UpdateResources of a missing pod = %v, want NotFound", err)
	}
	for range 2 {
		if err := r.Stop(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	want := []string{"Run", "Run", "Update", "PostUpdate", "Stop", "Remove"}
	if len(hooks.events) != len(want) {
		t.Fatalf("hooks ran %v, want %v", hooks.events, want)
	}
	for i := range want {
		if hooks.events[i] != want[i] {
			t.Fatalf("hooks ran %v, want %v", hooks.events, want)
		}
	}
	if hooks.blocked != 0 {
		t.Errorf("plugin sync is still held off %d times", hooks.blocked)
	}
}

package pod

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// flakyNetwork's Teardown fails while fail is set and counts its calls.
type flakyNetwork struct {
	mu        sync.Mutex
	fail      bool
	teardowns int
}

func (*flakyNetwork) Setup(context.Context, Sandbox) ([]string, error) { return nil, nil }

func (n *flakyNetwork) Teardown(context.Context, Sandbox) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.teardowns++
	if n.fail {
		return errors.New("DEL failed")
	}
	return nil
}

// A stop records the pod stopped while its DEL runs; when the DEL fails
// the stop fails, and the retried stop of the now stopped pod runs the
// DEL again.
func TestStopOfAStoppedPodRunsTheFailedDELAgain(t *testing.T) {
	ctx := context.Background()
	store := NewStore(&memSandboxes{m: map[string]sandbox.Sandbox{}})
	network := &flakyNetwork{fail: true}
	root := t.TempDir()
	r := NewRuntime(Options{
		Store: store, Network: network, Infra: noInfra{}, Containers: &stoppedContainers{stopped: map[string]bool{}},
		RootDir: filepath.Join(root, "pods"), StateDir: filepath.Join(root, "state"),
		CgroupsPath: func(_, id string) (string, error) { return id, nil },
		EnsureImage: func(context.Context, string) error { return nil },
	})
	p := Sandbox{
		ID:         "0123456789abcdef",
		Config:     &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u"}},
		CreatedAt:  time.Now(),
		State:      runtimeapi.PodSandboxState_SANDBOX_READY,
		Namespaces: namespaces.Pinned{namespaces.Net: filepath.Join(root, "netns")},
	}
	if err := store.Create(ctx, p); err != nil {
		t.Fatal(err)
	}

	if err := r.Stop(ctx, p.ID); err == nil {
		t.Fatal("Stop succeeded though the DEL failed")
	}
	if got, err := store.Get(p.ID); err != nil || got.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Fatalf("after the failed stop the pod is %v (%v), want NOTREADY", got.State, err)
	}
	network.mu.Lock()
	network.fail = false
	network.mu.Unlock()
	if err := r.Stop(ctx, p.ID); err != nil {
		t.Fatalf("retried Stop: %v", err)
	}
	if network.teardowns != 2 {
		t.Errorf("the DEL ran %d times, want 2 (the retry of a stopped pod runs it again)", network.teardowns)
	}
}

package container

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// fakeLeases is a leases.Manager that keeps leases per namespace and can
// fail creations.
type fakeLeases struct {
	mu        sync.Mutex
	n         int
	live      map[string]string // lease ID -> namespace
	deleted   []string
	createErr error
}

func (f *fakeLeases) Create(ctx context.Context, opts ...leases.Opt) (leases.Lease, error) {
	ns, ok := namespaces.Namespace(ctx)
	if !ok {
		return leases.Lease{}, errors.New("no namespace")
	}
	var l leases.Lease
	for _, o := range opts {
		if err := o(&l); err != nil {
			return leases.Lease{}, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.createErr != nil {
		return leases.Lease{}, f.createErr
	}
	if l.Labels[leaseLabel] != "create" || l.Labels["containerd.io/gc.expire"] == "" {
		return leases.Lease{}, fmt.Errorf("lease without label or expiry: %v", l.Labels)
	}
	f.n++
	l.ID = fmt.Sprintf("l%d", f.n)
	f.live[l.ID] = ns
	return l, nil
}

func (f *fakeLeases) Delete(ctx context.Context, l leases.Lease, _ ...leases.DeleteOpt) error {
	ns, _ := namespaces.Namespace(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.live[l.ID] != ns {
		return fmt.Errorf("lease %s is not in namespace %q", l.ID, ns)
	}
	delete(f.live, l.ID)
	f.deleted = append(f.deleted, l.ID)
	return nil
}

func (f *fakeLeases) List(context.Context, ...string) ([]leases.Lease, error) { return nil, nil }
func (f *fakeLeases) AddResource(context.Context, leases.Lease, leases.Resource) error {
	return nil
}
func (f *fakeLeases) DeleteResource(context.Context, leases.Lease, leases.Resource) error {
	return nil
}
func (f *fakeLeases) ListResources(context.Context, leases.Lease) ([]leases.Resource, error) {
	return nil, nil
}

func (f *fakeLeases) state() (live int, deleted []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.live), slices.Clone(f.deleted)
}

// eventually polls cond for up to 5 s: leases are deleted in the
// background.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func leaseOf(t *testing.T, ctx context.Context) string {
	t.Helper()
	id, ok := leases.FromContext(ctx)
	if !ok || id == "" {
		t.Fatal("ctx carries no lease")
	}
	if ns, _ := namespaces.Namespace(ctx); ns == "" {
		t.Fatal("ctx carries no namespace")
	}
	return id
}

func TestCreationLeaseSharedAndReplaced(t *testing.T) {
	f := &fakeLeases{live: map[string]string{}}
	p := newCreationLeases(f, "k8s.io")

	ctx1, release1, err := p.take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx2, release2, err := p.take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	first := leaseOf(t, ctx1)
	if got := leaseOf(t, ctx2); got != first {
		t.Fatalf("concurrent creations got leases %s and %s, want one shared", first, got)
	}
	if ns, _ := namespaces.Namespace(ctx1); ns != "k8s.io" {
		t.Fatalf("lease namespace %q, want the default", ns)
	}
	release2()
	release2() // a second call is a no-op

	// Once it is old, the next creation gets a new lease; the old one is
	// deleted when its last creation releases it, not before.
	p.mu.Lock()
	p.current.made = time.Now().Add(-2 * leaseRotation)
	p.mu.Unlock()
	ctx3, release3, err := p.take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	second := leaseOf(t, ctx3)
	if second == first {
		t.Fatal("an old lease was not replaced")
	}
	time.Sleep(10 * time.Millisecond)
	if _, deleted := f.state(); len(deleted) != 0 {
		t.Fatalf("deleted %v while a creation holds it", deleted)
	}
	release1()
	eventually(t, "the replaced lease deleted", func() bool { _, d := f.state(); return slices.Equal(d, []string{first}) })
	release3()
	if live, _ := f.state(); live != 1 {
		t.Fatalf("%d leases live, want the current one", live)
	}

	// A replaced lease nobody holds is deleted at once.
	p.mu.Lock()
	p.current.made = time.Now().Add(-2 * leaseRotation)
	p.mu.Unlock()
	_, release4, err := p.take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	release4()
	eventually(t, "the idle replaced lease deleted", func() bool { _, d := f.state(); return slices.Contains(d, second) })
}

func TestCreationLeaseDroppedWhenIdle(t *testing.T) {
	f := &fakeLeases{live: map[string]string{}}
	p := newCreationLeases(f, "k8s.io")
	p.idleAfter = 50 * time.Millisecond
	ctx, release, err := p.take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	first := leaseOf(t, ctx)
	release()
	// Taken again within idleAfter, it is kept.
	ctx, release, err = p.take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := leaseOf(t, ctx); got != first {
		t.Fatalf("took %s, want %s again", got, first)
	}
	time.Sleep(100 * time.Millisecond)
	if live, _ := f.state(); live != 1 {
		t.Fatalf("%d leases live while a creation holds one, want 1", live)
	}
	release()
	eventually(t, "the idle lease deleted", func() bool { live, d := f.state(); return live == 0 && slices.Equal(d, []string{first}) })
	ctx, release, err = p.take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := leaseOf(t, ctx); got == first {
		t.Fatal("took a dropped lease")
	}
	release()
}

func TestCreationLeaseOtherNamespace(t *testing.T) {
	f := &fakeLeases{live: map[string]string{}}
	p := newCreationLeases(f, "k8s.io")
	ctx, release, err := p.take(namespaces.WithNamespace(context.Background(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	id := leaseOf(t, ctx)
	f.mu.Lock()
	ns := f.live[id]
	f.mu.Unlock()
	if ns != "other" {
		t.Fatalf("lease %s made in namespace %q, want other", id, ns)
	}
	release()
	eventually(t, "its lease deleted", func() bool { live, _ := f.state(); return live == 0 })
}

func TestCreationLeaseCreateError(t *testing.T) {
	boom := errors.New("containerd is down")
	f := &fakeLeases{live: map[string]string{}, createErr: boom}
	p := newCreationLeases(f, "k8s.io")
	if _, _, err := p.take(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("take error %v, want %v", err, boom)
	}
	f.mu.Lock()
	f.createErr = nil
	f.mu.Unlock()
	if _, release, err := p.take(context.Background()); err != nil {
		t.Fatalf("take after containerd is back: %v", err)
	} else {
		release()
	}
}

package shimgroup

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeKeepers runs keepers in memory: each ensure waits for a value on
// gate when gate is set, and a keeper "exits" when the test closes it.
type fakeKeepers struct {
	mu      sync.Mutex
	running map[string]chan struct{}
	starts  map[string]int
	removed map[string]int
	// fails is how many ensures fail from now on, with failErr.
	fails   int
	failErr error
	gate    chan struct{}
}

func newFake() *fakeKeepers {
	return &fakeKeepers{running: map[string]chan struct{}{}, starts: map[string]int{}, removed: map[string]int{}}
}

func (f *fakeKeepers) ensure(ctx context.Context, id string) (<-chan struct{}, error) {
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return nil, f.failErr
	}
	if c, ok := f.running[id]; ok {
		return c, nil
	}
	c := make(chan struct{})
	f.running[id] = c
	f.starts[id]++
	return c, nil
}

func (f *fakeKeepers) remove(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.running[id]; ok {
		close(c)
		delete(f.running, id)
	}
	f.removed[id]++
	return nil
}

// kill makes group id's keeper exit, as its shim's death does.
func (f *fakeKeepers) kill(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.running[id])
	delete(f.running, id)
}

func (f *fakeKeepers) count(m map[string]int, id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return m[id]
}

func (f *fakeKeepers) isRunning(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.running[id]
	return ok
}

func newGroups(perGroup int, f *fakeKeepers) *Groups {
	g := New(Options{PodsPerGroup: perGroup})
	g.keepers = f
	return g
}

func enter(t *testing.T, g *Groups, pod string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	release, err := g.Enter(ctx, pod)
	if err != nil {
		t.Fatalf("Enter(%s): %v", pod, err)
	}
	release()
}

func TestAssignFillsGroupsThenOpensNew(t *testing.T) {
	f := newFake()
	g := newGroups(3, f)
	ctx := context.Background()
	var ids []string
	for _, pod := range []string{"a", "b", "c", "d"} {
		ids = append(ids, g.Assign(ctx, pod))
	}
	if ids[0] == "" || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("the first three pods are not in one group: %q", ids)
	}
	if ids[3] == ids[0] || ids[3] == "" {
		t.Fatalf("the fourth pod is not in a new group: %q", ids)
	}
	enter(t, g, "a")
	enter(t, g, "d")
	if f.count(f.starts, ids[0]) != 1 || f.count(f.starts, ids[3]) != 1 {
		t.Fatalf("keeper starts: %v, want one per group", f.starts)
	}
	// A pod that leaves makes room; the fullest group with room is chosen.
	if err := g.Release(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if id := g.Assign(ctx, "e"); id != ids[0] {
		t.Fatalf("pod e went to %q, want the fuller group %q", id, ids[0])
	}
}

func TestLastPodClosesGroupForGood(t *testing.T) {
	f := newFake()
	g := newGroups(2, f)
	ctx := context.Background()
	id := g.Assign(ctx, "a")
	enter(t, g, "a")
	if err := g.Release(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if f.isRunning(id) || f.count(f.removed, id) != 1 {
		t.Fatalf("keeper of closed group %s: running %v, removed %d times", id, f.isRunning(id), f.count(f.removed, id))
	}
	if len(g.Groups()) != 0 {
		t.Fatalf("groups left: %v", g.Groups())
	}
	if next := g.Assign(ctx, "b"); next == id {
		t.Fatalf("closed group %s was reused", id)
	}
}

func TestReleaseDuringKeeperStartDeletesIt(t *testing.T) {
	f := newFake()
	f.gate = make(chan struct{})
	g := newGroups(2, f)
	ctx := context.Background()
	id := g.Assign(ctx, "a") // its keeper start waits on the gate
	done := make(chan error, 1)
	go func() { done <- g.Release(ctx, "a") }()
	close(f.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if f.isRunning(id) {
		t.Fatalf("the keeper of released group %s still runs", id)
	}
}

func TestDeadKeeperIsReplacedBeforeTasksGoOn(t *testing.T) {
	f := newFake()
	g := newGroups(4, f)
	ctx := context.Background()
	id := g.Assign(ctx, "a")
	g.Assign(ctx, "b")
	enter(t, g, "a")
	// Hold the next keeper start until a task of pod b is waiting.
	f.gate = make(chan struct{})
	f.kill(id)
	entered := make(chan struct{})
	go func() { enter(t, g, "b"); close(entered) }()
	select {
	case <-entered:
		// Entering before the watch saw the exit is the window the
		// package comment describes; the start below must still come.
	case <-time.After(50 * time.Millisecond):
	}
	close(f.gate)
	<-entered
	deadline := time.Now().Add(10 * time.Second)
	for f.count(f.starts, id) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the dead keeper of %s was not replaced (starts %d)", id, f.count(f.starts, id))
		}
		time.Sleep(time.Millisecond)
	}
	enter(t, g, "a")
	if !f.isRunning(id) {
		t.Fatal("no keeper runs after a task entered")
	}
}

func TestKeeperStartIsRetriedThenFailsEnter(t *testing.T) {
	f := newFake()
	f.fails, f.failErr = 2, errors.New("the dead shim's task is still there")
	g := newGroups(2, f)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := g.Assign(ctx, "a")
	enter(t, g, "a") // two failed attempts, then a keeper
	if !f.isRunning(id) {
		t.Fatal("the keeper does not run after failed attempts")
	}
	f.mu.Lock()
	f.fails = 100
	f.mu.Unlock()
	f.kill(id)
	deadline := time.Now().Add(10 * time.Second)
	for {
		release, err := g.Enter(ctx, "a")
		if err != nil {
			break
		}
		release()
		if time.Now().After(deadline) {
			t.Fatal("Enter kept succeeding with no keeper")
		}
		time.Sleep(time.Millisecond)
	}
	f.mu.Lock()
	f.fails = 0
	f.mu.Unlock()
	enter(t, g, "a") // the next Enter starts it again
	if !f.isRunning(id) {
		t.Fatal("the retried keeper does not run")
	}
}

func TestPodsPerGroupOneSerializesPerPod(t *testing.T) {
	f := newFake()
	g := newGroups(1, f)
	ctx := context.Background()
	if id := g.Assign(ctx, "a"); id != "" {
		t.Fatalf("group %q assigned with groups off", id)
	}
	release, err := g.Enter(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan struct{})
	go func() { enter(t, g, "a"); close(second) }()
	enter(t, g, "b") // another pod is not held up
	select {
	case <-second:
		t.Fatal("a second task of pod a entered while the first was in")
	case <-time.After(20 * time.Millisecond):
	}
	release()
	<-second
	if len(f.starts) != 0 {
		t.Fatalf("keepers started with groups off: %v", f.starts)
	}
}

func TestRestoreRebuildsGroups(t *testing.T) {
	f := newFake()
	g := newGroups(3, f)
	g.Restore(map[string]string{"a": "g1", "b": "g1", "c": "", "d": "g2"})
	if got := g.Assign(context.Background(), "e"); got != "g1" {
		t.Fatalf("new pod went to %q, want restored group g1 (fullest with room)", got)
	}
	enter(t, g, "d")
	if !f.isRunning("g2") {
		t.Fatal("entering a restored group did not start its keeper")
	}
	enter(t, g, "c") // its own shim: no keeper
	if len(g.Groups()) != 2 {
		t.Fatalf("groups: %v", g.Groups())
	}
}

func TestEmptyGroupStaysOpenForItsGrace(t *testing.T) {
	f := newFake()
	g := New(Options{PodsPerGroup: 4, IdleGrace: 200 * time.Millisecond})
	g.keepers = f
	ctx := context.Background()
	id := g.Assign(ctx, "a")
	enter(t, g, "a")
	if err := g.Release(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	// A pod replacing the last one within the grace finds the group and
	// its running keeper.
	if got := g.Assign(ctx, "b"); got != id {
		t.Fatalf("pod b went to %q, want the emptied group %q", got, id)
	}
	enter(t, g, "b")
	if f.count(f.starts, id) != 1 || !f.isRunning(id) {
		t.Fatalf("keeper starts %d, running %v: want the first keeper still running", f.count(f.starts, id), f.isRunning(id))
	}
	// The grace of the first emptying has passed: the group has a pod, so
	// it stays.
	time.Sleep(300 * time.Millisecond)
	if !f.isRunning(id) {
		t.Fatal("a group with a pod was closed by an earlier emptying's grace")
	}
	if err := g.Release(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.isRunning(id) || len(g.Groups()) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the empty group was not closed after its grace")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if f.count(f.removed, id) != 1 {
		t.Fatalf("keeper removed %d times", f.count(f.removed, id))
	}
}

func TestCloseEmptyEndsTheGraceAtOnce(t *testing.T) {
	f := newFake()
	g := New(Options{PodsPerGroup: 4, IdleGrace: time.Hour})
	g.keepers = f
	ctx := context.Background()
	empty := g.Assign(ctx, "a")
	enter(t, g, "a")
	if err := g.Release(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	g.Assign(ctx, "b") // joins the emptied group: it is open
	other := g.Assign(ctx, "c")
	if other != empty {
		t.Fatalf("pods b and c are in different groups: %s, %s", empty, other)
	}
	if err := g.Release(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := g.Release(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := g.CloseEmpty(ctx); err != nil {
		t.Fatal(err)
	}
	if f.isRunning(empty) || f.count(f.removed, empty) != 1 {
		t.Fatalf("the empty group's keeper: running %v, removed %d times", f.isRunning(empty), f.count(f.removed, empty))
	}
	if busy := g.Assign(ctx, "d"); busy == empty {
		t.Fatalf("pod d joined closed group %s", busy)
	}
}

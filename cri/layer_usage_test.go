package cri

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeLayers measures writable layers as bytes = 100 * measurement number,
// and reports each measurement on done.
type fakeLayers struct {
	mu    sync.Mutex
	calls map[string]int
	fail  map[string]bool
	done  chan string
}

func newFakeLayers() *fakeLayers {
	return &fakeLayers{calls: map[string]int{}, fail: map[string]bool{}, done: make(chan string, 100)}
}

func (f *fakeLayers) measure(_ context.Context, id string) (int64, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer func() { f.done <- id }()
	if f.fail[id] {
		return 0, 0, fmt.Errorf("snapshot %s: gone", id)
	}
	f.calls[id]++
	return int64(100 * f.calls[id]), 1, nil
}

func (f *fakeLayers) count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestLayerUsageContract(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Unix(1000, 0)}
	f := newFakeLayers()
	l := &layerUsages{now: clock.now}
	get := func(want int64, wantAt time.Time) {
		t.Helper()
		u, err := l.get(ctx, "c1", f.measure)
		if err != nil {
			t.Fatal(err)
		}
		if u.bytes != want || !u.at.Equal(wantAt) {
			t.Fatalf("usage = %d bytes measured at %v, want %d at %v", u.bytes, u.at, want, wantAt)
		}
	}
	t0 := clock.now()
	// Never measured: measured within the call.
	get(100, t0)
	if n := f.count("c1"); n != 1 {
		t.Fatalf("%d measurements, want 1", n)
	}
	<-f.done
	// Fresh: served as it is.
	clock.add(layerUsageFresh - time.Second)
	get(100, t0)
	if n := f.count("c1"); n != 1 {
		t.Fatalf("a fresh usage was measured again (%d measurements)", n)
	}
	// Stale: served as it is and re-measured in the background; the next
	// call gets the new measurement.
	clock.add(2 * time.Second)
	t1 := clock.now()
	get(100, t0)
	if id := <-f.done; id != "c1" {
		t.Fatalf("background measurement of %s", id)
	}
	waitDrained(t, l)
	get(200, t1)
	// Too old: measured within the call.
	clock.add(layerUsageMaxAge)
	t2 := clock.now()
	get(300, t2)
	<-f.done
}

func TestLayerUsageFailureIsNotRemembered(t *testing.T) {
	f := newFakeLayers()
	l := &layerUsages{}
	f.fail["c1"] = true
	if _, err := l.get(context.Background(), "c1", f.measure); err == nil {
		t.Fatal("no error from a failed measurement")
	}
	<-f.done
	f.mu.Lock()
	f.fail["c1"] = false
	f.mu.Unlock()
	u, err := l.get(context.Background(), "c1", f.measure)
	if err != nil || u.bytes != 100 {
		t.Fatalf("after a failure: %+v, %v; want a new measurement", u, err)
	}
}

func TestLayerUsageKeepForgetsOthers(t *testing.T) {
	f := newFakeLayers()
	l := &layerUsages{}
	for _, id := range []string{"a", "b"} {
		if _, err := l.get(context.Background(), id, f.measure); err != nil {
			t.Fatal(err)
		}
	}
	l.keep(map[string]bool{"a": true})
	if _, ok := l.byID["b"]; ok || len(l.byID) != 1 {
		t.Errorf("after keep(a): %v", l.byID)
	}
	if _, err := l.get(context.Background(), "b", f.measure); err != nil || f.count("b") != 2 {
		t.Errorf("a forgotten container is measured again: %d measurements, %v", f.count("b"), err)
	}
}

// TestLayerUsageConcurrent runs gets, background refreshes and keeps at
// once (run with -race); every container stays queued at most once.
func TestLayerUsageConcurrent(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	f := newFakeLayers()
	f.done = make(chan string, 100000)
	l := &layerUsages{now: clock.now}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				id := fmt.Sprintf("c%d", i%10)
				if _, err := l.get(context.Background(), id, f.measure); err != nil {
					t.Error(err)
					return
				}
				if i%50 == 0 {
					clock.add(layerUsageFresh)
				}
				if g == 0 && i%70 == 0 {
					l.keep(map[string]bool{"c1": true, "c2": true})
				}
			}
		}()
	}
	wg.Wait()
	waitDrained(t, l)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queued) != 0 || len(l.queue) != 0 {
		t.Errorf("after draining: queued %v, queue %v", l.queued, l.queue)
	}
}

// waitDrained waits until l's background goroutine has finished.
func waitDrained(t *testing.T, l *layerUsages) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		l.mu.Lock()
		draining := l.draining
		l.mu.Unlock()
		if !draining {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(errors.New("background re-measurement did not finish"))
		}
	}
}

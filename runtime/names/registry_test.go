package names

import (
	"context"
	"testing"
	"time"
)

func TestReserveWaitsForInFlightCreation(t *testing.T) {
	r := New()
	ctx := context.Background()
	first, _, err := r.Reserve(ctx, "pod", "id1")
	if err != nil || first == nil {
		t.Fatalf("first Reserve = %v, %v", first, err)
	}
	got := make(chan string)
	go func() {
		c, id, err := r.Reserve(ctx, "pod", "id2")
		if err != nil || c != nil {
			t.Errorf("retry Reserve = %v, %v; want the first's ID", c, err)
		}
		got <- id
	}()
	select {
	case id := <-got:
		t.Fatalf("retry returned %q before the first creation finished", id)
	case <-time.After(20 * time.Millisecond):
	}
	first.Finish(true)
	if id := <-got; id != "id1" {
		t.Errorf("retry got %q, want id1", id)
	}
}

func TestFailedCreationFreesTheName(t *testing.T) {
	r := New()
	ctx := context.Background()
	first, _, _ := r.Reserve(ctx, "pod", "id1")
	done := make(chan *Creation)
	go func() {
		c, _, _ := r.Reserve(ctx, "pod", "id2")
		done <- c
	}()
	time.Sleep(10 * time.Millisecond)
	first.Finish(false)
	second := <-done
	if second == nil {
		t.Fatal("after a failed creation the retry should get to create")
	}
	second.Finish(true)
	if c, id, _ := r.Reserve(ctx, "pod", "id3"); c != nil || id != "id2" {
		t.Errorf("Reserve after success = %v, %q; want bound to id2", c, id)
	}
}

func TestReleaseAndBind(t *testing.T) {
	r := New()
	ctx := context.Background()
	r.Bind("pod", "id1")
	r.Release("pod", "other") // not its ID: stays bound
	if c, id, _ := r.Reserve(ctx, "pod", "x"); c != nil || id != "id1" {
		t.Fatalf("bound name: %v, %q", c, id)
	}
	r.Release("pod", "id1")
	if c, _, _ := r.Reserve(ctx, "pod", "id2"); c == nil {
		t.Fatal("released name should be free")
	}
}

func TestReserveHonoursContext(t *testing.T) {
	r := New()
	r.Reserve(context.Background(), "pod", "id1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, _, err := r.Reserve(ctx, "pod", "id2"); err == nil {
		t.Fatal("want a context error while the first creation runs")
	}
}

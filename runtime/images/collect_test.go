package images

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestCollectorWaitWithoutRequestReturns(t *testing.T) {
	var c collector
	if err := c.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A request while a collection runs is served by exactly one more
// collection after it, however many requests come; Wait returns only
// when that one is done.
func TestCollectorCollectsOnceMoreAfterRequestsDuringARun(t *testing.T) {
	var c collector
	var runs atomic.Int32
	entered := make(chan struct{}, 10)
	proceed := make(chan struct{})
	collect := func(context.Context) error {
		runs.Add(1)
		entered <- struct{}{}
		<-proceed
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.Request(ctx, collect)
	cancel() // the collection outlives the request's context
	<-entered
	for range 3 {
		c.Request(context.Background(), collect)
	}

	waited := make(chan error, 1)
	go func() { waited <- c.Wait(context.Background()) }()
	proceed <- struct{}{} // first collection ends
	<-entered             // the queued one starts
	select {
	case err := <-waited:
		t.Fatalf("Wait returned (%v) while a requested collection was still to run", err)
	default:
	}
	proceed <- struct{}{}
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if got := runs.Load(); got != 2 {
		t.Errorf("collections = %d, want 2 (one, then one for the requests during it)", got)
	}

	// Idle again: a new request starts a new collection.
	c.Request(context.Background(), collect)
	<-entered
	proceed <- struct{}{}
	if err := c.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := runs.Load(); got != 3 {
		t.Errorf("collections = %d, want 3", got)
	}
}

// A failed collection is logged, not retried, and Wait still returns.
func TestCollectorWaitReturnsAfterAFailedCollection(t *testing.T) {
	var c collector
	c.Request(context.Background(), func(context.Context) error { return errors.New("boom") })
	if err := c.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestCollectorWaitEndsWithItsContext(t *testing.T) {
	var c collector
	proceed := make(chan struct{})
	c.Request(context.Background(), func(context.Context) error { <-proceed; return nil })
	defer func() {
		close(proceed)
		_ = c.Wait(context.Background())
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := c.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want the context's deadline", err)
	}
}

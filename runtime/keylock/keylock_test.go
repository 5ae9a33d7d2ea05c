package keylock

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestKeyLocksExcludeSharedKeysOnly(t *testing.T) {
	for _, tc := range []struct {
		name        string
		held, other []string
		blocks      bool
	}{
		{"same key", []string{"a"}, []string{"a"}, true},
		{"other key", []string{"a"}, []string{"b"}, false},
		{"one shared key of several", []string{"a", "b"}, []string{"c", "b"}, true},
		{"no key", []string{"a"}, nil, false},
		{"repeated keys", []string{"a", "a"}, []string{"b", "b"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var k Locks
			unlock, err := k.Lock(context.Background(), tc.held...)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			unlockOther, err := k.Lock(ctx, tc.other...)
			if blocked := errors.Is(err, context.DeadlineExceeded); blocked != tc.blocks {
				t.Fatalf("lock(%v) while %v held: err = %v, want blocked %v", tc.other, tc.held, err, tc.blocks)
			}
			if err == nil {
				unlockOther()
			}
			unlock()
			if n := k.size(); n != 0 {
				t.Errorf("%d keys left after every unlock, want 0", n)
			}
		})
	}
}

// TestKeyLocksOverlappingSets locks overlapping key sets in opposite orders
// from many goroutines: sorted acquisition must not deadlock, and a
// counter guarded by key "b" must see no concurrent increments.
func TestKeyLocksOverlappingSets(t *testing.T) {
	var (
		k       Locks
		wg      sync.WaitGroup
		inside  int
		maxSeen int
		mu      sync.Mutex
	)
	sets := [][]string{{"a", "b"}, {"b", "a"}, {"c", "b"}, {"b"}}
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			unlock, err := k.Lock(ctx, sets[i%len(sets)]...)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			maxSeen = max(maxSeen, inside)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
		}()
	}
	wg.Wait()
	if maxSeen != 1 {
		t.Errorf("%d holders of key b at once, want 1", maxSeen)
	}
	if n := k.size(); n != 0 {
		t.Errorf("%d keys left, want 0", n)
	}
}

func TestKeyLocksCancelledWaitHoldsNothing(t *testing.T) {
	var k Locks
	unlock, err := k.Lock(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// "a" is free and taken first; the wait for "b" fails and must give "a" back.
	if _, err := k.Lock(ctx, "a", "b"); !errors.Is(err, context.Canceled) {
		t.Fatalf("lock = %v, want canceled", err)
	}
	unlockA, err := k.Lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	unlockA()
	unlock()
	if n := k.size(); n != 0 {
		t.Errorf("%d keys left, want 0", n)
	}
}

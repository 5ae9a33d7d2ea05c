package images

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
			var k keyLocks
			unlock, err := k.lock(context.Background(), tc.held...)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			unlockOther, err := k.lock(ctx, tc.other...)
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
		k       keyLocks
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
			unlock, err := k.lock(ctx, sets[i%len(sets)]...)
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
	var k keyLocks
	unlock, err := k.lock(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// "a" is free and taken first; the wait for "b" fails and must give "a" back.
	if _, err := k.lock(ctx, "a", "b"); !errors.Is(err, context.Canceled) {
		t.Fatalf("lock = %v, want canceled", err)
	}
	unlockA, err := k.lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	unlockA()
	unlock()
	if n := k.size(); n != 0 {
		t.Errorf("%d keys left, want 0", n)
	}
}

func TestRepositories(t *testing.T) {
	for _, tc := range []struct {
		refs []string
		want []string
	}{
		{nil, nil},
		{
			[]string{"docker.io/library/busybox:1", "docker.io/library/busybox@sha256:" + hex64, "gcr.io/x/y:2"},
			[]string{"docker.io/library/busybox", "gcr.io/x/y"},
		},
		{[]string{"Not A Reference", "gcr.io/x/y:2"}, []string{"gcr.io/x/y"}},
	} {
		if got := repositories(tc.refs); !equal(got, tc.want) {
			t.Errorf("repositories(%v) = %v, want %v", tc.refs, got, tc.want)
		}
	}
	for _, tc := range []struct {
		a, b []string
		want bool
	}{
		{nil, nil, true},
		{[]string{"a"}, []string{"a", "b"}, true},
		{[]string{"a", "c"}, []string{"a", "b"}, false},
	} {
		if got := subset(tc.a, tc.b); got != tc.want {
			t.Errorf("subset(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

package index

import (
	"errors"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
)

func TestGetByIDAndPrefix(t *testing.T) {
	x := New[string]("pod")
	x.Put("abc123", "one")
	x.Put("abd456", "two")
	for id, want := range map[string]string{"abc123": "one", "abc": "one", "abd": "two"} {
		if got, err := x.Get(id); err != nil || got != want {
			t.Errorf("Get(%q) = %q, %v; want %q", id, got, err, want)
		}
	}
	if _, err := x.Get("ab"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("ambiguous prefix: %v", err)
	}
	for _, id := range []string{"zzz", ""} {
		if _, err := x.Get(id); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want not found", id, err)
		}
	}
}

func TestPutIfPresentDoesNotResurrect(t *testing.T) {
	x := New[int]("container")
	x.Put("a", 1)
	x.Delete("a")
	x.PutIfPresent("a", 2)
	if _, err := x.Get("a"); !errdefs.IsNotFound(err) {
		t.Errorf("deleted ID came back: %v", err)
	}
	x.Put("b", 1)
	x.PutIfPresent("b", 2)
	if v, _ := x.Get("b"); v != 2 {
		t.Errorf("PutIfPresent did not update: %d", v)
	}
}

func TestLockSerializes(t *testing.T) {
	x := New[int]("pod")
	var wg sync.WaitGroup
	counter := 0
	for range 50 {
		wg.Go(func() {
			unlock := x.Lock("a")
			c := counter
			counter = c + 1
			unlock()
		})
	}
	wg.Wait()
	if counter != 50 {
		t.Errorf("counter = %d, want 50", counter)
	}
}

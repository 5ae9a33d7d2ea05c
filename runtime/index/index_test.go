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

func TestModifyNeverLosesAConcurrentChange(t *testing.T) {
	type rec struct{ a, b int }
	x := New[rec]("container")
	x.Put("c", rec{})
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			_, err := x.Modify("c", func(r *rec) bool { r.a++; return true }, func(rec) error { return nil })
			if err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			_, err := x.Modify("c", func(r *rec) bool { r.b++; return true }, func(rec) error { return nil })
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, _ := x.Get("c"); got != (rec{100, 100}) {
		t.Errorf("after 100 changes of each field: %+v", got)
	}
}

func TestModifyKeepsTheIndexOnAFailedPersist(t *testing.T) {
	x := New[int]("container")
	x.Put("c", 1)
	failed := errors.New("containerd is down")
	if _, err := x.Modify("c", func(v *int) bool { *v = 2; return true }, func(int) error { return failed }); !errors.Is(err, failed) {
		t.Fatalf("Modify = %v, want the persist error", err)
	}
	if v, _ := x.Get("c"); v != 1 {
		t.Errorf("a change that was not persisted is indexed: %d", v)
	}
	if _, err := x.Modify("gone", func(*int) bool { return true }, func(int) error { return nil }); !errdefs.IsNotFound(err) {
		t.Errorf("Modify of an unknown ID = %v, want not found", err)
	}
}

func TestSortedByOrdersEveryValueByKey(t *testing.T) {
	type rec struct {
		name string
		at   int64
	}
	x := New[rec]("container")
	for i, at := range []int64{30, 10, 50, 20, 40} {
		x.Put(string(rune('a'+i)), rec{name: string(rune('a' + i)), at: at})
	}
	got := x.SortedBy(func(r *rec) int64 { return r.at })
	var names string
	for _, r := range got {
		names += r.name
	}
	if names != "bdaec" {
		t.Errorf("SortedBy order = %q, want %q", names, "bdaec")
	}
	if empty := New[rec]("pod").SortedBy(func(r *rec) int64 { return r.at }); len(empty) != 0 {
		t.Errorf("SortedBy on an empty index = %v", empty)
	}
}

// TestViewShowsEveryChangeAtOnce: a view taken after Put, Modify, Replace
// or Delete shows it; a view taken before keeps the values it had (a
// change indexes a new value, never writes into a viewed one).
func TestViewShowsEveryChangeAtOnce(t *testing.T) {
	type rec struct {
		state string
		at    int64
	}
	byAt := func(r *rec) int64 { return r.at }
	states := func(view []*rec) (s string) {
		for _, r := range view {
			s += r.state + " "
		}
		return s
	}
	x := New[rec]("container")
	x.Put("a", rec{"created", 1})
	before := x.View(byAt)
	if _, err := x.Modify("a", func(r *rec) bool { r.state = "running"; return true }, func(rec) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := states(x.View(byAt)); got != "running " {
		t.Errorf("after Modify: %q", got)
	}
	if got := states(before); got != "created " {
		t.Errorf("a view taken before Modify changed to %q", got)
	}
	x.Put("b", rec{"created", 0})
	if got := states(x.View(byAt)); got != "created running " {
		t.Errorf("after Put: %q", got)
	}
	x.PutIfPresent("a", rec{"exited", 1})
	if got := states(x.View(byAt)); got != "created exited " {
		t.Errorf("after PutIfPresent: %q", got)
	}
	x.Delete("b")
	if got := states(x.View(byAt)); got != "exited " {
		t.Errorf("after Delete: %q", got)
	}
	x.Replace(map[string]rec{"c": {"running", 3}, "d": {"created", 2}})
	if got := states(x.View(byAt)); got != "created running " {
		t.Errorf("after Replace: %q", got)
	}
}

// TestViewDuringChanges reads views and copies while other goroutines
// change, add and remove records (run with -race): every view is ordered
// and every record in it is whole.
func TestViewDuringChanges(t *testing.T) {
	type rec struct {
		id       string
		at, a, b int64
	}
	x := New[rec]("container")
	for i := range 20 {
		id := string(rune('a' + i))
		x.Put(id, rec{id: id, at: int64(i)})
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := string(rune('a' + (i+w)%20))
				_, _ = x.Modify(id, func(r *rec) bool { r.a++; r.b++; return true }, func(rec) error { return nil })
				if i%10 == 0 {
					x.Delete("z")
					x.Put("z", rec{id: "z", at: 100})
				}
			}
		})
	}
	for range 500 {
		view := x.View(func(r *rec) int64 { return r.at })
		for i, r := range view {
			if r.a != r.b {
				t.Fatalf("torn record %+v", *r)
			}
			if i > 0 && view[i-1].at > r.at {
				t.Fatalf("view out of order at %d", i)
			}
		}
		_ = x.SortedBy(func(r *rec) int64 { return r.at })
	}
	close(stop)
	wg.Wait()
}

// Package index is the in-memory index of CRI objects (pods, containers)
// kept beside their containerd records: lookup by ID or unique ID prefix,
// as crictl allows, and a lifecycle lock per object.
package index

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
)

// Index maps IDs to values of one kind of object. The zero value is not
// usable; use New.
type Index[T any] struct {
	kind string

	mu sync.RWMutex
	// byID holds the values; mu guards it. A stored value is never changed
	// in place: a change stores a new pointer, so the pointers View hands
	// out stay valid snapshots.
	byID map[string]*T
	// locks serialize lifecycle changes per ID; mu guards the map.
	locks map[string]*sync.Mutex
	// writes serialize record changes per ID (see Modify); mu guards the map.
	writes map[string]*sync.Mutex
}

// New returns an empty Index; kind names the objects in errors ("pod
// sandbox", "container").
func New[T any](kind string) *Index[T] {
	return &Index[T]{kind: kind, byID: map[string]*T{}, locks: map[string]*sync.Mutex{}, writes: map[string]*sync.Mutex{}}
}

// Replace swaps the whole content, as after reloading from containerd.
func (x *Index[T]) Replace(byID map[string]T) {
	ptrs := make(map[string]*T, len(byID))
	for id, v := range byID {
		ptrs[id] = &v
	}
	x.mu.Lock()
	x.byID = ptrs
	x.mu.Unlock()
}

// Put stores v under id.
func (x *Index[T]) Put(id string, v T) {
	x.mu.Lock()
	x.byID[id] = &v
	x.mu.Unlock()
}

// PutIfPresent stores v under id only if id is indexed, so a late update
// cannot resurrect a deleted object.
func (x *Index[T]) PutIfPresent(id string, v T) {
	x.mu.Lock()
	if _, ok := x.byID[id]; ok {
		x.byID[id] = &v
	}
	x.mu.Unlock()
}

// Delete drops id and its lock.
func (x *Index[T]) Delete(id string) {
	x.mu.Lock()
	delete(x.byID, id)
	delete(x.locks, id)
	delete(x.writes, id)
	x.mu.Unlock()
}

// Get returns the value with the given ID or unique ID prefix: an unknown
// ID is an errdefs.ErrNotFound, an ambiguous prefix an
// errdefs.ErrInvalidArgument.
func (x *Index[T]) Get(id string) (T, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if v, ok := x.byID[id]; ok {
		return *v, nil
	}
	var found []T
	if id != "" {
		for full, v := range x.byID {
			if strings.HasPrefix(full, id) {
				found = append(found, *v)
			}
		}
	}
	var zero T
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return zero, fmt.Errorf("%s %q: %w", x.kind, id, errdefs.ErrNotFound)
	}
	return zero, fmt.Errorf("%s ID prefix %q is ambiguous: %w", x.kind, id, errdefs.ErrInvalidArgument)
}

// Values returns every value, in no particular order.
func (x *Index[T]) Values() []T {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]T, 0, len(x.byID))
	for _, v := range x.byID {
		out = append(out, *v)
	}
	return out
}

// SortedBy returns a copy of every value, ordered by key (ties in no
// particular order).
func (x *Index[T]) SortedBy(key func(*T) int64) []T {
	view := x.View(key)
	out := make([]T, len(view))
	for i, v := range view {
		out[i] = *v
	}
	return out
}

// View returns every value ordered by key (ties in no particular order),
// as pointers to the values indexed at the time of the call: no copies,
// for lists of hundreds of records on every call. The values are shared:
// callers must not change them (the index never does; a change indexes a
// new value).
func (x *Index[T]) View(key func(*T) int64) []*T {
	type keyed struct {
		key int64
		v   *T
	}
	x.mu.RLock()
	order := make([]keyed, 0, len(x.byID))
	for _, v := range x.byID {
		order = append(order, keyed{key(v), v})
	}
	x.mu.RUnlock()
	slices.SortFunc(order, func(a, b keyed) int { return cmp.Compare(a.key, b.key) })
	out := make([]*T, len(order))
	for i, k := range order {
		out[i] = k.v
	}
	return out
}

// Lock serializes lifecycle changes of one object; call the returned
// function to unlock.
func (x *Index[T]) Lock(id string) func() { return x.lockIn(x.locks, id) }

// Modify serializes changes to one object's record: it locks id's record,
// applies change to the indexed value and, if change returns true, calls
// persist with the result and indexes it once persist succeeds. Every
// record change goes through Modify, so a change made meanwhile by
// another goroutine (an exit recorded while a resource update runs) is
// never overwritten with a stale copy. An unknown id is an
// errdefs.ErrNotFound; the value returned is the one indexed afterwards.
func (x *Index[T]) Modify(id string, change func(*T) bool, persist func(T) error) (T, error) {
	unlock := x.lockIn(x.writes, id)
	defer unlock()
	x.mu.RLock()
	p, ok := x.byID[id]
	x.mu.RUnlock()
	if !ok {
		var zero T
		return zero, fmt.Errorf("%s %q: %w", x.kind, id, errdefs.ErrNotFound)
	}
	// change works on a copy: the indexed value is shared (View).
	v := *p
	if !change(&v) {
		return v, nil
	}
	if err := persist(v); err != nil {
		return v, err
	}
	x.PutIfPresent(id, v)
	return v, nil
}

func (x *Index[T]) lockIn(locks map[string]*sync.Mutex, id string) func() {
	x.mu.Lock()
	l, ok := locks[id]
	if !ok {
		l = &sync.Mutex{}
		locks[id] = l
	}
	x.mu.Unlock()
	l.Lock()
	return l.Unlock
}

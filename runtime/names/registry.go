// Package names binds CRI object names (pod and container names built from
// their metadata) to IDs, and makes a retried create with a name whose first
// create is still running wait for that create's outcome instead of failing
// with "name is reserved" (CRI-O's getResourceOrWait).
package names

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
)

// NewID is a random 64-hex-digit ID, the form containerd's CRI uses for
// pods and containers.
func NewID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Registry maps names to IDs. The zero value is not usable; use New.
type Registry struct {
	mu sync.Mutex
	// byName holds bound names and in-flight creations; mu guards it.
	byName map[string]*claim
}

type claim struct {
	id   string
	done chan struct{} // closed when the creation finishes
	ok   bool          // set before done is closed: the name stays bound
}

// New returns an empty Registry.
func New() *Registry { return &Registry{byName: map[string]*claim{}} }

// Creation is a held reservation; its owner must call Finish exactly once.
type Creation struct {
	r     *Registry
	name  string
	claim *claim
}

// Reserve claims name for a new object with id. It returns a Creation when
// the caller must create the object; when the name is bound, or becomes
// bound by a creation that was in flight, it returns that object's ID with a
// nil Creation. A creation that fails frees the name and Reserve tries again.
func (r *Registry) Reserve(ctx context.Context, name, id string) (*Creation, string, error) {
	for {
		r.mu.Lock()
		c, taken := r.byName[name]
		if !taken {
			c = &claim{id: id, done: make(chan struct{})}
			r.byName[name] = c
			r.mu.Unlock()
			return &Creation{r: r, name: name, claim: c}, "", nil
		}
		r.mu.Unlock()
		select {
		case <-c.done:
			if c.ok {
				return nil, c.id, nil
			}
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
}

// Finish ends the creation: on success the name stays bound to the ID,
// otherwise it is freed. Waiters learn the outcome.
func (c *Creation) Finish(success bool) {
	c.r.mu.Lock()
	c.claim.ok = success
	if !success && c.r.byName[c.name] == c.claim {
		delete(c.r.byName, c.name)
	}
	c.r.mu.Unlock()
	close(c.claim.done)
}

// Bind records an existing object's name, as when rebuilding from containerd.
func (r *Registry) Bind(name, id string) {
	c := &claim{id: id, done: make(chan struct{}), ok: true}
	close(c.done)
	r.mu.Lock()
	r.byName[name] = c
	r.mu.Unlock()
}

// Release frees name if it is bound to id.
func (r *Registry) Release(name, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.byName[name]; ok && c.id == id {
		delete(r.byName, name)
	}
}

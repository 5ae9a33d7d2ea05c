package container

import (
	"context"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
)

// Creation leases. A lease keeps containerd's GC off a new container's
// rootfs snapshot until the container record refers to it (containerd adds
// the snapshot to the lease in the same write that prepares it). A lease
// of its own per creation would cost two more containerd writes, each a
// commit of its database: a third of CreateContainer's time. So creations
// share one lease, replaced every leaseRotation and dropped after
// leaseIdle without a creation; a replaced or dropped lease is deleted
// once the last creation that took it ends.
//
// What a shared lease holds past a creation is harmless: the snapshot of a
// created container is referenced by its container record, and removing
// a container, or undoing a failed creation, removes its snapshot
// explicitly, lease or not. A snapshot whose creation a crash interrupted
// is held until the lease goes: the next start-up deletes every creation
// lease (CleanupInterrupted), and a lease nobody deletes expires.

const (
	// leaseLabel marks the leases container creation takes.
	leaseLabel = "io.slipway.lease"
	// leaseRotation is how long creations share one lease.
	leaseRotation = time.Minute
	// leaseIdle is how long a lease no creation holds is kept for the
	// next one: a kubelet starts a pod's containers within it.
	leaseIdle = 10 * time.Second
	// leaseExpiry is how long containerd keeps a creation lease nobody
	// deleted; far longer than leaseRotation plus any creation.
	leaseExpiry = time.Hour
	// leaseDeleteTimeout bounds deleting a replaced lease.
	leaseDeleteTimeout = 30 * time.Second
)

// creationLeases hands out the shared creation lease of the CRI's
// containerd namespace (the client's default, which creation uses).
type creationLeases struct {
	manager   leases.Manager
	namespace string
	// idleAfter is leaseIdle but in tests.
	idleAfter time.Duration

	// mu guards current; it is held while a lease is created, so
	// concurrent creations wait for one lease rather than make several.
	mu      sync.Mutex
	current *sharedLease
}

// sharedLease is one creation lease and the creations holding it.
type sharedLease struct {
	lease leases.Lease
	made  time.Time
	// users counts the creations holding it; retired is set once it is
	// replaced or dropped; idle drops it once no creation held it for
	// leaseIdle. creationLeases.mu guards them.
	users   int
	retired bool
	idle    *time.Timer
}

func newCreationLeases(manager leases.Manager, namespace string) *creationLeases {
	return &creationLeases{manager: manager, namespace: namespace, idleAfter: leaseIdle}
}

// take returns ctx carrying a creation lease and release, which the
// creation calls once its container record exists or its snapshot is
// removed. A creation in another namespace gets a lease of its own.
func (p *creationLeases) take(ctx context.Context) (_ context.Context, release func(), _ error) {
	ns, ok := namespaces.Namespace(ctx)
	if !ok {
		ns = p.namespace
		ctx = namespaces.WithNamespace(ctx, ns)
	}
	if ns != p.namespace {
		l, err := p.create(ctx)
		if err != nil {
			return nil, nil, err
		}
		return leases.WithLease(ctx, l.ID), func() { go p.delete(ns, l) }, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.current == nil || time.Since(p.current.made) >= leaseRotation {
		l, err := p.create(ctx)
		if err != nil {
			return nil, nil, err
		}
		if old := p.current; old != nil {
			old.retired = true
			if old.users == 0 {
				go p.delete(ns, old.lease)
			}
		}
		p.current = &sharedLease{lease: l, made: time.Now()}
	}
	s := p.current
	s.users++
	if s.idle != nil {
		s.idle.Stop()
		s.idle = nil
	}
	var once sync.Once
	return leases.WithLease(ctx, s.lease.ID), func() { once.Do(func() { p.release(s) }) }, nil
}

// release ends one creation's hold on s, deleting s if it was the last
// hold of a replaced lease.
func (p *creationLeases) release(s *sharedLease) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s.users--
	switch {
	case s.users > 0:
	case s.retired:
		go p.delete(p.namespace, s.lease)
	default:
		s.idle = time.AfterFunc(p.idleAfter, func() { p.drop(s) })
	}
}

// drop deletes s if it is still current and no creation holds it.
func (p *creationLeases) drop(s *sharedLease) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.current != s || s.users > 0 {
		return
	}
	p.current, s.retired = nil, true
	go p.delete(p.namespace, s.lease)
}

// create makes a creation lease in ctx's namespace.
func (p *creationLeases) create(ctx context.Context) (leases.Lease, error) {
	return p.manager.Create(ctx, leases.WithRandomID(), leases.WithLabel(leaseLabel, "create"), leases.WithExpiration(leaseExpiry))
}

// delete deletes lease l of namespace ns, logging a failure.
func (p *creationLeases) delete(ns string, l leases.Lease) {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), leaseDeleteTimeout)
	defer cancel()
	if err := p.manager.Delete(ctx, l); err != nil && !errdefs.IsNotFound(err) {
		log.L.WithError(err).WithField("lease", l.ID).Warn("deleting a creation lease (the next start-up does, or it expires)")
	}
}

package cri

import (
	"context"
	"sync"
	"time"

	"github.com/containerd/log"
)

// How old a writable layer's usage may be when ListContainerStats serves
// it. kubelet lists container stats every 10 s; asking the snapshotter
// for every running container on each call cost about 2 ms a container
// (containerd's CRI, too, serves figures its syncer refreshes every 10 s).
const (
	// layerUsageFresh: a younger measurement is served as it is.
	layerUsageFresh = 5 * time.Second
	// layerUsageMaxAge: an older measurement (or none) is measured again
	// within the call; one in between is served and re-measured in the
	// background, so the next call has a new one.
	layerUsageMaxAge = time.Minute
)

// layerMeasure measures a container's writable layer (Runtime.Usage).
type layerMeasure func(ctx context.Context, id string) (bytes, inodes int64, err error)

// layerUsage is one measurement of a container's writable layer.
type layerUsage struct {
	bytes, inodes int64
	// at is when it was measured: the FilesystemUsage timestamp.
	at time.Time
}

// layerUsages remembers the latest writable-layer measurement of each
// container ListContainerStats reported. Background re-measurements run
// one at a time, on one goroutine, so a list of hundreds of containers
// does not ask the snapshotter hundreds of times at once. The zero value
// is ready to use.
type layerUsages struct {
	// now is the clock; nil is time.Now.
	now func() time.Time

	mu sync.Mutex
	// byID is guarded by mu.
	byID map[string]layerUsage
	// queue lists the containers to re-measure in the background, queued
	// their IDs as a set; draining says whether the goroutine that works
	// through queue runs. All guarded by mu.
	queue    []string
	queued   map[string]bool
	draining bool
}

func (l *layerUsages) clock() time.Time {
	if l.now != nil {
		return l.now()
	}
	return time.Now()
}

// get returns id's usage per the contract above: measured by measure
// within the call if there is no measurement under layerUsageMaxAge. A
// failed measurement is returned as the error and not remembered.
func (l *layerUsages) get(ctx context.Context, id string, measure layerMeasure) (layerUsage, error) {
	now := l.clock()
	l.mu.Lock()
	u, ok := l.byID[id]
	age := now.Sub(u.at)
	if !ok || age >= layerUsageMaxAge {
		l.mu.Unlock()
		return l.measure(ctx, id, measure)
	}
	if age >= layerUsageFresh && !l.queued[id] {
		if l.queued == nil {
			l.queued = map[string]bool{}
		}
		l.queued[id] = true
		l.queue = append(l.queue, id)
		if !l.draining {
			l.draining = true
			go l.drain(context.WithoutCancel(ctx), measure)
		}
	}
	l.mu.Unlock()
	return u, nil
}

// drain re-measures the queued containers, one at a time, until the queue
// is empty.
func (l *layerUsages) drain(ctx context.Context, measure layerMeasure) {
	for {
		l.mu.Lock()
		if len(l.queue) == 0 {
			l.draining = false
			l.mu.Unlock()
			return
		}
		id := l.queue[0]
		l.queue = l.queue[1:]
		l.mu.Unlock()
		mctx, cancel := context.WithTimeout(ctx, layerUsageFresh)
		if _, err := l.measure(mctx, id, measure); err != nil {
			log.G(ctx).WithError(err).WithField("containerid", id).Debug("writable layer usage unavailable")
		}
		cancel()
		l.mu.Lock()
		delete(l.queued, id)
		l.mu.Unlock()
	}
}

// measure measures id now and remembers it, unless a newer measurement
// landed meanwhile. (One that lands after keep forgot id is forgotten by
// the next keep.)
func (l *layerUsages) measure(ctx context.Context, id string, measure layerMeasure) (layerUsage, error) {
	bytes, inodes, err := measure(ctx, id)
	if err != nil {
		return layerUsage{}, err
	}
	u := layerUsage{bytes: bytes, inodes: inodes, at: l.clock()}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byID == nil {
		l.byID = map[string]layerUsage{}
	}
	if old, ok := l.byID[id]; !ok || old.at.Before(u.at) {
		l.byID[id] = u
	}
	return u, nil
}

// keep forgets every container not in ids (containers no longer running).
func (l *layerUsages) keep(ids map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id := range l.byID {
		if !ids[id] {
			delete(l.byID, id)
		}
	}
}

package cni

import (
	"context"
	"path/filepath"
	"time"

	"github.com/containerd/log"
	"github.com/fsnotify/fsnotify"
)

const (
	// reloadDelay gathers the events of one file write (create, writes,
	// chmod, rename) into one reload.
	reloadDelay = 100 * time.Millisecond
	// pollInterval is how often Watch reloads while it cannot watch the
	// conf dir (it is missing, or inotify is exhausted).
	pollInterval = 2 * time.Second
)

// Watch reloads the network config when files in ConfDir change, so a
// config added, edited or removed after New takes effect (and Status
// follows) without a restart. Pods already set up keep the config they
// were set up with. It returns when ctx is done. When ConfDir cannot be
// watched (it was removed, or inotify is unavailable) it polls until the
// watch can be set up again.
func (m *Manager) Watch(ctx context.Context) {
	ctx = log.WithLogger(ctx, log.G(ctx).WithField("dir", m.opts.ConfDir))
	for ctx.Err() == nil {
		m.watchOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pollInterval):
		}
		m.reload(ctx)
	}
}

// watchOnce reloads on every change until ctx is done or the watch is lost.
func (m *Manager) watchOnce(ctx context.Context) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.G(ctx).WithError(err).Warn("cannot watch CNI conf dir; polling it")
		return
	}
	defer w.Close()
	if err := w.Add(m.opts.ConfDir); err != nil {
		log.G(ctx).WithError(err).Debug("cannot watch CNI conf dir; polling it")
		return
	}
	// Changes made before the watch started were missed.
	m.reload(ctx)
	dir := filepath.Clean(m.opts.ConfDir)
	var reload <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) == dir && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				m.reload(ctx)
				return
			}
			if reload == nil {
				reload = time.After(reloadDelay)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			// Mostly a queue overflow: events were lost, so reload.
			log.G(ctx).WithError(err).Debug("CNI conf dir watch error")
			if reload == nil {
				reload = time.After(reloadDelay)
			}
		case <-reload:
			reload = nil
			m.reload(ctx)
		}
	}
}

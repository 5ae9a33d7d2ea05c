package container

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
)

const (
	// extensionKey holds the container record on the containerd container.
	extensionKey = "io.slipway.container"
	recordType   = "types.slipway.dev/container.Record"
	// KindLabel marks containerd containers slipway's CRI owns (shared
	// with package pod, whose infra containers carry "infra").
	KindLabel = "io.slipway.kind"
	// PodLabel names a container's pod sandbox.
	PodLabel = "io.slipway.pod"
)

// Store indexes the CRI containers of one containerd namespace in memory
// and persists changes to their containerd records.
type Store struct {
	containerd containers.Store

	mu sync.RWMutex
	// byID is the index; mu guards it.
	byID map[string]Container
	// locks serialize lifecycle changes per container; mu guards the map.
	locks map[string]*sync.Mutex
}

// NewStore returns an empty Store; call Load before serving.
func NewStore(s containers.Store) *Store {
	return &Store{containerd: s, byID: map[string]Container{}, locks: map[string]*sync.Mutex{}}
}

// Load rebuilds the index from containerd and returns what it loaded.
func (s *Store) Load(ctx context.Context) ([]Container, error) {
	list, err := s.containerd.List(ctx, fmt.Sprintf(`labels."%s"==container`, KindLabel))
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	byID := map[string]Container{}
	var out []Container
	for _, cc := range list {
		ext, ok := cc.Extensions[extensionKey]
		if !ok {
			continue
		}
		c, err := unmarshalContainer(ext.GetValue())
		if err != nil {
			log.G(ctx).WithError(err).WithField("containerid", cc.ID).Warn("skipping unreadable container record")
			continue
		}
		byID[c.ID] = c
		out = append(out, c)
	}
	s.mu.Lock()
	s.byID = byID
	s.mu.Unlock()
	return out, nil
}

// Labels are the containerd labels of a container record.
func Labels(podID string) map[string]string {
	return map[string]string{KindLabel: "container", PodLabel: podID}
}

// Extension is the containerd extension that carries c's record.
func Extension(c Container) (*types.Any, error) {
	b, err := c.marshal()
	if err != nil {
		return nil, err
	}
	return &types.Any{TypeUrl: recordType, Value: b}, nil
}

// Add indexes a container whose containerd record the caller created.
func (s *Store) Add(c Container) {
	s.mu.Lock()
	s.byID[c.ID] = c
	s.mu.Unlock()
}

// Update persists c's record and re-indexes it.
func (s *Store) Update(ctx context.Context, c Container) error {
	ext, err := Extension(c)
	if err != nil {
		return err
	}
	_, err = s.containerd.Update(ctx, containers.Container{
		ID:         c.ID,
		Extensions: map[string]typeurl.Any{extensionKey: ext},
	}, "extensions."+extensionKey)
	if err != nil {
		return fmt.Errorf("updating container %s: %w", c.ID, err)
	}
	s.mu.Lock()
	if _, ok := s.byID[c.ID]; ok {
		s.byID[c.ID] = c
	}
	s.mu.Unlock()
	return nil
}

// Drop removes a container from the index (its record is deleted with the
// containerd container).
func (s *Store) Drop(id string) {
	s.mu.Lock()
	delete(s.byID, id)
	delete(s.locks, id)
	s.mu.Unlock()
}

// Get returns the container with the given ID or unique ID prefix.
func (s *Store) Get(id string) (Container, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c, ok := s.byID[id]; ok {
		return c, nil
	}
	var found []Container
	if id != "" {
		for full, c := range s.byID {
			if strings.HasPrefix(full, id) {
				found = append(found, c)
			}
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return Container{}, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
	}
	return Container{}, fmt.Errorf("container ID prefix %q is ambiguous: %w", id, errdefs.ErrInvalidArgument)
}

// List returns every container, oldest first.
func (s *Store) List() []Container {
	s.mu.RLock()
	out := make([]Container, 0, len(s.byID))
	for _, c := range s.byID {
		out = append(out, c)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// InPod returns the containers of one pod.
func (s *Store) InPod(podID string) []Container {
	var out []Container
	for _, c := range s.List() {
		if c.PodID == podID {
			out = append(out, c)
		}
	}
	return out
}

// Lock serializes lifecycle changes of one container; call the returned
// function to unlock.
func (s *Store) Lock(id string) func() {
	s.mu.Lock()
	l, ok := s.locks[id]
	if !ok {
		l = &sync.Mutex{}
		s.locks[id] = l
	}
	s.mu.Unlock()
	l.Lock()
	return l.Unlock
}

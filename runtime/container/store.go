package container

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"github.com/slipway-dev/slipway/runtime/index"
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
// Get (by ID or unique prefix) and Lock (per-container lifecycle lock) come
// from the index.
type Store struct {
	containerd containers.Store
	*index.Index[Container]
}

// NewStore returns an empty Store; call Load before serving.
func NewStore(s containers.Store) *Store {
	return &Store{containerd: s, Index: index.New[Container]("container")}
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
	s.Replace(byID)
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

// withExtension puts ext, a record's Extension, on a new containerd
// container.
func withExtension(ext *types.Any) containerd.NewContainerOpts {
	return func(_ context.Context, _ *containerd.Client, cc *containers.Container) error {
		if cc.Extensions == nil {
			cc.Extensions = map[string]typeurl.Any{}
		}
		cc.Extensions[extensionKey] = ext
		return nil
	}
}

// Add indexes a container whose containerd record the caller created.
func (s *Store) Add(c Container) { s.Put(c.ID, c) }

// Modify changes container id's record through change (see
// index.Index.Modify): the change is persisted on containerd, then indexed.
// It is the only way a record changes after Add, so concurrent changes
// (an exit, a resource update, an OOM reason) never overwrite each other.
func (s *Store) Modify(ctx context.Context, id string, change func(*Container) bool) (Container, error) {
	return s.Index.Modify(id, change, func(c Container) error {
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
		return nil
	})
}

// Drop removes a container from the index (its record is deleted with the
// containerd container).
func (s *Store) Drop(id string) { s.Delete(id) }

// removingKind is the KindLabel of a containerd container whose removal
// is recorded but not finished (see remove.go): Load skips it.
const removingKind = "removing"

// MarkRemoving records on container id's containerd container that it is
// being removed: from then on Load does not index it, and Removing lists
// it until the containerd container is deleted. A missing container is
// fine.
func (s *Store) MarkRemoving(ctx context.Context, id string) error {
	_, err := s.containerd.Update(ctx, containers.Container{ID: id, Labels: map[string]string{KindLabel: removingKind}}, "labels."+KindLabel)
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("recording the removal of container %s: %w", id, err)
	}
	return nil
}

// Removing lists the containers marked removing, by ID, with their pod IDs.
func (s *Store) Removing(ctx context.Context) (map[string]string, error) {
	list, err := s.containerd.List(ctx, fmt.Sprintf(`labels."%s"==%s`, KindLabel, removingKind))
	if err != nil {
		return nil, fmt.Errorf("listing containers being removed: %w", err)
	}
	out := make(map[string]string, len(list))
	for _, cc := range list {
		out[cc.ID] = cc.Labels[PodLabel]
	}
	return out, nil
}

// List returns every container, oldest first.
func (s *Store) List() []Container {
	return s.SortedBy(func(c *Container) int64 { return c.CreatedAt.UnixNano() })
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

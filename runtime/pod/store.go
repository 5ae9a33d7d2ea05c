package pod

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"github.com/slipway-dev/slipway/runtime/index"
)

const (
	// extensionKey holds the pod record on the containerd sandbox object.
	extensionKey = "io.slipway.pod"
	recordType   = "types.slipway.dev/pod.Record"
	// KindLabel marks containerd objects slipway's CRI owns.
	KindLabel = "io.slipway.kind"
	// RuntimeName is recorded as the sandbox's runtime: the shim its
	// containers use.
	RuntimeName = "io.containerd.runc.v2"
)

// Store persists sandboxes on containerd's sandbox store and serves reads
// from memory. Get (by ID or unique prefix) and Lock (per-pod lifecycle
// lock) come from the index.
type Store struct {
	containerd sandbox.Store
	*index.Index[Sandbox]
}

// NewStore returns an empty Store over containerd's sandbox store (in the
// CRI namespace). Call Load before serving.
func NewStore(s sandbox.Store) *Store {
	return &Store{containerd: s, Index: index.New[Sandbox]("pod sandbox")}
}

// Load rebuilds the index from containerd and returns what it loaded.
// Records slipway cannot read are logged and skipped.
func (s *Store) Load(ctx context.Context) ([]Sandbox, error) {
	list, err := s.containerd.List(ctx, fmt.Sprintf(`labels."%s"==sandbox`, KindLabel))
	if err != nil {
		return nil, fmt.Errorf("listing pod sandboxes: %w", err)
	}
	byID := map[string]Sandbox{}
	var out []Sandbox
	for _, sb := range list {
		ext, ok := sb.Extensions[extensionKey]
		if !ok {
			continue
		}
		p, err := unmarshalSandbox(ext.GetValue())
		if err != nil {
			log.G(ctx).WithError(err).WithField("podsandboxid", sb.ID).Warn("skipping unreadable pod record")
			continue
		}
		byID[p.ID] = p
		out = append(out, p)
	}
	s.Replace(byID)
	return out, nil
}

// Create records a new sandbox on containerd and in the index.
func (s *Store) Create(ctx context.Context, p Sandbox) error {
	ext, err := extension(p)
	if err != nil {
		return err
	}
	_, err = s.containerd.Create(ctx, sandbox.Sandbox{
		ID:         p.ID,
		Labels:     map[string]string{KindLabel: "sandbox"},
		Runtime:    sandbox.RuntimeOpts{Name: RuntimeName},
		Extensions: map[string]typeurl.Any{extensionKey: ext},
		CreatedAt:  p.CreatedAt,
		UpdatedAt:  time.Now(),
	})
	if err != nil {
		return fmt.Errorf("recording pod sandbox %s: %w", p.ID, err)
	}
	s.Put(p.ID, p)
	return nil
}

// Update replaces a sandbox's record.
func (s *Store) Update(ctx context.Context, p Sandbox) error {
	ext, err := extension(p)
	if err != nil {
		return err
	}
	_, err = s.containerd.Update(ctx, sandbox.Sandbox{
		ID:         p.ID,
		Extensions: map[string]typeurl.Any{extensionKey: ext},
		UpdatedAt:  time.Now(),
	}, "extensions."+extensionKey)
	if err != nil {
		return fmt.Errorf("updating pod sandbox %s: %w", p.ID, err)
	}
	s.PutIfPresent(p.ID, p)
	return nil
}

// Delete removes a sandbox's record; a missing one is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.containerd.Delete(ctx, id); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("deleting pod sandbox record %s: %w", id, err)
	}
	s.Index.Delete(id)
	return nil
}

// List returns every sandbox, oldest first.
func (s *Store) List() []Sandbox {
	return s.SortedBy(func(p *Sandbox) int64 { return p.CreatedAt.UnixNano() })
}

func extension(p Sandbox) (typeurl.Any, error) {
	b, err := p.marshal()
	if err != nil {
		return nil, err
	}
	return &types.Any{TypeUrl: recordType, Value: b}, nil
}

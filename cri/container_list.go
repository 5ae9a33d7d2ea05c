package cri

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/slipway-dev/slipway/runtime/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListContainers lists containers, oldest first, filtered by ID (or ID
// prefix), state, pod sandbox ID and label selector. It reads the indexed
// records in place (containerView) and answers with each record's message
// encoded once (listedContainers): kubelet lists every second, and
// building and marshalling hundreds of messages per call was most of the
// call's CPU and its garbage (with kubelet's labels and annotations, about
// 50 allocations per container to marshal the maps), so of the daemon's
// garbage collections during a burst of lists.
//
// The response carries the containers already encoded, as its unknown
// fields (see listedContainers): on the wire it is the same message, but
// in process its Containers field is empty. Decode it (proto.Marshal,
// proto.Unmarshal) to read it in process.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := req.GetFilter()
	var keep func(*container.Container) bool
	if f.GetId() != "" || f.GetPodSandboxId() != "" || len(f.GetLabelSelector()) > 0 || f.GetState() != nil {
		keep = func(c *container.Container) bool {
			if !containerMatches(c, f.GetId(), f.GetPodSandboxId(), f.GetLabelSelector()) {
				return false
			}
			return f.GetState() == nil || f.GetState().State == c.State
		}
	}
	wire, err := s.listed.encoded(s.containerView(), keep)
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ListContainersResponse{}
	resp.ProtoReflect().SetUnknown(wire)
	return resp, nil
}

// containerView is every indexed container record, oldest first, shared
// with the index (index.Index.View): read them, never change them.
func (s *Server) containerView() []*container.Container {
	return s.opts.ContainerStore.View(func(c *container.Container) int64 { return c.CreatedAt.UnixNano() })
}

// listedContainer is the CRI message of container record c. It depends
// on the record alone, so a message built from a record stays right for
// as long as that record is indexed. image_ref is the image ID, as in
// containerd's lists: kubelet reads image_id (and image_ref only when
// image_id is empty, from runtimes older than v1.30); ContainerStatus
// reports the repo digest, which needs an image-store lookup that a list
// of hundreds skips.
func listedContainer(c *container.Container) *runtimeapi.Container {
	return &runtimeapi.Container{
		Id:           c.ID,
		PodSandboxId: c.PodID,
		Metadata:     c.Config.GetMetadata(),
		Image:        &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Config.GetImage().GetUserSpecifiedImage()},
		ImageRef:     c.ImageRef,
		ImageId:      c.ImageRef,
		State:        c.State,
		CreatedAt:    c.CreatedAt.UnixNano(),
		Labels:       c.Config.GetLabels(),
		Annotations:  c.Config.GetAnnotations(),
	}
}

// listedContainers keeps the encoding of every listed container record as
// an entry of ListContainersResponse's repeated field 1 (containers): its
// tag, its length and the marshalled listedContainer. A response whose
// unknown fields are such entries, one after the other, is on the wire
// exactly a ListContainersResponse with those containers, and marshalling
// it copies the bytes instead of walking hundreds of messages.
//
// Encodings are keyed by the record's pointer: the index never changes a
// record in place (a change indexes a new pointer, see index.Index.View),
// so a new state, a removal or a re-creation under the same ID is a new
// key and the next list encodes it. The last unfiltered answer is kept
// whole and handed out again while the node's records are the same ones.
// Every byte slice handed out is shared by concurrent calls and never
// written again. The zero value is ready to use.
type listedContainers struct {
	mu sync.Mutex
	// byRecord is the encoding of each record listed so far; mu guards
	// it. Records no longer indexed are dropped once they outnumber the
	// indexed ones, so it holds at most about twice the node's containers.
	byRecord map[*container.Container][]byte
	// all is the last unfiltered answer and allOf the records it lists,
	// in order; mu guards both.
	all   []byte
	allOf []*container.Container
}

// encoded returns the entries of the records in view that keep accepts
// (all of them if keep is nil), in view's order; view is every indexed
// record (containerView).
func (l *listedContainers) encoded(view []*container.Container, keep func(*container.Container) bool) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if keep == nil && slices.Equal(view, l.allOf) && l.allOf != nil {
		return l.all, nil
	}
	if l.byRecord == nil || len(l.byRecord) > 2*len(view)+64 {
		l.pruneLocked(view)
	}
	kept := make([][]byte, 0, len(view))
	size := 0
	for _, c := range view {
		if keep != nil && !keep(c) {
			continue
		}
		entry, ok := l.byRecord[c]
		if !ok {
			var err error
			if entry, err = containerEntry(c); err != nil {
				return nil, err
			}
			l.byRecord[c] = entry
		}
		kept = append(kept, entry)
		size += len(entry)
	}
	out := make([]byte, 0, size)
	for _, entry := range kept {
		out = append(out, entry...)
	}
	if keep == nil {
		l.all, l.allOf = out, view
	}
	return out, nil
}

// pruneLocked keeps only the encodings of the records in view.
func (l *listedContainers) pruneLocked(view []*container.Container) {
	next := make(map[*container.Container][]byte, len(view))
	for _, c := range view {
		if entry, ok := l.byRecord[c]; ok {
			next[c] = entry
		}
	}
	l.byRecord = next
}

// containerEntry is record c as an entry of ListContainersResponse's
// field 1.
func containerEntry(c *container.Container) ([]byte, error) {
	msg, err := proto.Marshal(listedContainer(c))
	if err != nil {
		return nil, fmt.Errorf("encoding container %s for a list: %w", c.ID, err)
	}
	entry := protowire.AppendTag(make([]byte, 0, len(msg)+8), containersField, protowire.BytesType)
	entry = protowire.AppendBytes(entry, msg)
	return entry, nil
}

// containersField is the number of ListContainersResponse's containers.
var containersField = (&runtimeapi.ListContainersResponse{}).ProtoReflect().Descriptor().Fields().ByName("containers").Number()

func containerMatches(c *container.Container, id, podID string, labels map[string]string) bool {
	if id != "" && !strings.HasPrefix(c.ID, id) {
		return false
	}
	if podID != "" && !strings.HasPrefix(c.PodID, podID) {
		return false
	}
	have := c.Config.GetLabels()
	for k, v := range labels {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

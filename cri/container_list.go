package cri

import (
	"context"
	"strings"
	"sync"

	"github.com/slipway-dev/slipway/runtime/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListContainers lists containers, oldest first, filtered by ID (or ID
// prefix), state, pod sandbox ID and label selector. It reads the indexed
// records in place (containerView) and answers with each record's message
// built once (containerMessages): kubelet lists every second, and building
// 200 messages per call was most of the call's allocations, so of the
// daemon's garbage collections during a burst of lists.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := req.GetFilter()
	keep := func(c *container.Container) bool {
		if !containerMatches(c, f.GetId(), f.GetPodSandboxId(), f.GetLabelSelector()) {
			return false
		}
		return f.GetState() == nil || f.GetState().State == c.State
	}
	return &runtimeapi.ListContainersResponse{Containers: s.listed.messages(s.containerView(), keep)}, nil
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

// containerMessages keeps the message of every listed container record
// (listedContainer), keyed by the record's pointer: the index never
// changes a record in place (a change indexes a new pointer, see
// index.Index.View), so a new state, a removal or a re-creation under the
// same ID is a new key and the next list builds its message. Messages are
// shared by concurrent calls and marshalled concurrently; nobody changes
// them. The zero value is ready to use.
type containerMessages struct {
	mu sync.Mutex
	// byRecord is the message of each record listed so far; mu guards it.
	// Records no longer indexed are dropped once they outnumber the
	// indexed ones (messages), so it holds at most about twice the node's
	// containers.
	byRecord map[*container.Container]*runtimeapi.Container
}

// messages returns the message of each record in view that keep accepts,
// in view's order; view is every indexed record (containerView).
func (m *containerMessages) messages(view []*container.Container, keep func(*container.Container) bool) []*runtimeapi.Container {
	out := make([]*runtimeapi.Container, 0, len(view))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byRecord == nil || len(m.byRecord) > 2*len(view)+64 {
		m.pruneLocked(view)
	}
	for _, c := range view {
		if !keep(c) {
			continue
		}
		msg, ok := m.byRecord[c]
		if !ok {
			msg = listedContainer(c)
			m.byRecord[c] = msg
		}
		out = append(out, msg)
	}
	return out
}

// pruneLocked keeps only the messages of the records in view.
func (m *containerMessages) pruneLocked(view []*container.Container) {
	next := make(map[*container.Container]*runtimeapi.Container, len(view))
	for _, c := range view {
		if msg, ok := m.byRecord[c]; ok {
			next[c] = msg
		}
	}
	m.byRecord = next
}

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

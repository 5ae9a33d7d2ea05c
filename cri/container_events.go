package cri

import (
	"github.com/slipway-dev/slipway/runtime/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// GetContainerEvents streams container lifecycle events (created, started,
// stopped, deleted) with the pod's status and its containers' statuses, as
// evented PLEG expects, until the client goes away.
func (s *Server) GetContainerEvents(req *runtimeapi.GetEventsRequest, stream runtimeapi.RuntimeService_GetContainerEventsServer) error {
	events, cancel := s.opts.ContainerEvents.Subscribe()
	defer cancel()
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			if err := stream.Send(s.containerEvent(ev)); err != nil {
				return err
			}
		}
	}
}

func (s *Server) containerEvent(ev container.Event) *runtimeapi.ContainerEventResponse {
	resp := &runtimeapi.ContainerEventResponse{
		ContainerId:        ev.ContainerID,
		ContainerEventType: ev.Type,
		CreatedAt:          ev.Time.UnixNano(),
	}
	if p, err := s.opts.Pods.Get(ev.PodID); err == nil {
		resp.PodSandboxStatus = podStatus(p)
		for _, c := range s.opts.ContainerStore.InPod(p.ID) {
			resp.ContainersStatuses = append(resp.ContainersStatuses, s.containerStatus(c))
		}
	}
	return resp
}

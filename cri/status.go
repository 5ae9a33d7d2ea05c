package cri

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/slipway-dev/slipway/runtime/spec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	reasonRuntimeNotReady = "ContainerdNotReady"
	reasonNetworkNotReady = "NetworkPluginNotReady"
)

// Status reports RuntimeReady (containerd answers) and NetworkReady. A
// verbose call adds the daemon's effective config as JSON under "config".
func (s *Server) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	runtimeReady := &runtimeapi.RuntimeCondition{Type: runtimeapi.RuntimeReady, Status: true}
	if err := s.opts.Health.Ping(ctx); err != nil {
		runtimeReady.Status = false
		runtimeReady.Reason = reasonRuntimeNotReady
		runtimeReady.Message = fmt.Sprintf("containerd does not answer: %v", err)
	}
	networkReady := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if err := s.opts.Network.Status(); err != nil {
		networkReady.Status = false
		networkReady.Reason = reasonNetworkNotReady
		networkReady.Message = fmt.Sprintf("pod network is not ready: %v", err)
	}
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{runtimeReady, networkReady}},
		RuntimeHandlers: []*runtimeapi.RuntimeHandler{{
			Name: "",
			Features: &runtimeapi.RuntimeHandlerFeatures{
				RecursiveReadOnlyMounts: spec.RecursiveReadOnlySupported(),
				UserNamespaces:          s.opts.UserNamespaces,
			},
		}},
		Features: &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true},
	}
	if req.GetVerbose() {
		b, err := json.Marshal(s.opts.VerboseConfig)
		if err != nil {
			return nil, fmt.Errorf("encoding config: %w", err)
		}
		resp.Info = map[string]string{"config": string(b)}
	}
	return resp, nil
}

package cri

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/slipway-dev/slipway/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PodSandboxStatus reports a pod's state, IPs, namespaces, labels and
// annotations; verbose adds its record as JSON under "info".
func (s *Server) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, fmt.Errorf("pod_sandbox_id is required: %w", errdefs.ErrInvalidArgument)
	}
	p, err := s.opts.Pods.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: podStatus(p)}
	if req.GetVerbose() {
		info, err := json.Marshal(struct {
			pod.Sandbox
			Name string `json:"name"`
		}{p, p.Name()})
		if err != nil {
			return nil, fmt.Errorf("encoding pod info: %w", err)
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

func podStatus(p pod.Sandbox) *runtimeapi.PodSandboxStatus {
	status := &runtimeapi.PodSandboxStatus{
		Id:             p.ID,
		Metadata:       p.Config.GetMetadata(),
		State:          p.State,
		CreatedAt:      p.CreatedAt.UnixNano(),
		Labels:         p.Config.GetLabels(),
		Annotations:    p.Config.GetAnnotations(),
		RuntimeHandler: p.RuntimeHandler,
		Linux: &runtimeapi.LinuxPodSandboxStatus{
			Namespaces: &runtimeapi.Namespace{Options: namespaceOptions(p.Config)},
		},
	}
	if len(p.IPs) > 0 && p.State == runtimeapi.PodSandboxState_SANDBOX_READY {
		status.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: p.IPs[0]}
		for _, ip := range p.IPs[1:] {
			status.Network.AdditionalIps = append(status.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	return status
}

// namespaceOptions are the pod's namespace modes, defaulted as kubelet does.
func namespaceOptions(c *runtimeapi.PodSandboxConfig) *runtimeapi.NamespaceOption {
	ns := c.GetLinux().GetSecurityContext().GetNamespaceOptions()
	return &runtimeapi.NamespaceOption{
		Network: ns.GetNetwork(), Pid: ns.GetPid(), Ipc: ns.GetIpc(), TargetId: ns.GetTargetId(),
		UsernsOptions: ns.GetUsernsOptions(),
	}
}

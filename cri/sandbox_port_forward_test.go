package cri

import (
	"context"
	"testing"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestPortForwardRequests(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		req   *runtimeapi.PortForwardRequest
		check func(error) bool
	}{
		{"by prefix", &runtimeapi.PortForwardRequest{PodSandboxId: "cccc", Port: []int32{80}}, nil},
		{"no id", &runtimeapi.PortForwardRequest{}, errdefs.IsInvalidArgument},
		{"bad port", &runtimeapi.PortForwardRequest{PodSandboxId: readyPod, Port: []int32{70000}}, errdefs.IsInvalidArgument},
		{"missing", &runtimeapi.PortForwardRequest{PodSandboxId: "ffff"}, errdefs.IsNotFound},
		{"not ready", &runtimeapi.PortForwardRequest{PodSandboxId: stopped}, errdefs.IsFailedPrecondition},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := &recordingStreams{}
			_, err := streamingServer(rec).PortForward(ctx, c.req)
			if c.check == nil {
				if err != nil || rec.pf.GetPodSandboxId() != readyPod {
					t.Errorf("PortForward = %v, streaming server got %q", err, rec.pf.GetPodSandboxId())
				}
				return
			}
			if !c.check(err) {
				t.Errorf("PortForward = %v", err)
			}
		})
	}
}

package cri

import (
	"context"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/pod"
)

// recordingStreams is a StreamServer that records the requests it gets.
type recordingStreams struct {
	exec   *runtimeapi.ExecRequest
	attach *runtimeapi.AttachRequest
	pf     *runtimeapi.PortForwardRequest
}

func (r *recordingStreams) GetExec(req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	r.exec = req
	return &runtimeapi.ExecResponse{Url: "http://127.0.0.1:1/exec/t"}, nil
}

func (r *recordingStreams) GetAttach(req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	r.attach = req
	return &runtimeapi.AttachResponse{Url: "http://127.0.0.1:1/attach/t"}, nil
}

func (r *recordingStreams) GetPortForward(req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	r.pf = req
	return &runtimeapi.PortForwardResponse{Url: "http://127.0.0.1:1/portforward/t"}, nil
}

const (
	runningID = "aaaa1111"
	exitedID  = "bbbb2222"
	readyPod  = "cccc3333"
	stopped   = "dddd4444"
)

// streamingServer is a Server with a running and an exited container and
// a ready and a stopped pod.
func streamingServer(streams StreamServer) *Server {
	containers := container.NewStore(nil)
	containers.Put(runningID, container.Container{ID: runningID, State: runtimeapi.ContainerState_CONTAINER_RUNNING})
	containers.Put(exitedID, container.Container{ID: exitedID, State: runtimeapi.ContainerState_CONTAINER_EXITED})
	pods := pod.NewStore(nil)
	pods.Put(readyPod, pod.Sandbox{ID: readyPod, State: runtimeapi.PodSandboxState_SANDBOX_READY})
	pods.Put(stopped, pod.Sandbox{ID: stopped, State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY})
	return &Server{opts: Options{ContainerStore: containers, Pods: pods, Streaming: streams}}
}

func TestExecAndAttachRequests(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name, id string
		cmd      []string
		nilSrv   bool
		want     func(error) bool
		errHas   string
	}{
		{name: "by prefix", id: "aaaa", cmd: []string{"sh"}},
		{name: "no id", cmd: []string{"sh"}, want: errdefs.IsInvalidArgument, errHas: "container_id"},
		{name: "missing", id: "ffff", cmd: []string{"sh"}, want: errdefs.IsNotFound},
		{name: "not running", id: exitedID, cmd: []string{"sh"}, want: errdefs.IsFailedPrecondition, errHas: "not running"},
		{name: "no streaming server", id: runningID, cmd: []string{"sh"}, nilSrv: true, want: errdefs.IsNotImplemented},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := &recordingStreams{}
			var streams StreamServer = rec
			if c.nilSrv {
				streams = nil
			}
			s := streamingServer(streams)
			_, execErr := s.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: c.id, Cmd: c.cmd, Stdout: true})
			_, attachErr := s.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: c.id, Stdout: true})
			for call, err := range map[string]error{"Exec": execErr, "Attach": attachErr} {
				if c.want == nil {
					if err != nil {
						t.Errorf("%s: %v", call, err)
					}
					continue
				}
				if !c.want(err) || !strings.Contains(errString(err), c.errHas) {
					t.Errorf("%s = %v", call, err)
				}
			}
			if c.want == nil && (rec.exec.GetContainerId() != runningID || rec.attach.GetContainerId() != runningID) {
				t.Errorf("the streaming server got %q and %q, want the full ID", rec.exec.GetContainerId(), rec.attach.GetContainerId())
			}
		})
	}
	if _, err := streamingServer(&recordingStreams{}).Exec(ctx, &runtimeapi.ExecRequest{ContainerId: runningID}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Exec without cmd = %v, want InvalidArgument", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

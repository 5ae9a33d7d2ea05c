package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// listing answers ListContainers with n containers.
type listing struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	n int
}

func (l listing) ListContainers(context.Context, *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	resp := &runtimeapi.ListContainersResponse{}
	for i := range l.n {
		resp.Containers = append(resp.Containers, &runtimeapi.Container{Id: fmt.Sprintf("%064x", i), Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"}})
	}
	return resp, nil
}

// TestRawCallLeavesTheResponseUndecoded calls a real gRPC server through
// the undecoded path: the call succeeds and reports the whole response.
func TestRawCallLeavesTheResponseUndecoded(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "cri.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, listing{n: 300})
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()
	conn, err := dialRaw("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	size, err := rawCall(context.Background(), conn, "ListContainers", &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := listing{n: 300}.ListContainers(context.Background(), nil)
	if size != proto.Size(want) {
		t.Errorf("raw response of %d bytes, want %d", size, proto.Size(want))
	}
	if _, err := rawCall(context.Background(), conn, "ListPodSandbox", &runtimeapi.ListPodSandboxRequest{}); err == nil {
		t.Error("an unimplemented method answered")
	}
}

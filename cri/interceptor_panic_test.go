package cri

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeStream is a server stream with a background context.
type fakeStream struct{ grpc.ServerStream }

func (fakeStream) Context() context.Context     { return context.Background() }
func (fakeStream) SetHeader(metadata.MD) error  { return nil }
func (fakeStream) SendHeader(metadata.MD) error { return nil }
func (fakeStream) SetTrailer(metadata.MD)       {}

func TestInterceptorsRecoverPanics(t *testing.T) {
	var nilSpec *struct{ Process *struct{ Args []string } }
	for _, tc := range []struct {
		name  string
		panic func()
	}{
		{"nil dereference", func() { _ = nilSpec.Process.Args }},
		{"index out of range", func() { _ = []int{}[len(t.Name())] }},
		{"value", func() { panic("boom") }},
		{"error", func() { panic(context.Canceled) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unary := &grpc.UnaryServerInfo{FullMethod: "/runtime.v1.RuntimeService/ExecSync"}
			resp, err := interceptor{}.unary(context.Background(), nil, unary, func(context.Context, any) (any, error) {
				tc.panic()
				return &runtimeapi.ExecSyncResponse{}, nil
			})
			if resp != nil || status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "ExecSync") {
				t.Errorf("unary: %v, %v; want Internal naming ExecSync", resp, err)
			}
			stream := &grpc.StreamServerInfo{FullMethod: "/runtime.v1.RuntimeService/GetContainerEvents"}
			err = interceptor{}.stream(nil, fakeStream{}, stream, func(any, grpc.ServerStream) error {
				tc.panic()
				return nil
			})
			if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "GetContainerEvents") {
				t.Errorf("stream: %v; want Internal naming GetContainerEvents", err)
			}
		})
	}
}

// A real gRPC server keeps serving after a handler panics.
func TestGRPCServerSurvivesPanic(t *testing.T) {
	s := streamingServer(nil)
	s.opts.Pods = nil // PodSandboxStatus dereferences the pod store: a panic
	client, stop := serveForTest(t, s)
	defer stop()
	ctx := context.Background()
	_, err := client.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: "x"})
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "PodSandboxStatus") {
		t.Fatalf("PodSandboxStatus = %v; want Internal naming it", err)
	}
	if _, err := client.Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("Version after the panic: %v", err)
	}
}

// serveForTest serves s through NewGRPCServer on a unix socket and returns
// a client of it.
func serveForTest(t *testing.T, s *Server) (runtimeapi.RuntimeServiceClient, func()) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "cri.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	g := NewGRPCServer(s)
	go func() { _ = g.Serve(l) }()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		g.Stop()
		t.Fatal(err)
	}
	return runtimeapi.NewRuntimeServiceClient(conn), func() {
		conn.Close()
		g.Stop()
	}
}

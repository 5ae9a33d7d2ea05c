// Package cri serves the Kubernetes Container Runtime Interface (v1) over
// gRPC. It translates CRI messages to calls on the runtime packages and owns
// no containerd calls of its own.
package cri

import (
	"context"

	"github.com/slipway-dev/slipway/cni"
	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/images"
	"github.com/slipway-dev/slipway/runtime/names"
	"github.com/slipway-dev/slipway/runtime/pod"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ImageService is the node's image store as the CRI uses it.
type ImageService interface {
	// Pull fetches ref and returns the image it resolved to.
	Pull(ctx context.Context, ref string, creds images.Credentials) (images.Image, error)
	// Get finds an image by ID, tag or digest; errdefs.ErrNotFound if absent.
	Get(ref string) (images.Image, error)
	// List returns all images.
	List() []images.Image
	// Remove deletes every reference of an image; absent is not an error.
	Remove(ctx context.Context, ref string) error
	// Usage is the snapshotter's disk usage.
	Usage(ctx context.Context) (images.Usage, error)
}

// RuntimeHealth reports whether the container runtime (containerd) answers.
type RuntimeHealth interface {
	Ping(ctx context.Context) error
}

// PodNetwork is the node's pod network (package cni).
type PodNetwork interface {
	// Status is nil when pods can be networked, else why not.
	Status() error
	Setup(ctx context.Context, p cni.Pod) (*cni.Result, error)
	// Teardown is idempotent.
	Teardown(ctx context.Context, p cni.Pod) error
}

// InfraRunner runs the process that holds a pod's shared PID namespace.
type InfraRunner interface {
	Start(ctx context.Context, p pod.Sandbox, cgroupsPath string) error
	// Stop and Remove succeed when there is nothing to stop or remove.
	Stop(ctx context.Context, id string) error
	Remove(ctx context.Context, id string) error
	// Pid is the running infra process's pid.
	Pid(ctx context.Context, id string) (uint32, error)
	// Image is the sandbox image every pod's infra runs from; "" means
	// slipway's own infra binary, run only for a shared PID namespace.
	Image() string
}

// LogReopener makes a running container's logger reopen its log file.
type LogReopener interface {
	Reopen(ctx context.Context, c container.Container) error
}

// Options configure a Server. All interfaces are required.
type Options struct {
	Images  ImageService
	Health  RuntimeHealth
	Network PodNetwork
	Infra   InfraRunner
	// Pods is the loaded pod store.
	Pods *pod.Store
	// PodRootDir holds each pod's persistent files (ROOT/pods).
	PodRootDir string
	// PodStateDir holds each pod's namespace pins and shm (STATE/pods).
	PodStateDir string
	// Containers runs containers; ContainerStore is its loaded store.
	Containers     *container.Runtime
	ContainerStore *container.Store
	// ContainerEvents feeds GetContainerEvents.
	ContainerEvents *container.Events
	Logs            LogReopener
	// SeccompRoot resolves relative Localhost seccomp profile paths.
	SeccompRoot string
	// CgroupDriver is "cgroupfs" or "systemd".
	CgroupDriver string
	// RuntimeVersion is slipway's version, reported by Version.
	RuntimeVersion string
	// VerboseConfig is reported by a verbose Status call (JSON-encodable).
	VerboseConfig any
	// Streaming hands out the URLs of exec, attach and port-forward
	// sessions; nil makes those calls Unimplemented.
	Streaming StreamServer
}

// Server implements the CRI RuntimeService and ImageService. RuntimeService
// calls that are not built yet answer codes.Unimplemented.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	opts Options
	// podNames binds pod names to sandbox IDs.
	podNames *names.Registry
	// containerNames binds container names to container IDs.
	containerNames *names.Registry
}

var (
	_ runtimeapi.RuntimeServiceServer = (*Server)(nil)
	_ runtimeapi.ImageServiceServer   = (*Server)(nil)
)

// NewServer returns a Server over opts, with the names of the pods already
// in opts.Pods bound.
func NewServer(opts Options) *Server {
	s := &Server{opts: opts, podNames: names.New(), containerNames: names.New()}
	if opts.Pods == nil {
		return s
	}
	for _, p := range opts.Pods.List() {
		s.podNames.Bind(p.Name(), p.ID)
		if opts.ContainerStore == nil {
			continue
		}
		for _, c := range opts.ContainerStore.InPod(p.ID) {
			s.containerNames.Bind(container.Name(p.Config.GetMetadata(), c.Config.GetMetadata()), c.ID)
		}
	}
	return s
}

// NewGRPCServer returns a gRPC server with the CRI services registered and
// the error-translating, logging interceptors installed.
func NewGRPCServer(s *Server) *grpc.Server {
	g := grpc.NewServer(
		grpc.ChainUnaryInterceptor(unaryInterceptor),
		grpc.ChainStreamInterceptor(streamInterceptor),
	)
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	runtimeapi.RegisterImageServiceServer(g, s)
	return g
}

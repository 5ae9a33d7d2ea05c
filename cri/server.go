// Package cri serves the Kubernetes Container Runtime Interface (v1) over
// gRPC. It translates CRI messages to calls on the runtime packages and owns
// no containerd calls of its own.
package cri

import (
	"context"

	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/images"
	"github.com/slipway-dev/slipway/runtime/metrics"
	"github.com/slipway-dev/slipway/runtime/pod"
	"github.com/slipway-dev/slipway/runtime/spec"
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

// NetworkStatus reports whether pods can be networked (package cni).
type NetworkStatus interface {
	// Status is nil when pods can be networked, else why not.
	Status() error
}

// PodRuntime runs pod sandboxes (package pod's Runtime): it owns their
// locks, names and records.
type PodRuntime interface {
	Run(ctx context.Context, config *runtimeapi.PodSandboxConfig, runtimeHandler string) (string, error)
	// Stop and Remove succeed on a missing pod.
	Stop(ctx context.Context, id string) error
	Remove(ctx context.Context, id string) error
	// WhileReady runs fn while the pod is ready and cannot be stopped.
	WhileReady(id string, fn func(pod.Sandbox) error) error
	// InfraPid is the pid of the pod's infra process.
	InfraPid(ctx context.Context, id string) (uint32, error)
	// UpdateResources takes a pod's resize to NRI plugins.
	UpdateResources(ctx context.Context, id string, overhead, resources *runtimeapi.LinuxContainerResources) error
}

var _ PodRuntime = (*pod.Runtime)(nil)

// FilesystemCapacity reports the size of the filesystem that holds
// container layers (package images' Service).
type FilesystemCapacity interface {
	Capacity(ctx context.Context) (images.Capacity, error)
}

var _ FilesystemCapacity = (*images.Service)(nil)

// LogReopener makes a running container's logger reopen its log file.
type LogReopener interface {
	Reopen(ctx context.Context, c container.Container) error
}

// Options configure a Server. All interfaces are required.
type Options struct {
	Images  ImageService
	Health  RuntimeHealth
	Network NetworkStatus
	// PodRuntime runs pods; Pods is its loaded store, for reads.
	PodRuntime PodRuntime
	Pods       *pod.Store
	// Containers runs containers; ContainerStore is its loaded store.
	Containers     *container.Runtime
	ContainerStore *container.Store
	// ContainerEvents feeds GetContainerEvents.
	ContainerEvents *container.Events
	Logs            LogReopener
	// FsCapacity sizes the container filesystem for ListPodSandboxMetrics;
	// nil leaves the container_fs_* metrics out.
	FsCapacity FilesystemCapacity
	// SeccompRoot resolves relative Localhost seccomp profile paths.
	SeccompRoot string
	// CDI resolves CDI devices; nil disables CDI (a container asking for
	// a device then fails).
	CDI spec.CDIRegistry
	// CgroupDriver is "cgroupfs" or "systemd".
	CgroupDriver string
	// RuntimeVersion is slipway's version, reported by Version.
	RuntimeVersion string
	// UserNamespaces says pods may have user namespaces (the runtime
	// handler's user_namespaces feature; container.UserNamespacesSupported).
	UserNamespaces bool
	// VerboseConfig is reported by a verbose Status call (JSON-encodable).
	VerboseConfig any
	// Streaming hands out the URLs of exec, attach and port-forward
	// sessions; nil makes those calls Unimplemented.
	Streaming StreamServer
	// Metrics records every call's latency and code, and pod start-ups;
	// nil records nothing.
	Metrics *metrics.Metrics
}

// Server implements the CRI RuntimeService and ImageService. RuntimeService
// calls that are not built yet answer codes.Unimplemented.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	opts Options
	// userFiles keeps images' user files for CreateContainer.
	userFiles *spec.UserFiles
	// layers remembers writable-layer usage for ListContainerStats.
	layers layerUsages
	// listedContainers and listedPods keep ListContainers' and
	// ListPodSandbox's encoding of each record.
	listedContainers listEncodings[container.Container]
	listedPods       listEncodings[pod.Sandbox]
}

var (
	_ runtimeapi.RuntimeServiceServer = (*Server)(nil)
	_ runtimeapi.ImageServiceServer   = (*Server)(nil)
)

// NewServer returns a Server over opts.
func NewServer(opts Options) *Server { return &Server{opts: opts, userFiles: spec.NewUserFiles()} }

// NewGRPCServer returns a gRPC server with the CRI services registered and
// the error-translating, logging interceptors installed.
func NewGRPCServer(s *Server) *grpc.Server {
	i := interceptor{metrics: s.opts.Metrics}
	g := grpc.NewServer(
		grpc.ChainUnaryInterceptor(i.unary),
		grpc.ChainStreamInterceptor(i.stream),
	)
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	runtimeapi.RegisterImageServiceServer(g, s)
	return g
}

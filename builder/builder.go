package builder

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/log"
	"github.com/moby/buildkit/control"
	"github.com/moby/buildkit/util/apicaps"
	"github.com/moby/buildkit/util/grpcerrors"
	_ "github.com/moby/buildkit/util/grpcutil/encoding/proto" // BuildKit's wire codec, as buildkitd registers it
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"
)

// lockName is the file in Root that an active Builder holds locked.
const lockName = "builder.lock"

// Builder is an embedded BuildKit: a controller with one containerd worker,
// served over BuildKit's control API on the listeners handed to Serve.
// Close stops it; a Builder is not reusable after Close.
type Builder struct {
	server     *grpc.Server
	controller *control.Controller
	lock       *os.File
	// tracer records build traces for the history; shut down by Close.
	tracer *sdktrace.TracerProvider
	// stopping is closed by Close so that BuildKit's background work
	// (history, GC) winds down.
	stopping  chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// New starts BuildKit on o.Address. It locks o.Root (a second Builder on
// the same Root fails), opens the cache and history databases there, and
// connects the worker to containerd. Call Serve to accept clients and Close
// to release everything.
func New(ctx context.Context, o Options) (_ *Builder, retErr error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	apicaps.ExportedProduct = "buildkit"
	setBuildkitVersion()
	if err := os.MkdirAll(o.Root, 0o700); err != nil {
		return nil, fmt.Errorf("creating builder root: %w", err)
	}
	lock, err := lockRoot(o.Root)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			unlockRoot(lock)
		}
	}()
	statsHandler, traces, tracer := buildTracing()
	defer func() {
		if retErr != nil {
			_ = tracer.Shutdown(context.Background())
		}
	}()
	b := &Builder{lock: lock, tracer: tracer, stopping: make(chan struct{})}
	b.controller, err = newController(ctx, o, traces, b.stopping)
	if err != nil {
		return nil, err
	}
	b.server = grpc.NewServer(
		statsHandler,
		grpc.ChainUnaryInterceptor(logErrors, grpcerrors.UnaryServerInterceptor),
		grpc.StreamInterceptor(grpcerrors.StreamServerInterceptor),
		grpc.MaxRecvMsgSize(defaults.DefaultMaxRecvMsgSize),
		grpc.MaxSendMsgSize(defaults.DefaultMaxSendMsgSize),
	)
	healthv1.RegisterHealthServer(b.server, health.NewServer())
	b.controller.Register(b.server)
	log.G(ctx).WithField("root", o.Root).WithField("namespace", o.Namespace).
		WithField("snapshotter", o.Snapshotter).Info("builder ready")
	return b, nil
}

// Serve accepts BuildKit clients on l until Close; it may be called for
// several listeners at once. It returns nil after Close.
func (b *Builder) Serve(l net.Listener) error {
	err := b.server.Serve(l)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Close stops serving: running builds get up to timeout to finish, then
// their streams are cut. It then closes the databases and the worker and
// releases Root. Close is idempotent.
func (b *Builder) Close(timeout time.Duration) error {
	b.closeOnce.Do(func() {
		stopped := make(chan struct{})
		go func() { b.server.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(timeout):
			b.server.Stop()
			<-stopped
		}
		close(b.stopping)
		b.closeErr = b.controller.Close()
		_ = b.tracer.Shutdown(context.Background())
		unlockRoot(b.lock)
	})
	return b.closeErr
}

// lockRoot takes an exclusive, non-blocking lock on root's lock file.
func lockRoot(root string) (*os.File, error) {
	path := filepath.Join(root, lockName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening builder lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("builder root %s is in use by another builder", root)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return f, nil
}

func unlockRoot(f *os.File) {
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	_ = f.Close()
}

// logErrors logs failed control API calls at debug level; the client sees
// the error itself.
func logErrors(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		log.G(ctx).WithError(err).WithField("method", info.FullMethod).Debug("builder call failed")
	}
	return resp, err
}

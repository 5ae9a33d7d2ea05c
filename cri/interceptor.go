package cri

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slipway-dev/slipway/runtime/metrics"
)

// interceptor is the one place every CRI call passes through: it logs
// each call with its duration, records its latency and gRPC code in
// metrics (nil records nothing), and translates the handler's errdefs
// error to a gRPC status, once, for all RPCs. A handler that panics fails
// its call with codes.Internal naming the method; the stack is logged and
// the daemon keeps serving.
type interceptor struct {
	metrics *metrics.Metrics
}

// unary intercepts unary calls.
func (i interceptor) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	method := methodName(info.FullMethod)
	ctx = log.WithLogger(ctx, log.G(ctx).WithField("rpc", method))
	start := time.Now()
	level := logLevelFor(method)
	// kubelet's polling logs at Debug, usually off: no entry is built
	// for a line that is not written.
	logged := log.G(ctx).Logger.IsLevelEnabled(level)
	if logged {
		log.G(ctx).Log(level, "call")
	}
	resp, err := recoverUnary(ctx, method, req, handler)
	err = toStatus(err)
	took := time.Since(start)
	i.metrics.ObserveRPC(method, status.Code(err).String(), took)
	if err != nil {
		log.G(ctx).WithField("duration", took).WithError(err).Log(errorLevel(err, level), "failed")
		return nil, err
	}
	if logged {
		log.G(ctx).WithField("duration", took).Log(level, "done")
	}
	return resp, nil
}

// stream does for streaming calls what unary does, panic recovery
// included; a stream's duration is its whole life.
func (i interceptor) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	start := time.Now()
	log.G(ctx).WithField("rpc", info.FullMethod).Info("stream opened")
	err := toStatus(recoverStream(ctx, info.FullMethod, srv, ss, handler))
	took := time.Since(start)
	i.metrics.ObserveRPC(methodName(info.FullMethod), status.Code(err).String(), took)
	entry := log.G(ctx).WithField("rpc", info.FullMethod).WithField("duration", took)
	if err != nil {
		entry.WithError(err).Warn("stream failed")
		return err
	}
	entry.Info("stream closed")
	return nil
}

// methodName is the bare RPC name of a full gRPC method name:
// "/runtime.v1.RuntimeService/RunPodSandbox" is "RunPodSandbox".
func methodName(fullMethod string) string {
	return fullMethod[strings.LastIndex(fullMethod, "/")+1:]
}

// recoverUnary calls handler and turns a panic in it into an Internal
// error naming method.
func recoverUnary(ctx context.Context, method string, req any, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, panicked(ctx, method, r)
		}
	}()
	return handler(ctx, req)
}

// recoverStream is recoverUnary for a streaming handler.
func recoverStream(ctx context.Context, method string, srv any, ss grpc.ServerStream, handler grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = panicked(ctx, method, r)
		}
	}()
	return handler(srv, ss)
}

// panicked logs a recovered panic with its stack and returns the Internal
// status the caller gets, naming the method and the panic.
func panicked(ctx context.Context, method string, r any) error {
	log.G(ctx).WithField("panic", fmt.Sprint(r)).WithField("stack", string(debug.Stack())).Error("handler panicked")
	return status.Errorf(codes.Internal, "%s panicked: %v (stack in slipwayd's log)", method, r)
}

// toStatus maps an errdefs (or context) error to its gRPC status; an error
// that already is a status, and nil, pass unchanged.
func toStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errdefs.IsUnauthorized(err):
		return status.Error(codes.Unauthenticated, err.Error())
	}
	return errgrpc.ToGRPC(err)
}

// logLevelFor keeps kubelet's constant polling (List*, *Status, stats,
// Version, ImageFsInfo) at Debug; every call that changes state logs at Info.
func logLevelFor(method string) log.Level {
	for _, prefix := range []string{"List", "Version", "ImageFsInfo", "Status", "RuntimeConfig"} {
		if strings.HasPrefix(method, prefix) {
			return log.DebugLevel
		}
	}
	for _, suffix := range []string{"Status", "Stats"} {
		if strings.HasSuffix(method, suffix) {
			return log.DebugLevel
		}
	}
	return log.InfoLevel
}

// errorLevel logs caller mistakes (bad input, missing objects) at the call's
// level and everything else as a warning.
func errorLevel(err error, level log.Level) log.Level {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.Unimplemented:
		return level
	}
	return log.WarnLevel
}

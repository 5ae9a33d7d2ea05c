package cri

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// unaryInterceptor logs every call with its duration and translates the
// handler's errdefs error to a gRPC status, once, for all RPCs.
func unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	ctx = log.WithLogger(ctx, log.G(ctx).WithField("rpc", method))
	start := time.Now()
	level := logLevelFor(method)
	log.G(ctx).Log(level, "call")
	resp, err := handler(ctx, req)
	entry := log.G(ctx).WithField("duration", time.Since(start))
	if err != nil {
		err = toStatus(err)
		entry.WithError(err).Log(errorLevel(err, level), "failed")
		return nil, err
	}
	entry.Log(level, "done")
	return resp, nil
}

// streamInterceptor does for streaming RPCs what unaryInterceptor does.
func streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	start := time.Now()
	log.G(ctx).WithField("rpc", info.FullMethod).Info("stream opened")
	err := handler(srv, ss)
	entry := log.G(ctx).WithField("rpc", info.FullMethod).WithField("duration", time.Since(start))
	if err != nil {
		err = toStatus(err)
		entry.WithError(err).Warn("stream failed")
		return err
	}
	entry.Info("stream closed")
	return nil
}

// toStatus maps an errdefs (or context) error to its gRPC status; an error
// that already is a status passes unchanged.
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

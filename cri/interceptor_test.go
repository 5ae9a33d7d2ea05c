package cri

import (
	"context"
	"fmt"
	"testing"

	"github.com/containerd/errdefs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestInterceptorTranslatesErrors(t *testing.T) {
	info := &grpc.UnaryServerInfo{FullMethod: "/runtime.v1.ImageService/PullImage"}
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("image.image is required: %w", errdefs.ErrInvalidArgument), codes.InvalidArgument},
		{fmt.Errorf("pulling: %w", errdefs.ErrNotFound), codes.NotFound},
		{fmt.Errorf("pulling: %w", errdefs.ErrUnauthenticated), codes.Unauthenticated},
		{fmt.Errorf("pulling: %w", errdefs.ErrPermissionDenied), codes.PermissionDenied},
		{fmt.Errorf("pulling: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{status.Error(codes.Aborted, "already a status"), codes.Aborted},
		{fmt.Errorf("something broke"), codes.Unknown},
	} {
		_, err := interceptor{}.unary(context.Background(), nil, info, func(context.Context, any) (any, error) {
			return nil, tc.err
		})
		if got := status.Code(err); got != tc.want {
			t.Errorf("%v: code %v, want %v", tc.err, got, tc.want)
		}
		if s, _ := status.FromError(err); s.Message() == "" {
			t.Errorf("%v: empty message", tc.err)
		}
	}
}

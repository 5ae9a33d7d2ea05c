package images

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/containerd/errdefs"
)

// A transfer failure without an errdefs class (a registry refusal reaches
// slipwayd as gRPC Unknown) is classified by replaying the resolve here;
// a classified failure, or one whose resolve succeeds, is kept as it is.
func TestClassifyTransferErrorReplaysTheResolve(t *testing.T) {
	var status atomic.Int32
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code := int(status.Load()); code != http.StatusOK {
			w.WriteHeader(code)
			return
		}
		// A manifest HEAD the resolver accepts.
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("a", 64))
		w.Header().Set("Content-Length", "2")
	}))
	defer reg.Close()
	name := strings.TrimPrefix(reg.URL, "http://") + "/app:1"
	s := &Service{}
	ctx := context.Background()
	unknown := errors.Join(errdefs.ErrUnknown, errors.New("failed to resolve image: authorization failed"))

	for _, tc := range []struct {
		name   string
		status int
		err    error
		is     func(error) bool
		same   bool
	}{
		{"401 is Unauthenticated", http.StatusUnauthorized, unknown, errdefs.IsUnauthorized, false},
		{"403 is PermissionDenied", http.StatusForbidden, unknown, errdefs.IsPermissionDenied, false},
		{"a resolve that succeeds keeps the transfer's error", http.StatusOK, unknown, errdefs.IsUnknown, true},
		{"a classified error is not replayed", http.StatusUnauthorized, errdefs.ErrNotFound, errdefs.IsNotFound, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status.Store(int32(tc.status))
			got := s.classifyTransferError(ctx, name, nil, tc.err)
			if !tc.is(got) {
				t.Errorf("classified %v as %v: wrong class", tc.err, got)
			}
			if tc.same && got != tc.err {
				t.Errorf("classified %v as %v, want it unchanged", tc.err, got)
			}
		})
	}
}

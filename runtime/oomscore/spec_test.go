package oomscore

import (
	"context"
	"testing"

	"github.com/containerd/containerd/v2/pkg/oci"
)

func TestWithClampedSetsTheClampedValue(t *testing.T) {
	for _, v := range []int{-999, 0, 500} {
		s := &oci.Spec{}
		if err := WithClamped(v)(context.Background(), nil, nil, s); err != nil {
			t.Fatal(err)
		}
		if s.Process == nil || s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj != Clamp(v) {
			t.Errorf("WithClamped(%d) set %v, want %d", v, s.Process, Clamp(v))
		}
	}
}

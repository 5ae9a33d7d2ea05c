package oomscore

import (
	"context"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// WithClamped sets a spec's process oom_score_adj to Clamp(v).
func WithClamped(v int) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		adj := Clamp(v)
		s.Process.OOMScoreAdj = &adj
		return nil
	}
}

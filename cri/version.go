package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	// kubeletAPIVersion is the version of the runtime API slipway speaks.
	kubeletAPIVersion = "0.1.0"
	runtimeName       = "slipway"
	runtimeAPIVersion = "v1"
)

// Version reports the runtime's name and versions.
func (s *Server) Version(ctx context.Context, req *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           kubeletAPIVersion,
		RuntimeName:       runtimeName,
		RuntimeVersion:    s.opts.RuntimeVersion,
		RuntimeApiVersion: runtimeAPIVersion,
	}, nil
}

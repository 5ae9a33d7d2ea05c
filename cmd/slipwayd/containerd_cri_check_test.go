package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	introspectionapi "github.com/containerd/containerd/api/services/introspection/v1"
	"github.com/containerd/errdefs"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
)

type fakePlugins struct {
	resp    *introspectionapi.PluginsResponse
	err     error
	filters []string
}

func (f *fakePlugins) Plugins(_ context.Context, filters ...string) (*introspectionapi.PluginsResponse, error) {
	f.filters = filters
	return f.resp, f.err
}

func TestCheckNoContainerdCRI(t *testing.T) {
	loaded := &introspectionapi.Plugin{Type: "io.containerd.grpc.v1", ID: "cri"}
	failed := &introspectionapi.Plugin{Type: "io.containerd.grpc.v1", ID: "cri", InitErr: &rpcstatus.Status{Message: "disabled"}}
	for _, tc := range []struct {
		name      string
		namespace string
		plugins   *fakePlugins
		wantErr   error
	}{
		{"no CRI plugin", "k8s.io", &fakePlugins{resp: &introspectionapi.PluginsResponse{}}, nil},
		{"CRI plugin that failed to load", "k8s.io", &fakePlugins{resp: &introspectionapi.PluginsResponse{Plugins: []*introspectionapi.Plugin{failed}}}, nil},
		{"CRI plugin loaded", "k8s.io", &fakePlugins{resp: &introspectionapi.PluginsResponse{Plugins: []*introspectionapi.Plugin{loaded}}}, errdefs.ErrFailedPrecondition},
		{"CRI plugin loaded, other namespace", "slipway", &fakePlugins{resp: &introspectionapi.PluginsResponse{Plugins: []*introspectionapi.Plugin{loaded}}}, nil},
		{"introspection fails", "k8s.io", &fakePlugins{err: errdefs.ErrUnavailable}, errdefs.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkNoContainerdCRI(context.Background(), tc.plugins, "/run/containerd/containerd.sock", tc.namespace)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), "/run/containerd/containerd.sock") {
				t.Errorf("error does not name the containerd: %v", err)
			}
		})
	}
}

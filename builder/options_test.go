package builder

import (
	"strings"
	"testing"
)

func TestOptionsValidate(t *testing.T) {
	good := Options{Address: "/run/containerd.sock", Namespace: "k8s.io", Root: "/var/lib/slipway/buildkit"}
	for _, tc := range []struct {
		name    string
		edit    func(*Options)
		wantErr string
	}{
		{name: "good", edit: func(*Options) {}},
		{name: "entitlements", edit: func(o *Options) { o.Entitlements = []string{"network.host", "security.insecure"} }},
		{name: "no address", edit: func(o *Options) { o.Address = "" }, wantErr: "containerd address"},
		{name: "no namespace", edit: func(o *Options) { o.Namespace = "" }, wantErr: "namespace"},
		{name: "relative root", edit: func(o *Options) { o.Root = "buildkit" }, wantErr: `root must be an absolute path, got "buildkit"`},
		{name: "snapshotter with slash", edit: func(o *Options) { o.Snapshotter = "a/b" }, wantErr: `snapshotter name "a/b"`},
		{name: "negative parallelism", edit: func(o *Options) { o.MaxParallelism = -1 }, wantErr: "max parallelism"},
		{name: "unknown entitlement", edit: func(o *Options) { o.Entitlements = []string{"device"} }, wantErr: `unknown entitlement "device"`},
		{name: "bad gc size", edit: func(o *Options) { o.GC.ReservedSpace = "1 potato" }, wantErr: "gc reserved space"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.edit(&o)
			err := o.withDefaults().validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	if got := (Options{}).withDefaults().Snapshotter; got != "overlayfs" {
		t.Errorf("default snapshotter = %q, want overlayfs", got)
	}
	if got := (Options{Snapshotter: "native"}).withDefaults().Snapshotter; got != "native" {
		t.Errorf("snapshotter = %q, want native kept", got)
	}
}

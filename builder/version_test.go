package builder

import (
	"runtime/debug"
	"testing"
)

func TestModuleVersion(t *testing.T) {
	info := &debug.BuildInfo{Deps: []*debug.Module{
		{Path: "github.com/other/mod", Version: "v1.0.0"},
		{Path: "github.com/moby/buildkit", Version: "v0.34.2"},
		{Path: "example.com/replaced", Version: "v1.0.0", Replace: &debug.Module{Path: "../fork", Version: "v1.0.1-fork"}},
		{Path: "example.com/local", Version: "v1.0.0", Replace: &debug.Module{Path: "../local"}},
	}}
	for path, want := range map[string]string{
		"github.com/moby/buildkit": "v0.34.2",
		"example.com/replaced":     "v1.0.1-fork",
		"example.com/local":        "v1.0.0",
		"example.com/absent":       "",
	} {
		if got := moduleVersion(info, path); got != want {
			t.Errorf("moduleVersion(%s) = %q, want %q", path, got, want)
		}
	}
}

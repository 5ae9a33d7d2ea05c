package testregistry

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// progsPackage is the import path of the helper programs' parent directory.
const progsPackage = "github.com/slipway-dev/slipway/hack/testimages/progs/"

// programs are the helper programs the images carry, by package name.
var programs = []string{"ipcs", "nnp", "pause", "pgrep", "webserver"}

// buildPrograms compiles the helper programs as static linux/amd64 binaries
// (CGO_ENABLED=0, -trimpath, stripped) into a temporary directory, removed
// before returning, and returns their contents by name. It runs the go
// command found in PATH from the directory of this source file when that
// exists (so any working directory will do), else from the working directory.
func buildPrograms(ctx context.Context) (map[string][]byte, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("compiling helper programs: %w", err)
	}
	out, err := os.MkdirTemp("", "slipway-testimages-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)

	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out + string(filepath.Separator)}
	for _, p := range programs {
		args = append(args, progsPackage+p)
	}
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if _, file, _, ok := runtime.Caller(0); ok {
		if _, err := os.Stat(file); err == nil {
			cmd.Dir = filepath.Dir(file)
		}
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("compiling helper programs: %w: %s", err, b)
	}

	progs := map[string][]byte{}
	for _, p := range programs {
		b, err := os.ReadFile(filepath.Join(out, p))
		if err != nil {
			return nil, err
		}
		progs[p] = b
	}
	return progs, nil
}

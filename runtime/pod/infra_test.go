package pod

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/slipway-dev/slipway/runtime/embedded"
)

// The infra process run through containerd's shim and runc from the
// synthetic rootfs gets infraEnv too (the systemd-driver path).
func TestInfraThroughShimEnvironment(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not found", bin)
		}
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), "slipway-infra-test"), 2*time.Minute)
	defer cancel()
	d, err := embedded.Start(ctx, embedded.Config{Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	client, err := containerd.New(d.Address())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	infra, err := NewInfra(client, buildInfra(t), filepath.Join(dir, "rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	id := "infra-env-test"
	if err := infra.Start(ctx, Sandbox{ID: id}, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := infra.Remove(context.WithoutCancel(ctx), id); err != nil {
			t.Errorf("Remove: %v", err)
		}
	})
	pid, err := infra.Pid(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// The task's start returns once runc has told its init to exec the
	// infra binary, which may not have happened yet: until then environ is
	// runc init's (_LIBCONTAINER_*).
	var environ []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(string(cmdline), infraPath+"\x00") {
			if environ, err = os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("infra process %d still runs %q after 10 s", pid, cmdline)
		}
	}
	got := strings.Split(strings.TrimSuffix(string(environ), "\x00"), "\x00")
	for _, want := range infraEnv {
		if !slices.Contains(got, want) {
			t.Errorf("infra environment %q lacks %q", got, want)
		}
	}
}

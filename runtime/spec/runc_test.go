package spec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/cap"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// busyboxRootfs makes a root filesystem with a copy of the node's static
// busybox and hard links for the applets the tests run, plus the test
// /etc/passwd and /etc/group.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("no busybox on this node")
	}
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup})
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	in, err := os.Open(busybox)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	bin := filepath.Join(root, "bin/busybox")
	out, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "id", "cat", "grep", "touch", "echo"} {
		if err := os.Link(bin, filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestRuncRunsTheSpec makes specs with Opts from critest-like configs and
// runs them with runc: the options must compose into a spec runc accepts,
// and the process must see the user, capabilities, seccomp mode, mounts
// and devices they set. The pod's namespace files are replaced by new
// namespaces and the cgroup is a throwaway one, removed by runc delete.
func TestRuncRunsTheSpec(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runc needs root")
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("no runc on this node")
	}
	script := "id; grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; cat /etc/hostname /data/hello; touch /x; echo done"
	for _, tc := range []struct {
		name   string
		change func(*Input)
		want   []string
	}{
		{
			name: "non-root, ambient NET_BIND_SERVICE, default seccomp, read-only rootfs",
			change: func(in *Input) {
				in.Config.Devices = []*runtimeapi.Device{{HostPath: "/dev/null", ContainerPath: "/dev/mynull", Permissions: "rw"}}
				in.Config.Args = []string{script + "; cat /dev/mynull && echo device-ok"}
			},
			want: []string{
				"uid=1000(app) gid=1000(app) groups=", "1234", "50000(extra)",
				"CapEff:\t0000000000000400", "Seccomp:\t2", "NoNewPrivs:\t1",
				"web\nfrom the host\n", "touch: /x: Read-only file system", "done", "device-ok",
			},
		},
		{
			name: "root with containerd's defaults",
			change: func(in *Input) {
				sc := in.Config.Linux.SecurityContext
				in.Config.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: sc.NamespaceOptions}
				in.Config.Args = []string{script}
			},
			want: []string{"uid=0(root) gid=0(root) groups=0(root),10(wheel)", "CapEff:\t00000000a80425fb", "Seccomp:\t0", "NoNewPrivs:\t0", "done"},
		},
		{
			name: "privileged",
			change: func(in *Input) {
				in.Pod.Config.Linux.SecurityContext.Privileged = true
				in.Config.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{
					Privileged: true, Seccomp: &runtimeapi.SecurityProfile{},
					NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				}
				in.Config.Args = []string{script}
			},
			want: []string{"uid=0(root)", "CapEff:\t" + capMask(t, DetectHost().Capabilities), "Seccomp:\t0", "done"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := critestInput(t)
			in.ID = fmt.Sprintf("slipway-spec-test-%d-%d", os.Getpid(), time.Now().UnixNano())
			in.Pod.Config.Linux.CgroupParent = ""
			rootfs := busyboxRootfs(t)
			in.RootfsMounts = []mount.Mount{{Type: "bind", Source: rootfs, Options: []string{"rbind", "ro"}}}
			tc.change(&in)
			opts, err := Opts(in)
			if err != nil {
				t.Fatal(err)
			}
			s := newSpec(t)
			if err := apply(s, opts...); err != nil {
				t.Fatal(err)
			}
			s.Root.Path = rootfs
			s.Linux.CgroupsPath = "/" + in.ID
			for i := range s.Linux.Namespaces {
				s.Linux.Namespaces[i].Path = ""
			}

			bundle, state := t.TempDir(), t.TempDir()
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			t.Cleanup(func() {
				if out, err := exec.Command(runc, "--root", state, "delete", "--force", in.ID).CombinedOutput(); err != nil &&
					!strings.Contains(string(out), "does not exist") {
					t.Errorf("runc delete: %v: %s", err, out)
				}
			})
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, runc, "--root", state, "run", "--bundle", bundle, in.ID)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			out := stdout.String() + stderr.String()
			t.Logf("runc run: %v\n%s", err, out)
			if err != nil && !strings.Contains(out, "done") {
				t.Fatalf("runc run: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
		})
	}
}

// capMask is /proc/PID/status's hex mask of caps.
func capMask(t *testing.T, caps []string) string {
	var mask uint64
	for _, c := range caps {
		n := capNumber(c)
		if n < 0 {
			t.Fatalf("unknown capability %s", c)
		}
		mask |= 1 << n
	}
	return fmt.Sprintf("%016x", mask)
}

// capNumber is a capability's bit: cap.Known lists them in kernel order.
func capNumber(c string) int { return slices.Index(cap.Known(), c) }

package main

// End to end against a real containerd 2.4.2, runc and the runc v2 shim, as
// root: a busybox container whose task uses the logger URI. The test owns a
// temp root/state for containerd (started and stopped through
// runtime/embedded), its own namespace, and removes the task, container and
// containerd it started.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/slipway-dev/slipway/runtime/embedded"
	"github.com/slipway-dev/slipway/runtime/logs"
)

const (
	e2eContainerd = "/usr/local/bin/containerd"
	e2eNamespace  = "slipway-logger-e2e"
	e2eTicks      = 60
)

func requireContainerd(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, bin := range []string{e2eContainerd, "containerd-shim-runc-v2", "runc", "busybox"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not found", bin)
		}
	}
}

// TestContainerdTaskLogs runs a container whose output is logged by
// slipway-logger under a real shim, rotates its log, stops containerd while
// the container keeps printing (the logs must keep flowing), starts
// containerd again and deletes the task.
func TestContainerdTaskLogs(t *testing.T) {
	requireContainerd(t)
	env := newE2EEnv(t)
	ctx := namespaces.WithNamespace(context.Background(), e2eNamespace)
	client := env.start()

	args := testDirs(t)
	uri, err := logs.LogURI(loggerBinary, args)
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`echo hello; echo oops >&2; i=0; while [ $i -lt %d ]; do echo tick$i; i=$((i+1)); sleep 0.1; done; printf end`, e2eTicks)
	ctr := env.container(ctx, client, "ticks", script)
	task, err := ctr.NewTask(ctx, cio.LogURI(uri))
	if err != nil {
		t.Fatalf("NewTask with %s: %v", uri, err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, args.Path, func(out, errs []string) bool { return has(out, "F hello") && has(errs, "F oops") })
	t.Logf("logger: %s", describeLogger(t, args.PIDFile))

	// Rotation, as kubelet does it.
	rotated := args.Path + ".1"
	if err := os.Rename(args.Path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := logs.Reopen(ctx, args.PIDFile); err != nil {
		t.Fatalf("Reopen: %v", err)
	}

	// containerd goes away; the container's lines keep arriving.
	env.stop()
	before := len(entriesOf(t, args.Path, logs.Stdout))
	waitFor(t, args.Path, func(out, _ []string) bool { return len(out) >= before+3 })
	t.Logf("with containerd stopped, the log grew from %d to at least %d entries", before, before+3)

	client = env.start()
	ctr, err = client.LoadContainer(ctx, ctr.ID())
	if err != nil {
		t.Fatal(err)
	}
	task, err = ctr.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	exitC, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-exitC:
		if st.ExitCode() != 0 {
			t.Fatalf("container exit status %d", st.ExitCode())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("container did not exit")
	}
	if _, err := task.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	// The delete ends the logger, which writes the unterminated "end".
	waitFor(t, args.Path, func(out, _ []string) bool { return has(out, "P end") })
	waitGone(t, args.PIDFile)

	// Every line is in exactly one of the two files, in order.
	old, cur := entriesOf(t, rotated, logs.Stdout), entriesOf(t, args.Path, logs.Stdout)
	want := []string{"F hello"}
	for i := range e2eTicks {
		want = append(want, fmt.Sprintf("F tick%d", i))
	}
	want = append(want, "P end")
	if got := append(old, cur...); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("stdout across %s and the new file:\n got %q\nwant %q", rotated, got, want)
	}
	if errs := entriesOf(t, rotated, logs.Stderr); strings.Join(errs, ",") != "F oops" {
		t.Errorf("stderr = %q", errs)
	}
	t.Logf("rotated file: %d stdout entries, new file: %d", len(old), len(cur))
}

// e2eEnv is the containerd of one test, which the test may stop and
// start again. cleanup, registered before anything is created, deletes the
// test's container (starting containerd again if it is down, so the shim and
// the container go too) and stops containerd.
type e2eEnv struct {
	t      *testing.T
	dir    string
	cfg    embedded.Config
	ids    []string             // containers to delete, in creation order
	rootfs string               // made on first use
	d      *embedded.Containerd // nil while stopped
}

func newE2EEnv(t *testing.T) *e2eEnv {
	dir := t.TempDir()
	e := &e2eEnv{t: t, dir: dir, cfg: embedded.Config{
		Binary: e2eContainerd, Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state"),
	}}
	t.Cleanup(e.cleanup)
	return e
}

// container creates a busybox container running script with a name unique
// to this test process, and registers it for cleanup.
func (e *e2eEnv) container(ctx context.Context, client *containerd.Client, name, script string, opts ...oci.SpecOpts) containerd.Container {
	e.t.Helper()
	if e.rootfs == "" {
		e.rootfs = busyboxRootfs(e.t, e.dir)
	}
	id := fmt.Sprintf("logger-e2e-%s-%d", name, os.Getpid())
	opts = append([]oci.SpecOpts{
		oci.WithRootFSPath(e.rootfs),
		oci.WithProcessArgs("/bin/sh", "-c", script),
		// One level, so runc's delete leaves no parent cgroup behind.
		oci.WithCgroup("/" + id),
	}, opts...)
	ctr, err := client.NewContainer(ctx, id,
		containerd.WithRuntime("io.containerd.runc.v2", nil),
		containerd.WithNewSpec(opts...),
	)
	if err != nil {
		e.t.Fatal(err)
	}
	e.ids = append(e.ids, id)
	return ctr
}

// start starts containerd and returns a client for it.
func (e *e2eEnv) start() *containerd.Client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := embedded.Start(ctx, e.cfg)
	if err != nil {
		e.t.Fatalf("starting containerd: %v\n%s", err, tail(e.cfg.LogPath()))
	}
	e.d = d
	c, err := containerd.New(d.Address())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

func (e *e2eEnv) stop() {
	if e.d != nil {
		e.d.Stop()
		e.d = nil
	}
}

func (e *e2eEnv) cleanup() {
	if e.d == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		d, err := embedded.Start(ctx, e.cfg)
		cancel()
		if err != nil {
			e.t.Logf("cleanup: starting containerd: %v", err)
			return
		}
		e.d = d
	}
	defer e.stop()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), e2eNamespace), 30*time.Second)
	defer cancel()
	c, err := containerd.New(e.d.Address())
	if err != nil {
		e.t.Logf("cleanup: %v", err)
		return
	}
	defer c.Close()
	for _, id := range e.ids {
		ctr, err := c.LoadContainer(ctx, id)
		if err != nil {
			continue // deleted by the test
		}
		if task, err := ctr.Task(ctx, nil); err == nil {
			if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil {
				e.t.Logf("cleanup: task delete: %v", err)
			}
		}
		if err := ctr.Delete(ctx); err != nil {
			e.t.Logf("cleanup: container delete: %v", err)
		}
	}
}

// TestContainerdTaskTTY checks the shim's terminal path in a shim shared
// with another container, as slipway runs a pod: the terminal's output
// arrives on stdout with "\r\n" line ends, the shim never closes the stderr
// pipe and does not signal the logger, and outlives the task; the logger must
// still exit when the task is deleted.
func TestContainerdTaskTTY(t *testing.T) {
	requireContainerd(t)
	env := newE2EEnv(t)
	ctx := namespaces.WithNamespace(context.Background(), e2eNamespace)
	client := env.start()
	group := oci.WithAnnotations(map[string]string{"io.containerd.runc.v2.group": fmt.Sprintf("logger-e2e-%d", os.Getpid())})

	sibling := env.container(ctx, client, "sibling", `sleep 60`, group)
	sibTask, err := sibling.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	if err := sibTask.Start(ctx); err != nil {
		t.Fatal(err)
	}

	args := testDirs(t)
	args.TTY = true
	uri, err := logs.LogURI(loggerBinary, args)
	if err != nil {
		t.Fatal(err)
	}
	ctr := env.container(ctx, client, "tty", `echo one; echo two >&2; printf three`, oci.WithTTY, group)
	task, err := ctr.NewTask(ctx, cio.TerminalLogURI(uri))
	if err != nil {
		t.Fatalf("NewTask with %s: %v", uri, err)
	}
	if shim, sibShim := ppid(t, loggerPID(t, args.PIDFile)), ppid(t, int(sibTask.Pid())); shim != sibShim {
		t.Fatalf("the containers do not share a shim (%d, %d)", shim, sibShim)
	}
	exitC, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exitC:
	case <-time.After(30 * time.Second):
		t.Fatal("container did not exit")
	}
	if _, err := task.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	waitGone(t, args.PIDFile)
	if got := strings.Join(entriesOf(t, args.Path, logs.Stdout), ","); got != "F one,F two,P three" {
		t.Errorf("stdout entries = %q", got)
	}
	if got := entriesOf(t, args.Path, logs.Stderr); len(got) != 0 {
		t.Errorf("stderr entries = %q", got)
	}
}

// TestContainerdTaskFailsWithoutLogger checks that the binary-v2 scheme
// makes the shim refuse to create a task whose logger cannot start.
func TestContainerdTaskFailsWithoutLogger(t *testing.T) {
	requireContainerd(t)
	env := newE2EEnv(t)
	ctx := namespaces.WithNamespace(context.Background(), e2eNamespace)
	client := env.start()

	args := testDirs(t)
	uri, err := logs.LogURI(loggerBinary, args)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Dir(args.Path)); err != nil {
		t.Fatal(err)
	}
	ctr := env.container(ctx, client, "fail", `echo never`)
	task, err := ctr.NewTask(ctx, cio.LogURI(uri))
	if err == nil {
		task.Delete(ctx, containerd.WithProcessKill)
		t.Fatal("NewTask succeeded with a logger that cannot open its log")
	}
	t.Logf("NewTask: %v", err)
	if !strings.Contains(err.Error(), "did not call ready") {
		t.Errorf("NewTask error = %v, want the shim's \"did not call ready\"", err)
	}
}

// busyboxRootfs makes a root filesystem holding a static busybox with hard
// linked applets.
func busyboxRootfs(t *testing.T, dir string) string {
	t.Helper()
	rootfs := filepath.Join(dir, "rootfs")
	bin := filepath.Join(rootfs, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal(err)
	}
	bb := filepath.Join(bin, "busybox")
	if err := os.Link(src, bb); err != nil {
		if err := copyFile(src, bb); err != nil {
			t.Fatal(err)
		}
	}
	for _, applet := range []string{"sh", "sleep", "echo", "printf"} {
		if err := os.Link(bb, filepath.Join(bin, applet)); err != nil {
			t.Fatal(err)
		}
	}
	return rootfs
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// waitFor polls the log at path until ok holds for its stdout and stderr
// entries ("TAG content").
func waitFor(t *testing.T, path string, ok func(stdout, stderr []string) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, errs := entriesOf(t, path, logs.Stdout), entriesOf(t, path, logs.Stderr)
		if ok(out, errs) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: condition not met; stdout %q stderr %q", path, out, errs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func entriesOf(t *testing.T, path string, s logs.Stream) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := logs.ReadEntries(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	for _, e := range entries {
		if e.Stream != s {
			continue
		}
		tag := logs.TagFull
		if e.Partial {
			tag = logs.TagPartial
		}
		out = append(out, tag+" "+string(e.Content))
	}
	return out
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func waitGone(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(path); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still exists: the logger did not exit", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// describeLogger names the logger process and its parent, which must be
// the shim.
func describeLogger(t *testing.T, pidFile string) string {
	t.Helper()
	pid := loggerPID(t, pidFile)
	parent := ppid(t, pid)
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", parent))
	if !strings.HasPrefix(string(comm), "containerd-shim") {
		t.Errorf("logger %d's parent is %q, not the shim", pid, comm)
	}
	var rss string
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			rss = strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:"))
		}
	}
	return fmt.Sprintf("pid %d, parent %d (%s), RSS %s", pid, parent, strings.TrimSpace(string(comm)), rss)
}

func loggerPID(t *testing.T, pidFile string) int {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// ppid is the parent of process pid.
func ppid(t *testing.T, pid int) int {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the ")" that closes the command: state, ppid, ...
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	n, err := strconv.Atoi(fields[1])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

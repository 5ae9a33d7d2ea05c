package container

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	// MaxExecOutput caps each stream of an ExecSync.
	MaxExecOutput = 16 << 20
	// TruncationMarker ends a stream that hit MaxExecOutput.
	TruncationMarker = "\n[slipway: output truncated at 16 MiB]\n"
	// ioGrace is how long ExecSync waits for output after the process
	// exits: a background child that keeps the pipes open must not hang
	// the call (containerd's CRI waits for EOF and does).
	ioGrace = 500 * time.Millisecond
	// execKillWait bounds the SIGKILL of an exec process that must stop
	// (timeout, cancelled call, client gone) and the wait for its exit;
	// past it the call returns and the process is deleted in the
	// background.
	execKillWait = 5 * time.Second
	// execDeleteWait bounds how long an exec call waits for the exec
	// process's deletion, which waits for its IO; a client that stopped
	// reading must not hold the call. Deletion goes on in the background.
	execDeleteWait = 2 * time.Second
	// execDeleteTimeout bounds a deletion in the background, so that a
	// containerd that never answers leaks no goroutine.
	execDeleteTimeout = time.Minute
)

// ExecResult is the outcome of ExecSync.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int32
}

// ExecSync runs cmd in a running container with the container's process
// settings, and returns its output (each stream capped at MaxExecOutput)
// and exit code. With a timeout, the process is killed when it passes, and
// the error wraps context.DeadlineExceeded. The call never waits on
// containerd past its timeout (or ctx) by more than execKillWait: when the
// process cannot be killed, or containerd's connection is lost, it returns
// an error and the process is deleted in the background.
func (r *Runtime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (ExecResult, error) {
	if len(cmd) == 0 {
		return ExecResult{}, fmt.Errorf("cmd is required: %w", errdefs.ErrInvalidArgument)
	}
	task, pspec, err := r.execTarget(ctx, id)
	if err != nil {
		return ExecResult{}, err
	}
	setExecSpec(ctx, pspec, cmd, Streams{}, 0)
	return execRun{task: task, spec: pspec, fifoDir: r.opts.FIFODir, bounds: defaultExecBounds}.sync(ctx, timeout)
}

// execer starts exec processes in a task; containerd.Task is one.
type execer interface {
	Exec(ctx context.Context, id string, spec *specs.Process, ioCreate cio.Creator) (containerd.Process, error)
}

var _ execer = containerd.Task(nil)

// execBounds bound an exec call's waits on containerd.
type execBounds struct {
	// kill bounds killing a process that must stop, and waiting for its exit.
	kill time.Duration
	// delete bounds how long the call waits for the process's deletion.
	delete time.Duration
}

var defaultExecBounds = execBounds{kill: execKillWait, delete: execDeleteWait}

// execRun is one exec process to run: spec (whose Args are the command)
// in task, with its IO FIFOs in fifoDir.
type execRun struct {
	task    execer
	spec    *specs.Process
	fifoDir string
	bounds  execBounds
}

// sync runs the process as ExecSync does.
func (e execRun) sync(ctx context.Context, timeout time.Duration) (ExecResult, error) {
	cmd := e.spec.Args
	stdout, stderr := &cappedBuffer{limit: MaxExecOutput}, &cappedBuffer{limit: MaxExecOutput}
	execIO := cio.NewCreator(cio.WithStreams(nil, stdout, stderr), cio.WithFIFODir(e.fifoDir))
	process, err := e.task.Exec(ctx, newExecID(), e.spec, execIO)
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec %q: %w", cmd, err)
	}
	cleanupCtx := context.WithoutCancel(ctx)
	// Deleting the process waits for its output to close; when a background
	// child still holds the pipes, or the process could not be stopped,
	// that wait must not delay the answer.
	waitDelete := true
	defer func() { deleteExecProcess(cleanupCtx, process, waitDelete, e.bounds.delete) }()
	// The wait ends with the call: a process that never started, or one
	// left to the background deletion, must not leave it behind.
	waitCtx, cancelWait := context.WithCancel(cleanupCtx)
	defer cancelWait()
	exitC, err := process.Wait(waitCtx)
	if err != nil {
		return ExecResult{}, fmt.Errorf("waiting on exec: %w", err)
	}
	if err := process.Start(ctx); err != nil {
		return ExecResult{}, fmt.Errorf("exec %q: %w", cmd, err)
	}
	var deadline <-chan time.Time
	if timeout > 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		deadline = timer.C
	}
	var exit containerd.ExitStatus
	select {
	case exit = <-exitC:
	case <-deadline:
		cause := fmt.Errorf("command %q timed out after %s: %w", cmd, timeout, context.DeadlineExceeded)
		waitDelete, err = stopExec(cleanupCtx, process, exitC, e.bounds.kill, cause)
		return ExecResult{}, err
	case <-ctx.Done():
		waitDelete, err = stopExec(cleanupCtx, process, exitC, e.bounds.kill, ctx.Err())
		return ExecResult{}, err
	}
	waitDelete = waitIO(process.IO(), ioGrace)
	code, _, err := exit.Result()
	if err != nil {
		return ExecResult{}, fmt.Errorf("waiting on exec %q: %w", cmd, nativeErr(err))
	}
	return ExecResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: int32(code)}, nil
}

// stopExec kills a process that must not run on, and waits at most wait
// for its exit on exitC; it never waits longer. It reports whether the
// process stopped, and returns cause, with a note when it could not be
// stopped (the kill failed, or no exit came in time, as when containerd
// is gone).
func stopExec(ctx context.Context, process containerd.Process, exitC <-chan containerd.ExitStatus, wait time.Duration, cause error) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var stopErr error
	if err := process.Kill(ctx, syscall.SIGKILL); err != nil && !errdefs.IsNotFound(err) {
		stopErr = fmt.Errorf("killing it: %w", err)
	} else {
		select {
		case <-exitC:
		case <-ctx.Done():
			stopErr = fmt.Errorf("no exit %s after SIGKILL", wait)
		}
	}
	if stopErr == nil {
		return true, cause
	}
	log.G(ctx).WithError(stopErr).WithField("execid", process.ID()).Warn("exec process may still run; deleting it in the background")
	// The note is text only: the call's class stays cause's (a timeout is
	// DeadlineExceeded whether or not the kill worked).
	return false, fmt.Errorf("%w (exec process %s may still run: %v)", cause, process.ID(), stopErr)
}

// deleteExecProcess deletes an exec process, killing it if it still runs,
// and waits for that at most wait, or not at all when wait is false (its
// output did not end, and the shim's delete waits for the output to
// drain, which a background child holding the pipes delays by 10 s; or
// it could not be stopped). The deletion itself gives up after
// execDeleteTimeout.
func deleteExecProcess(ctx context.Context, process containerd.Process, waitDelete bool, wait time.Duration) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(ctx, execDeleteTimeout)
		defer cancel()
		if _, err := process.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithField("execid", process.ID()).Debug("deleting exec process")
		}
	}()
	if !waitDelete {
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
}

// nativeErr gives a gRPC status error from containerd's API (Process.Wait
// returns them raw) its errdefs class; other errors pass unchanged.
func nativeErr(err error) error {
	if _, ok := status.FromError(err); ok {
		return errgrpc.ToNative(err)
	}
	return err
}

// execTarget returns a running container's task and a copy of its process
// spec, for an exec.
func (r *Runtime) execTarget(ctx context.Context, id string) (containerd.Task, *specs.Process, error) {
	c, err := r.opts.Store.Get(id)
	if err != nil {
		return nil, nil, err
	}
	if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return nil, nil, fmt.Errorf("container %s is not running: %w", id, errdefs.ErrFailedPrecondition)
	}
	cc, err := r.opts.Client.LoadContainer(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	spec, err := cc.Spec(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("reading container spec: %w", err)
	}
	pspec, err := execProcessSpec(id, spec)
	if err != nil {
		return nil, nil, err
	}
	task, err := cc.Task(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("container %s has no running task: %w", id, err)
	}
	return task, pspec, nil
}

// execProcessSpec is a copy of the container's process settings for an
// exec, safe to change (its Env is its own); a spec without a process is
// a FailedPrecondition.
func execProcessSpec(id string, spec *oci.Spec) (*specs.Process, error) {
	if spec == nil || spec.Process == nil {
		return nil, fmt.Errorf("container %s has no process in its spec: %w", id, errdefs.ErrFailedPrecondition)
	}
	pspec := *spec.Process
	pspec.Env = append([]string(nil), spec.Process.Env...)
	return &pspec, nil
}

// waitIO waits for the process's output to reach EOF, at most grace, and
// reports whether it did.
func waitIO(pio cio.IO, grace time.Duration) bool {
	if pio == nil {
		return true
	}
	done := make(chan struct{})
	go func() { pio.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(grace):
		pio.Cancel()
		return false
	}
}

func newExecID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// cappedBuffer keeps the first limit bytes written to it and then the
// truncation marker; it never fails a write, so the process is not blocked.
type cappedBuffer struct {
	mu sync.Mutex
	// buf and truncated are guarded by mu: output may still arrive after
	// ExecSync has read them.
	buf       bytes.Buffer
	limit     int
	truncated bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.limit - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
		if len(p) > room {
			b.truncated = true
		}
	} else if len(p) > 0 {
		b.truncated = true
	}
	return len(p), nil
}

// Bytes is what was kept, with the marker when output was cut.
func (b *cappedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := bytes.Clone(b.buf.Bytes())
	if b.truncated {
		out = append(out, TruncationMarker...)
	}
	return out
}

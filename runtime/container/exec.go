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
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
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
)

// ExecResult is the outcome of ExecSync.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int32
}

// ExecSync runs cmd in a running container with the container's process
// settings, and returns its output (each stream capped at MaxExecOutput)
// and exit code. With a timeout, the process is killed when it passes, and
// the error wraps context.DeadlineExceeded.
func (r *Runtime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (ExecResult, error) {
	c, err := r.opts.Store.Get(id)
	if err != nil {
		return ExecResult{}, err
	}
	if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return ExecResult{}, fmt.Errorf("container %s is not running: %w", id, errdefs.ErrFailedPrecondition)
	}
	cc, err := r.opts.Client.LoadContainer(ctx, id)
	if err != nil {
		return ExecResult{}, err
	}
	spec, err := cc.Spec(ctx)
	if err != nil {
		return ExecResult{}, fmt.Errorf("reading container spec: %w", err)
	}
	task, err := cc.Task(ctx, nil)
	if err != nil {
		return ExecResult{}, fmt.Errorf("container %s has no running task: %w", id, err)
	}
	pspec := *spec.Process
	pspec.Args = cmd
	pspec.Terminal = false

	stdout, stderr := &cappedBuffer{limit: MaxExecOutput}, &cappedBuffer{limit: MaxExecOutput}
	execIO := cio.NewCreator(cio.WithStreams(nil, stdout, stderr), cio.WithFIFODir(r.opts.FIFODir))
	execID := newExecID()
	process, err := task.Exec(ctx, execID, &pspec, execIO)
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec %q: %w", cmd, err)
	}
	cleanupCtx := context.WithoutCancel(ctx)
	// Deleting the process waits for its output to close; when a background
	// child still holds the pipes, that wait must not delay the answer.
	drained := true
	defer func() {
		deleteProcess := func() {
			if _, err := process.Delete(cleanupCtx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
				log.G(ctx).WithError(err).WithField("execid", execID).Debug("deleting exec process")
			}
		}
		if drained {
			deleteProcess()
		} else {
			go deleteProcess()
		}
	}()
	exitC, err := process.Wait(cleanupCtx)
	if err != nil {
		return ExecResult{}, fmt.Errorf("waiting on exec: %w", err)
	}
	if err := process.Start(ctx); err != nil {
		return ExecResult{}, fmt.Errorf("exec %q in container %s: %w", cmd, id, err)
	}
	var deadline <-chan time.Time
	if timeout > 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		deadline = timer.C
	}
	var status containerd.ExitStatus
	select {
	case status = <-exitC:
	case <-deadline:
		_ = process.Kill(cleanupCtx, syscall.SIGKILL)
		<-exitC
		return ExecResult{}, fmt.Errorf("command %q timed out after %s: %w", cmd, timeout, context.DeadlineExceeded)
	case <-ctx.Done():
		_ = process.Kill(cleanupCtx, syscall.SIGKILL)
		<-exitC
		return ExecResult{}, ctx.Err()
	}
	drained = waitIO(process.IO(), ioGrace)
	code, _, err := status.Result()
	if err != nil {
		return ExecResult{}, err
	}
	return ExecResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: int32(code)}, nil
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

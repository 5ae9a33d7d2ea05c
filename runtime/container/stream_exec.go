package container

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	// execDrainIdle is how long Exec keeps delivering output after the
	// process exits while none moves: a background child that keeps the
	// pipes open ends the session after this, while output that still
	// flows to a slow client is delivered whole.
	execDrainIdle = time.Second
	// execDeleteWait bounds how long Exec waits for the exec process's
	// deletion, which waits for its IO; a client that stopped reading
	// must not hold the session open. Deletion finishes in the
	// background once the session's connection closes.
	execDeleteWait = 2 * time.Second
)

// Exec runs cmd in a running container with the container's process
// settings and the client's streams connected, as a CRI Exec session
// does, and returns the exit code once the process has exited and its
// output has been delivered. With s.TTY the process gets a terminal
// (TERM=xterm) that follows s.Resize. When the client's stdin ends, the
// process's stdin is closed. If ctx ends or the client stops taking
// output (a write fails), the process is killed.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, s Streams) (int32, error) {
	if len(cmd) == 0 {
		return 0, fmt.Errorf("cmd is required: %w", errdefs.ErrInvalidArgument)
	}
	task, pspec, err := r.execTarget(ctx, id)
	if err != nil {
		return 0, err
	}
	pspec.Args = cmd
	pspec.CommandLine = ""
	pspec.Terminal = s.TTY
	if s.TTY {
		pspec.Env = setEnv(pspec.Env, "TERM", "xterm")
	}

	cleanupCtx := context.WithoutCancel(ctx)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var clientGone atomic.Bool
	progress := &ioProgress{}
	gone := func() { clientGone.Store(true); cancel() }
	stdout, stderr := progress.writer(s.Stdout, gone), progress.writer(s.Stderr, gone)
	if s.TTY {
		stderr = nil
	}
	started := make(chan struct{})
	var process containerd.Process
	opts := []cio.Opt{cio.WithFIFODir(r.opts.FIFODir)}
	if s.TTY {
		opts = append(opts, cio.WithTerminal)
	}
	if s.Stdin != nil {
		stdin := &stdinCloser{r: s.Stdin, onEnd: func() {
			// The shim opens the process's stdin at Start; closing it
			// before then would be lost.
			select {
			case <-started:
			case <-ctx.Done():
				return
			}
			if err := process.CloseIO(cleanupCtx, containerd.WithStdinCloser); err != nil && !errdefs.IsNotFound(err) {
				log.G(ctx).WithError(err).Debug("closing exec stdin")
			}
		}}
		opts = append(opts, cio.WithStreams(stdin, stdout, stderr))
	} else {
		opts = append(opts, cio.WithStreams(nil, stdout, stderr))
	}

	execID := newExecID()
	process, err = task.Exec(ctx, execID, pspec, cio.NewCreator(opts...))
	if err != nil {
		return 0, fmt.Errorf("exec %q: %w", cmd, err)
	}
	ioDrained := true
	defer func() { deleteExecProcess(cleanupCtx, process, ioDrained) }()
	exitC, err := process.Wait(cleanupCtx)
	if err != nil {
		return 0, fmt.Errorf("waiting on exec: %w", err)
	}
	if err := process.Start(ctx); err != nil {
		return 0, fmt.Errorf("exec %q in container %s: %w", cmd, id, err)
	}
	close(started)
	if s.TTY {
		handleResize(ctx, s.Resize, process.Resize)
	}

	var status containerd.ExitStatus
	select {
	case status = <-exitC:
	case <-ctx.Done():
		_ = process.Kill(cleanupCtx, syscall.SIGKILL)
		<-exitC
		if clientGone.Load() {
			return 0, fmt.Errorf("exec %q: the client stopped reading output: %w", cmd, errdefs.ErrUnavailable)
		}
		return 0, ctx.Err()
	}
	progress.touch()
	ioDrained = drainIO(process.IO(), progress, execDrainIdle)
	code, _, err := status.Result()
	if err != nil {
		return 0, err
	}
	return int32(code), nil
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
	if spec.Process == nil {
		return nil, nil, fmt.Errorf("container %s has no process spec: %w", id, errdefs.ErrFailedPrecondition)
	}
	task, err := cc.Task(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("container %s has no running task: %w", id, err)
	}
	pspec := *spec.Process
	pspec.Env = append([]string(nil), spec.Process.Env...)
	return task, &pspec, nil
}

// drainIO waits for the process's output to reach end of file, and cancels
// it once no output has moved for idle; it reports whether the output
// ended by itself.
func drainIO(pio cio.IO, progress *ioProgress, idle time.Duration) bool {
	if pio == nil {
		return true
	}
	done := make(chan struct{})
	go func() { pio.Wait(); close(done) }()
	tick := time.NewTicker(idle / 4)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return true
		case <-tick.C:
			if progress.idleFor() >= idle {
				pio.Cancel()
				return false
			}
		}
	}
}

// deleteExecProcess deletes an exec process, killing it if it still runs,
// and waits for that at most execDeleteWait, or not at all when its output
// did not end (the shim's delete then waits for the output to drain,
// which a background child holding the pipes delays by 10 s).
func deleteExecProcess(ctx context.Context, process containerd.Process, wait bool) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := process.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithField("execid", process.ID()).Debug("deleting exec process")
		}
	}()
	if !wait {
		return
	}
	select {
	case <-done:
	case <-time.After(execDeleteWait):
	}
}

// setEnv sets key=value in env, replacing an existing value.
func setEnv(env []string, key, value string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}

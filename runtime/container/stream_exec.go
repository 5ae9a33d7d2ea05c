package container

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const (
	// execDrainIdle is how long Exec keeps delivering output after the
	// process exits while none moves: a background child that keeps the
	// pipes open ends the session after this, while output that still
	// flows to a slow client is delivered whole.
	execDrainIdle = time.Second
)

// Exec runs cmd in a running container with the container's process
// settings and the client's streams connected, as a CRI Exec session
// does, and returns the exit code once the process has exited and its
// output has been delivered. With s.TTY the process gets a terminal
// (TERM=xterm) of the client's size: Exec waits for the first size on
// s.Resize (at most firstSizeWait) and starts the process with it, then
// follows the later ones. When the client's stdin ends, the process's
// stdin is closed. If ctx ends or the client stops taking output (a write
// fails), the process is killed; the call then returns within
// execKillWait even when the kill fails or containerd is gone, and the
// process is deleted in the background.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, s Streams) (int32, error) {
	if len(cmd) == 0 {
		return 0, fmt.Errorf("cmd is required: %w", errdefs.ErrInvalidArgument)
	}
	task, pspec, err := r.execTarget(ctx, id)
	if err != nil {
		return 0, err
	}
	setExecSpec(ctx, pspec, cmd, s, firstSizeWait)
	return execRun{task: task, spec: pspec, fifoDir: r.opts.FIFODir, bounds: defaultExecBounds}.stream(ctx, s)
}

// setExecSpec makes pspec, a copy of the container's process settings,
// run cmd with s's kind of IO. With s.TTY the process gets a terminal
// (TERM=xterm) of the first size on s.Resize, waited for at most
// sizeWait: runc sizes the terminal before the process runs, so a shell's
// first look at its size does not race a resize after Start.
func setExecSpec(ctx context.Context, pspec *specs.Process, cmd []string, s Streams, sizeWait time.Duration) {
	pspec.Args = cmd
	pspec.CommandLine = ""
	pspec.Terminal = s.TTY
	if !s.TTY {
		return
	}
	pspec.Env = setEnv(pspec.Env, "TERM", "xterm")
	if size, ok := firstSize(ctx, s.Resize, sizeWait); ok {
		pspec.ConsoleSize = &specs.Box{Width: uint(size.Width), Height: uint(size.Height)}
	}
}

// stream runs the process as Exec does, once its spec is complete.
func (e execRun) stream(ctx context.Context, s Streams) (int32, error) {
	cmd := e.spec.Args
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
	opts := []cio.Opt{cio.WithFIFODir(e.fifoDir)}
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
			closeCtx, cancel := context.WithTimeout(cleanupCtx, e.bounds.kill)
			defer cancel()
			if err := process.CloseIO(closeCtx, containerd.WithStdinCloser); err != nil && !errdefs.IsNotFound(err) {
				log.G(ctx).WithError(err).Debug("closing exec stdin")
			}
		}}
		opts = append(opts, cio.WithStreams(stdin, stdout, stderr))
	} else {
		opts = append(opts, cio.WithStreams(nil, stdout, stderr))
	}

	process, err := e.task.Exec(ctx, newExecID(), e.spec, cio.NewCreator(opts...))
	if err != nil {
		return 0, fmt.Errorf("exec %q: %w", cmd, err)
	}
	waitDelete := true
	defer func() { deleteExecProcess(cleanupCtx, process, waitDelete, e.bounds.delete) }()
	// The wait ends with the call (see execRun.sync).
	waitCtx, cancelWait := context.WithCancel(cleanupCtx)
	defer cancelWait()
	exitC, err := process.Wait(waitCtx)
	if err != nil {
		return 0, fmt.Errorf("waiting on exec: %w", err)
	}
	if err := process.Start(ctx); err != nil {
		return 0, fmt.Errorf("exec %q: %w", cmd, err)
	}
	close(started)
	if s.TTY {
		handleResize(ctx, s.Resize, process.Resize)
	}

	var exit containerd.ExitStatus
	select {
	case exit = <-exitC:
	case <-ctx.Done():
		cause := ctx.Err()
		if clientGone.Load() {
			cause = fmt.Errorf("exec %q: the client stopped reading output: %w", cmd, errdefs.ErrUnavailable)
		}
		waitDelete, err = stopExec(cleanupCtx, process, exitC, e.bounds.kill, cause)
		return 0, err
	}
	progress.touch()
	waitDelete = drainIO(process.IO(), progress, execDrainIdle)
	code, _, err := exit.Result()
	if err != nil {
		return 0, fmt.Errorf("waiting on exec %q: %w", cmd, nativeErr(err))
	}
	return int32(code), nil
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

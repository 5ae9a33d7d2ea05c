package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/slipway-dev/slipway/runtime/logs"
)

// Attach design. A container's main process writes to the pipes of its
// logger (slipway-logger, run by the shim), which outlives slipwayd
// restarts; so the logger, not slipwayd, serves the live output to attach
// clients, on a unix socket per container (logs.ListenAttach). A container
// with stdin gets a FIFO as its task's stdin: the shim reads it for as
// long as the container runs, and each attach opens it for writing. The
// files live in Options.AttachDir, named by the container ID, so slipwayd
// finds them again after a restart without recording anything. (The runc
// shim reads a task's stdin FIFO only with a terminal or with FIFO output,
// so LogIO runs the logger itself on output FIFOs for a container with
// stdin and no terminal: logs.FIFOLogger.)

// AttachPaths are the files through which clients attach to a container.
type AttachPaths struct {
	// Socket is where the container's logger serves its live output; ""
	// when attach is disabled (Options.AttachDir is empty).
	Socket string
	// Stdin is the FIFO the task reads as its stdin; "" when the container
	// has no stdin (or attach is disabled).
	Stdin string
	// Stdout and Stderr are free paths for output FIFOs, set with Stdin:
	// for LogIO when the shim cannot run the logger for such a task
	// (logs.FIFOLogger). They are removed with the others.
	Stdout, Stderr string
}

// attachPaths are c's attach files; they exist only while c runs.
func (r *Runtime) attachPaths(c Container) AttachPaths {
	if r.opts.AttachDir == "" {
		return AttachPaths{}
	}
	base := filepath.Join(r.opts.AttachDir, c.ID)
	p := AttachPaths{Socket: base + ".sock"}
	if c.Config.GetStdin() {
		p.Stdin, p.Stdout, p.Stderr = base+".stdin", base+".stdout", base+".stderr"
	}
	return p
}

// prepareAttach makes the attach directory and c's stdin FIFO, before its
// task is created.
func (r *Runtime) prepareAttach(c Container) (AttachPaths, error) {
	p := r.attachPaths(c)
	if p.Socket == "" {
		return p, nil
	}
	if err := os.MkdirAll(r.opts.AttachDir, 0o700); err != nil {
		return AttachPaths{}, fmt.Errorf("creating attach directory: %w", err)
	}
	if p.Stdin != "" {
		if err := os.Remove(p.Stdin); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return AttachPaths{}, fmt.Errorf("removing stale stdin FIFO: %w", err)
		}
		if err := unix.Mkfifo(p.Stdin, 0o600); err != nil {
			return AttachPaths{}, fmt.Errorf("creating stdin FIFO: %w", err)
		}
	}
	return p, nil
}

// cleanupAttach removes c's attach files once its task is gone. The
// logger removes its socket when it ends; this catches a killed one.
func (r *Runtime) cleanupAttach(ctx context.Context, id string) {
	if r.opts.AttachDir == "" {
		return
	}
	base := filepath.Join(r.opts.AttachDir, id)
	for _, p := range []string{base + ".sock", base + ".stdin", base + ".stdout", base + ".stderr"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.G(ctx).WithError(err).WithField("containerid", id).Debug("removing attach file")
		}
	}
}

// Attach connects the client's streams to a running container's main
// process until its output ends (the container exited), the client stops
// taking output, or ctx is done. Output is live only: what the container
// wrote before the attach is in its log. When the client's stdin ends, a
// container with stdin_once has its stdin closed and the attach goes on
// until the output ends; otherwise the attach ends there and the
// container's stdin stays open for the next one (as containerd does).
// Stdin is ignored for a container without stdin.
func (r *Runtime) Attach(ctx context.Context, id string, s Streams) error {
	c, err := r.opts.Store.Get(id)
	if err != nil {
		return err
	}
	if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return fmt.Errorf("container %s is not running: %w", id, errdefs.ErrFailedPrecondition)
	}
	paths := r.attachPaths(c)
	if paths.Socket == "" {
		return fmt.Errorf("attach is disabled: %w", errdefs.ErrNotImplemented)
	}
	task, err := r.Task(ctx, id)
	if err != nil {
		return fmt.Errorf("container %s has no running task: %w", id, err)
	}
	conn, err := logs.DialAttach(ctx, paths.Socket)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("container %s cannot be attached to: it was started without attach support, or its output has ended: %w", id, errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		return err
	}
	defer conn.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.TTY && c.Config.GetTty() {
		handleResize(ctx, s.Resize, task.Resize)
	}
	stderr := s.Stderr
	if c.Config.GetTty() {
		stderr = nil
	}
	outDone := make(chan error, 1)
	go func() { outDone <- conn.Copy(s.Stdout, stderr) }()

	var stdinDone chan struct{}
	if s.Stdin != nil && paths.Stdin != "" {
		stdinDone = make(chan struct{})
		go func() {
			defer close(stdinDone)
			r.copyAttachStdin(ctx, c, task, paths.Stdin, s.Stdin)
		}()
	}
	select {
	case err := <-outDone:
		return attachOutputErr(err)
	case <-stdinDone:
		if !c.Config.GetStdinOnce() {
			return nil
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-outDone:
		return attachOutputErr(err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// copyAttachStdin copies the client's stdin into the container's stdin
// FIFO until it ends, then closes the container's stdin if it is
// stdin_once. A container whose stdin is already closed (no reader on the
// FIFO) gets nothing.
func (r *Runtime) copyAttachStdin(ctx context.Context, c Container, task containerd.Task, fifo string, stdin io.Reader) {
	f, err := os.OpenFile(fifo, os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		log.G(ctx).WithError(err).WithField("containerid", c.ID).Debug("container stdin is closed")
		return
	}
	if _, err := io.Copy(f, stdin); err != nil {
		log.G(ctx).WithError(err).WithField("containerid", c.ID).Debug("copying attach stdin")
	}
	f.Close()
	if c.Config.GetStdinOnce() {
		if err := task.CloseIO(context.WithoutCancel(ctx), containerd.WithStdinCloser); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithField("containerid", c.ID).Warn("closing stdin of stdin_once container")
		}
	}
}

// attachOutputErr is nil when the output ended or the client went away
// (the session is over either way), else err.
func attachOutputErr(err error) error {
	var we *logs.WriteError
	if errors.As(err, &we) {
		return nil
	}
	return err
}

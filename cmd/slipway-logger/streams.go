package main

import (
	"fmt"
	"io"
	"os"

	"github.com/containerd/containerd/v2/core/runtime/v2/logging"
	"golang.org/x/sys/unix"

	"github.com/slipway-dev/slipway/runtime/logs"
)

// stream is one container output the logger reads.
type stream struct {
	name logs.Stream
	file *os.File // non-blocking, so read deadlines work
	// wait says the logger runs until this stream ends. It is false for
	// stderr of a container with a terminal: the shim then never closes
	// that pipe (and never writes to it).
	wait bool
	// tee, when set, gets everything read from file (the attach fan-out).
	tee io.Writer
}

// reader is what the log copy reads: file, teed to tee when set.
func (s stream) reader() io.Reader {
	if s.tee == nil {
		return s.file
	}
	return io.TeeReader(s.file, s.tee)
}

// openStreams returns stdout and stderr; with tty, the logger does not wait
// for stderr to end. Stderr is read even then, so that a container wrongly
// started with tty=true does not get EPIPE on stderr.
func openStreams(cfg *logging.Config, tty bool) ([]stream, error) {
	out, err := pollable(cfg.Stdout)
	if err != nil {
		return nil, err
	}
	errf, err := pollable(cfg.Stderr)
	if err != nil {
		out.Close()
		return nil, err
	}
	return []stream{{name: logs.Stdout, file: out, wait: true}, {name: logs.Stderr, file: errf, wait: !tty}}, nil
}

// pollable replaces the inherited pipe r (opened by logging.Run in blocking
// mode) with a non-blocking duplicate that Go's poller manages, so that
// SetReadDeadline can end a read on SIGTERM.
func pollable(r io.Reader) (*os.File, error) {
	f, ok := r.(*os.File)
	if !ok {
		return nil, fmt.Errorf("container stream is a %T, not a file", r)
	}
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("fd %d (%s): %w; slipway-logger must be started by the containerd shim", f.Fd(), f.Name(), err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	f.Close()
	return os.NewFile(uintptr(fd), f.Name()), nil
}

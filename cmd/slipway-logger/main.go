// Command slipway-logger writes one container's output to its CRI log file.
// The containerd shim runs it through the binary log URI that
// runtime/logs.LogURI builds, so container logs keep flowing while slipwayd
// is stopped or restarting.
//
// Contract (runtime/logs documents the format and the arguments):
//
//   - Started by the shim as "slipway-logger KEY VALUE ..." with the URI's
//     query as pairs in any order: path (the log file), pidfile, and
//     optionally tty=true and max-line-size=N. The environment holds
//     CONTAINER_ID and CONTAINER_NAMESPACE; fd 3 is the container's stdout,
//     fd 4 its stderr, fd 5 the ready pipe.
//   - Start-up: it opens (or creates, mode 0640) the log file, failing if its
//     directory is missing; writes and flocks the pid file; then writes the
//     ready byte on fd 5. Any failure before that exits 1 without the byte,
//     and the shim fails the task's creation.
//   - Running: every complete line is written to the file as soon as it
//     arrives, both streams into the one file without interleaving.
//   - SIGUSR1: reopen the log path, then confirm by replacing the pid file
//     (recording the error next to it if the reopen failed); see logs.Reopen.
//   - End: when stdout and stderr reach end of file (the shim closes them
//     when the task is deleted) it writes what is left, removes the pid file
//     and exits 0. With tty=true it ends with stdout alone: for a terminal
//     the shim sends all output on stdout and never closes stderr. On SIGTERM, which the shim sends right after closing
//     the pipes, it keeps reading what they still hold for up to a second,
//     then does the same. A write error makes the exit status 1.
//   - Attach: with attach=SOCK it serves the live output of both streams on
//     that unix socket (logs.ListenAttach) from before it reports ready
//     until its streams end; each stream is teed to the fan-out, which never
//     blocks the copy into the log.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/containerd/containerd/v2/core/runtime/v2/logging"
	"golang.org/x/sys/unix"

	"github.com/slipway-dev/slipway/runtime/logs"
)

// drainGrace is how long the logger keeps reading after SIGTERM.
const drainGrace = time.Second

func main() {
	logging.Run(run)
}

// run is the logging.LoggerFunc: logging.Run cancels ctx on SIGTERM and
// exits with 1 if run returns an error, 0 otherwise.
func run(ctx context.Context, cfg *logging.Config, ready func() error) error {
	args, err := logs.ParseLoggerArgs(os.Args[1:])
	if err != nil {
		return err
	}
	w, err := logs.OpenWriter(args.Path, args.MaxLineSize)
	if err != nil {
		return err
	}
	defer w.Close()
	streams, err := openStreams(cfg, args.TTY)
	if err != nil {
		return err
	}
	if args.Attach != "" {
		fan, err := logs.ListenAttach(args.Attach)
		if err != nil {
			return err
		}
		defer fan.Close()
		for i := range streams {
			streams[i].tee = fan.Writer(streams[i].name)
		}
	}
	// Subscribe before the pid file exists: SIGUSR1's default action
	// would kill the logger.
	reopen := make(chan os.Signal, 1)
	signal.Notify(reopen, unix.SIGUSR1)
	pid, err := logs.CreatePIDFile(args.PIDFile)
	if err != nil {
		return err
	}
	defer pid.Remove()
	if err := ready(); err != nil {
		return fmt.Errorf("signalling ready to the shim: %w", err)
	}
	return copyStreams(ctx, w, pid, streams, reopen)
}

// copyStreams copies every stream into w until all the streams it waits
// for have ended, serving reopen requests meanwhile.
func copyStreams(ctx context.Context, w *logs.Writer, pid *logs.PIDFile, streams []stream, reopen <-chan os.Signal) error {
	done := make(chan error, len(streams))
	left := 0
	for _, s := range streams {
		if !s.wait {
			go w.Copy(s.name, s.reader()) // ends with the process
			continue
		}
		left++
		go func() { done <- w.Copy(s.name, s.reader()) }()
	}
	var errs []error
	cancelled := ctx.Done()
	draining := false
	for left > 0 {
		select {
		case <-reopen:
			if err := pid.Ack(w.Reopen()); err != nil {
				fmt.Fprintf(os.Stderr, "slipway-logger: confirming reopen: %v\n", err)
			}
		case <-cancelled:
			cancelled, draining = nil, true
			for _, s := range streams {
				// Ignored error: a stream that is not a pipe cannot
				// time out and ends at its own end of file.
				_ = s.file.SetReadDeadline(time.Now().Add(drainGrace))
			}
		case err := <-done:
			left--
			if err != nil && !(draining && errors.Is(err, os.ErrDeadlineExceeded)) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

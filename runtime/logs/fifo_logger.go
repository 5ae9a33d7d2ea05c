package logs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// readyTimeout bounds how long StartFIFOLogger waits for the logger's ready
// byte.
const readyTimeout = 10 * time.Second

// FIFOLogger is a logger slipwayd starts itself, reading a task's output
// from FIFOs the shim writes, for the one case the shim cannot run the
// logger: a container with stdin but no terminal. The runc shim gives a
// task's process no stdin when its output goes to a logger binary (its
// binary IO has no stdin, and it copies the stdin FIFO only for FIFO IO),
// while with a terminal it does. So such a task gets FIFO IO, and the
// logger runs on the FIFOs exactly as the shim would run it (the same
// arguments, environment and fds 3, 4 and 5), in its own session so that
// it outlives slipwayd like a shim-run one.
//
// StartFIFOLogger opens the FIFOs and keeps a write end of each open, so
// the logger does not see end of file before the shim opens its own;
// Release closes them, after which the logger ends when the shim closes
// its ends (when the task's output ends). Release is idempotent.
type FIFOLogger struct {
	once  sync.Once
	holds []*os.File
}

// StartFIFOLogger makes the FIFOs stdout and stderr, starts the logger binary
// with args on them for container id in containerd namespace ns, and
// returns once the logger is ready. On error nothing is left running.
func StartFIFOLogger(binary string, args LoggerArgs, id, ns, stdout, stderr string) (_ *FIFOLogger, retErr error) {
	uri, err := LogURI(binary, args)
	if err != nil {
		return nil, err
	}
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	l := &FIFOLogger{}
	defer func() {
		if retErr != nil {
			l.Release()
		}
	}()
	var readers []*os.File
	for _, path := range []string{stdout, stderr} {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("removing stale FIFO: %w", err)
		}
		if err := unix.Mkfifo(path, 0o600); err != nil {
			return nil, fmt.Errorf("creating output FIFO: %w", err)
		}
		// Opened non-blocking so as not to wait for a writer, then made
		// blocking: the shim hands its logger blocking pipes.
		r, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return nil, fmt.Errorf("opening output FIFO: %w", err)
		}
		closers = append(closers, r)
		if err := unix.SetNonblock(int(r.Fd()), false); err != nil {
			return nil, fmt.Errorf("output FIFO: %w", err)
		}
		readers = append(readers, r)
		w, err := os.OpenFile(path, os.O_WRONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return nil, fmt.Errorf("opening output FIFO: %w", err)
		}
		l.holds = append(l.holds, w)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	closers = append(closers, readyR, readyW)

	var argv []string
	for k, vs := range uri.Query() {
		argv = append(argv, k, vs[0])
	}
	cmd := exec.Command(uri.Path, argv...)
	cmd.Env = []string{"CONTAINER_ID=" + id, "CONTAINER_NAMESPACE=" + ns}
	cmd.ExtraFiles = []*os.File{readers[0], readers[1], readyW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting logger: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps it while slipwayd runs
	readyW.Close()
	if err := waitReady(readyR, exited); err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	return l, nil
}

// waitReady reads the logger's ready byte.
func waitReady(r *os.File, exited <-chan error) error {
	_ = r.SetReadDeadline(time.Now().Add(readyTimeout))
	got := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := io.ReadFull(r, b[:])
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			return fmt.Errorf("logger did not report ready: %w", err)
		}
		return nil
	case err := <-exited:
		return fmt.Errorf("logger exited before it was ready: %v", err)
	}
}

// Release closes slipwayd's write ends of the FIFOs.
func (l *FIFOLogger) Release() {
	l.once.Do(func() {
		for _, w := range l.holds {
			w.Close()
		}
	})
}

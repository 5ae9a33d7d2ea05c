package container

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/log"
)

// TerminalSize is a terminal's size in character cells.
type TerminalSize struct {
	Width, Height uint16
}

// Streams connect a client to an interactive exec or an attach. A nil
// stream is not connected. With TTY, the terminal's output goes to Stdout
// and Stderr is unused.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	TTY            bool
	// Resize delivers the client's terminal size, first when the session
	// starts and again on every change; it is read only with TTY, until it
	// is closed or the session ends. Exec waits for the first size, at
	// most firstSizeWait, before it starts the process (so that the
	// process's terminal has the client's size from its first
	// instruction), and reads nothing from Stdin meanwhile: a caller whose
	// stdin and sizes share one ordered connection must keep reading
	// stdin ahead, or keystrokes sent before the size hold it back.
	Resize <-chan TerminalSize
}

// firstSizeWait bounds how long Exec waits for a terminal's first size.
// Clients send it as soon as the session's streams exist (client-go based
// ones right after creating them), so it takes milliseconds; a client that
// sends none only starts this much later, with the terminal's default size.
const firstSizeWait = time.Second

// firstSize returns the first non-empty size from sizes, waiting at most
// wait; ok is false when none came in time, sizes was closed or nil, or
// ctx ended.
func firstSize(ctx context.Context, sizes <-chan TerminalSize, wait time.Duration) (size TerminalSize, ok bool) {
	if sizes == nil {
		return TerminalSize{}, false
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case size, open := <-sizes:
			if !open {
				return TerminalSize{}, false
			}
			if size.Width != 0 && size.Height != 0 {
				return size, true
			}
		case <-timer.C:
			return TerminalSize{}, false
		case <-ctx.Done():
			return TerminalSize{}, false
		}
	}
}

// handleResize applies every size from sizes with resize until sizes is
// closed or ctx is done. Errors are logged: a failed resize does not end a
// session.
func handleResize(ctx context.Context, sizes <-chan TerminalSize, resize func(context.Context, uint32, uint32) error) {
	if sizes == nil {
		return
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case size, ok := <-sizes:
				if !ok {
					return
				}
				if size.Width == 0 || size.Height == 0 {
					continue
				}
				if err := resize(ctx, uint32(size.Width), uint32(size.Height)); err != nil && ctx.Err() == nil {
					log.G(ctx).WithError(err).Debug("resizing terminal")
				}
			}
		}
	}()
}

// clientWriter forwards a session's output to the client and tracks it:
// when it last moved (so a drain can tell a stalled stream from a slow
// one) and whether the client failed (then gone is called once, and
// later writes fail at once).
type clientWriter struct {
	w        io.Writer
	progress *ioProgress
	failed   atomic.Bool
	gone     func()
}

func (c *clientWriter) Write(p []byte) (int, error) {
	if c.failed.Load() {
		return 0, io.ErrClosedPipe
	}
	n, err := c.w.Write(p)
	c.progress.touch()
	if err != nil && !c.failed.Swap(true) {
		c.gone()
	}
	return n, err
}

// ioProgress records when a session's output last moved.
type ioProgress struct {
	last atomic.Int64 // unix nanoseconds
}

func (p *ioProgress) touch() { p.last.Store(time.Now().UnixNano()) }

func (p *ioProgress) idleFor() time.Duration {
	return time.Since(time.Unix(0, p.last.Load()))
}

// writer wraps w (nil stays nil, so no FIFO is made for it).
func (p *ioProgress) writer(w io.Writer, gone func()) io.Writer {
	if w == nil {
		return nil
	}
	return &clientWriter{w: w, progress: p, gone: gone}
}

// stdinCloser reads a client's stdin and calls onEnd once when it ends:
// at end of file (the client closed its stdin) and on a read error (the
// connection broke) alike, so the process sees its stdin end either way.
type stdinCloser struct {
	r     io.Reader
	once  sync.Once
	onEnd func()
}

func (s *stdinCloser) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil {
		s.once.Do(s.onEnd)
	}
	return n, err
}

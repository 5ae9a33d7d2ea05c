package logs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// logFileMode is the permission of a log file the writer creates
// (containerd's CRI uses the same).
const logFileMode = 0o640

// Writer appends CRI log entries of both streams of one container to one
// file. It is safe for concurrent use: each entry is written whole with a
// single write(2) under mu, so entries of the two streams never interleave
// inside a line.
type Writer struct {
	path        string
	maxLineSize int // > 0, or < 0 for no limit
	now         func() time.Time

	mu  sync.Mutex // guards f and buf
	f   *os.File   // nil once closed
	buf []byte     // encoding scratch, reused across entries
}

// OpenWriter opens the log file at path for appending, creating it with mode
// 0640 if it does not exist. The directory must exist (kubelet creates it);
// a symlink at path is refused. maxLineSize is the longest content of one
// entry: 0 means DefaultMaxLineSize, a negative value means no limit.
func OpenWriter(path string, maxLineSize int) (*Writer, error) {
	if maxLineSize == 0 {
		maxLineSize = DefaultMaxLineSize
	}
	f, err := openLogFile(path)
	if err != nil {
		return nil, err
	}
	return &Writer{path: path, maxLineSize: maxLineSize, now: time.Now, f: f}, nil
}

// Path is the log file path the writer opens on Reopen.
func (w *Writer) Path() string { return w.path }

// WriteEntry writes one entry, timestamped now. Content must not hold "\n";
// Copy splits raw output into entries.
func (w *Writer) WriteEntry(s Stream, partial bool, content []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return fmt.Errorf("write %s: %w", w.path, os.ErrClosed)
	}
	w.buf = appendEntry(w.buf[:0], w.now(), s, partial, content)
	if _, err := w.f.Write(w.buf); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	return nil
}

// Reopen opens the log path again and sends later entries there, then closes
// the previous file. After kubelet renames the log file for rotation, this
// creates a new file at the original path. If the open fails, entries keep
// going to the previous file and the error is returned.
func (w *Writer) Reopen() error {
	f, err := openLogFile(w.path)
	if err != nil {
		return err
	}
	w.mu.Lock()
	old := w.f
	if old == nil {
		w.mu.Unlock()
		f.Close()
		return fmt.Errorf("reopen %s: %w", w.path, os.ErrClosed)
	}
	w.f = f
	w.mu.Unlock()
	return old.Close()
}

// Close closes the log file. Later writes fail with os.ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// openLogFile opens path for appending with O_NOFOLLOW, creating it with
// logFileMode, and explains a missing directory.
func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW, logFileMode)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open container log %s: the log directory does not exist (kubelet creates it): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open container log: %w", err)
	}
	return f, nil
}

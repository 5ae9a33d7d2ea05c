package logs

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Attach protocol. The logger serves its container's live output on a unix
// socket (LoggerArgs.Attach) so that CRI Attach keeps working across
// slipwayd restarts: the logger, not slipwayd, owns the output pipes.
//
// A client connects and waits for the one-byte greeting attachVersion; the
// logger sends it once the client is subscribed, so every byte the
// container writes after DialAttach returns reaches the client. Then the
// logger sends frames until the container's output ends (the connection
// is closed) or the client falls more than attachClientBuffer bytes behind
// (the connection is dropped, so a stuck client never slows the log).
// Frames are a stream byte (attachStdout or attachStderr), the payload
// length as a big-endian uint32, and the payload: raw container output,
// with a terminal's output on stdout. Clients never write; the socket is
// created mode 0600 in a directory slipwayd keeps private.
const (
	attachVersion      byte = 1
	attachStdout       byte = 1
	attachStderr       byte = 2
	attachHeaderSize        = 5
	attachClientBuffer      = 1 << 20
	// attachMaxFrame bounds a payload a client accepts.
	attachMaxFrame = 1 << 20
	// attachFlushGrace bounds how long Close waits for clients to take
	// what is queued for them.
	attachFlushGrace = time.Second
)

// maxSocketPath is the longest path bind(2) and connect(2) take in
// sockaddr_un (108 bytes with the terminating NUL).
const maxSocketPath = 107

// Fanout serves a container's live output to attach clients. Writers from
// Writer never block and never fail, so the log copy is unaffected by
// clients. It is safe for concurrent use.
type Fanout struct {
	ln     net.Listener
	path   string
	closed chan struct{} // closed by Close

	mu      sync.Mutex // guards clients, done and each client's queue state
	clients map[*fanoutClient]struct{}
	done    bool // Close was called

	wg sync.WaitGroup // the accept loop and each client's sender
}

// ListenAttach creates the attach socket at path (absolute; a stale socket
// there is replaced) and serves clients until Close.
func ListenAttach(path string) (*Fanout, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("removing stale attach socket: %w", err)
	}
	addr, dirFD, err := socketAddr(path)
	if err != nil {
		return nil, err
	}
	// The socket's directory is private to root (slipwayd makes it 0700),
	// so the moment before the chmod exposes nothing.
	ln, err := net.Listen("unix", addr)
	closeQuietly(dirFD)
	if err != nil {
		return nil, fmt.Errorf("listening on attach socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("restricting attach socket: %w", err)
	}
	f := &Fanout{ln: ln, path: path, closed: make(chan struct{}), clients: map[*fanoutClient]struct{}{}}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

// Writer returns the writer of stream s: each Write is queued, as one frame,
// for every subscribed client. It always returns len(p), nil.
func (f *Fanout) Writer(s Stream) io.Writer {
	id := attachStdout
	if s == Stderr {
		id = attachStderr
	}
	return fanoutWriter{f: f, stream: id}
}

// Close stops accepting clients, lets the subscribed ones take what is
// queued for them (for at most attachFlushGrace), closes their connections
// and removes the socket.
func (f *Fanout) Close() error {
	f.mu.Lock()
	if f.done {
		f.mu.Unlock()
		return nil
	}
	f.done = true
	for c := range f.clients {
		c.closeQueueLocked()
	}
	f.mu.Unlock()
	close(f.closed)
	err := f.ln.Close()
	waited := make(chan struct{})
	go func() { f.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(attachFlushGrace):
		f.mu.Lock()
		for c := range f.clients {
			c.conn.Close()
		}
		f.mu.Unlock()
		<-waited
	}
	if rmErr := os.Remove(f.path); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) && err == nil {
		err = rmErr
	}
	return err
}

func (f *Fanout) accept() {
	defer f.wg.Done()
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			select {
			case <-f.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// EMFILE and the like: back off rather than spin.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		f.subscribe(conn)
	}
}

// subscribe registers conn and greets it; a client that closes first is
// dropped by its sender.
func (f *Fanout) subscribe(conn net.Conn) {
	c := &fanoutClient{conn: conn, queue: make(chan []byte, 256)}
	f.mu.Lock()
	if f.done {
		f.mu.Unlock()
		conn.Close()
		return
	}
	f.clients[c] = struct{}{}
	f.wg.Add(1)
	f.mu.Unlock()
	go f.send(c)
}

// send writes the greeting, then c's frames, until its queue is closed
// (by Close, or by publish when c falls behind) or a write fails.
func (f *Fanout) send(c *fanoutClient) {
	defer f.wg.Done()
	defer f.drop(c)
	if _, err := c.conn.Write([]byte{attachVersion}); err != nil {
		return
	}
	for frame := range c.queue {
		c.queued.Add(-int64(len(frame)))
		if _, err := c.conn.Write(frame); err != nil {
			return
		}
	}
}

// drop unsubscribes c and closes its connection.
func (f *Fanout) drop(c *fanoutClient) {
	f.mu.Lock()
	delete(f.clients, c)
	c.closeQueueLocked()
	f.mu.Unlock()
	c.conn.Close()
}

// publish queues frame for every client. A client with more than
// attachClientBuffer bytes queued is cut off: its queue is closed and its
// connection too, which also unblocks a sender stuck in Write.
func (f *Fanout) publish(frame []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.clients {
		if c.queueClosed {
			continue
		}
		if c.queued.Load()+int64(len(frame)) <= attachClientBuffer {
			select {
			case c.queue <- frame:
				c.queued.Add(int64(len(frame)))
				continue
			default:
			}
		}
		c.closeQueueLocked()
		c.conn.Close()
	}
}

// fanoutClient is one subscribed attach connection.
type fanoutClient struct {
	conn  net.Conn
	queue chan []byte
	// queueClosed says queue is closed; Fanout.mu guards it and closing.
	queueClosed bool
	// queued counts the bytes in queue.
	queued atomic.Int64
}

func (c *fanoutClient) closeQueueLocked() {
	if !c.queueClosed {
		c.queueClosed = true
		close(c.queue)
	}
}

type fanoutWriter struct {
	f      *Fanout
	stream byte
}

func (w fanoutWriter) Write(p []byte) (int, error) {
	for rest := p; len(rest) > 0; {
		n := min(len(rest), attachMaxFrame)
		frame := make([]byte, attachHeaderSize+n)
		frame[0] = w.stream
		binary.BigEndian.PutUint32(frame[1:attachHeaderSize], uint32(n))
		copy(frame[attachHeaderSize:], rest[:n])
		w.f.publish(frame)
		rest = rest[n:]
	}
	return len(p), nil
}

// AttachConn is a client's subscription to a logger's live output.
type AttachConn struct {
	conn net.Conn
	r    *bufio.Reader
}

// DialAttach subscribes to the output of the logger serving path and
// returns once the subscription is in place. A missing socket (no logger,
// or one started without attach) is an error wrapping fs.ErrNotExist.
func DialAttach(ctx context.Context, path string) (*AttachConn, error) {
	addr, dirFD, err := socketAddr(path)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", addr)
	closeQuietly(dirFD)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
		return nil, fmt.Errorf("attach socket %s: %w", path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to attach socket: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	r := bufio.NewReader(conn)
	v, err := r.ReadByte()
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("attach socket %s closed before the greeting (the container's output ended): %w", path, fs.ErrNotExist)
	}
	if v != attachVersion {
		conn.Close()
		return nil, fmt.Errorf("attach socket %s speaks version %d, want %d", path, v, attachVersion)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return &AttachConn{conn: conn, r: r}, nil
}

// Copy writes the container's output to stdout and stderr (nil discards a
// stream) until it ends, which returns nil, or a read or write fails. A
// write error is returned wrapped in a *WriteError.
func (c *AttachConn) Copy(stdout, stderr io.Writer) error {
	var hdr [attachHeaderSize]byte
	buf := make([]byte, 32*1024)
	for {
		if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading attach stream: %w", err)
		}
		n := int(binary.BigEndian.Uint32(hdr[1:]))
		if n > attachMaxFrame {
			return fmt.Errorf("attach frame of %d bytes is over the %d limit", n, attachMaxFrame)
		}
		var dst io.Writer
		switch hdr[0] {
		case attachStdout:
			dst = stdout
		case attachStderr:
			dst = stderr
		default:
			return fmt.Errorf("attach frame for unknown stream %d", hdr[0])
		}
		if dst == nil {
			dst = io.Discard
		}
		for n > 0 {
			chunk := buf[:min(n, len(buf))]
			if _, err := io.ReadFull(c.r, chunk); err != nil {
				return fmt.Errorf("reading attach stream: %w", err)
			}
			if _, err := dst.Write(chunk); err != nil {
				return &WriteError{Err: err}
			}
			n -= len(chunk)
		}
	}
}

// Close ends the subscription; a Copy in progress returns.
func (c *AttachConn) Close() error { return c.conn.Close() }

// WriteError is a failure to write attached output to the client.
type WriteError struct{ Err error }

func (e *WriteError) Error() string { return "writing attached output: " + e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }

// socketAddr returns an address bind(2) and connect(2) accept for path:
// path itself, or, when it is too long for sockaddr_un, the same file
// reached through /proc/self/fd and an O_PATH descriptor of its directory,
// which the caller closes once the socket is bound or connected.
func socketAddr(path string) (string, io.Closer, error) {
	if len(path) <= maxSocketPath {
		return path, nil, nil
	}
	dir, base := filepath.Split(path)
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			err = fs.ErrNotExist
		}
		return "", nil, fmt.Errorf("opening socket directory %s: %w", dir, err)
	}
	f := os.NewFile(uintptr(fd), dir)
	addr := fmt.Sprintf("/proc/self/fd/%d/%s", fd, base)
	if len(addr) > maxSocketPath {
		f.Close()
		return "", nil, fmt.Errorf("socket name %q is too long", base)
	}
	return addr, f, nil
}

func closeQuietly(c io.Closer) {
	if c != nil {
		_ = c.Close()
	}
}

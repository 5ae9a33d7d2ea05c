package cri

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
)

// ContainerStreams runs the interactive sessions of containers (package
// runtime/container's Runtime).
type ContainerStreams interface {
	// Exec returns the exit code of cmd once it exited.
	Exec(ctx context.Context, id string, cmd []string, s container.Streams) (int32, error)
	Attach(ctx context.Context, id string, s container.Streams) error
}

// PodLookup finds a pod sandbox by ID (package runtime/pod's Store).
type PodLookup interface {
	Get(id string) (pod.Sandbox, error)
}

var (
	_ ContainerStreams = (*container.Runtime)(nil)
	_ PodLookup        = (*pod.Store)(nil)
)

const (
	// portForwardDialTimeout bounds the connection to a pod's port.
	portForwardDialTimeout = 10 * time.Second
	// portForwardHalfOpenIdle ends a forward whose client closed its input
	// once the pod has sent nothing for this long.
	portForwardHalfOpenIdle = 30 * time.Second
	// portForwardLinger is how long a forward whose pod side closed waits
	// for the client's side before it closes both (socat's default).
	portForwardLinger = time.Second
)

// streamRuntime runs the sessions the streaming server accepts: it is
// k8s.io/cri-streaming's Runtime over the container runtime and the pods.
type streamRuntime struct {
	containers ContainerStreams
	pods       PodLookup
	// dial connects to port on the pod's loopback; nil uses dialPodPort.
	dial func(ctx context.Context, p pod.Sandbox, port int32) (net.Conn, error)
}

var _ streaming.Runtime = (*streamRuntime)(nil)

// NewStreamRuntime returns the streaming.Runtime that runs exec and attach
// sessions on containers and forwards ports into pods' network namespaces.
func NewStreamRuntime(containers ContainerStreams, pods PodLookup) streaming.Runtime {
	return &streamRuntime{containers: containers, pods: pods, dial: dialPodPort}
}

// Exec runs cmd with the client's streams; a non-zero exit is returned as
// a utilexec.ExitError, which the streaming server reports to the client
// with its code.
func (r *streamRuntime) Exec(ctx context.Context, containerID string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	code, err := r.containers.Exec(ctx, containerID, cmd, streams(ctx, in, out, errOut, tty, resize))
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command %q exited with code %d", cmd, code), Code: int(code)}
	}
	return nil
}

// Attach connects the client's streams to the container's main process.
func (r *streamRuntime) Attach(ctx context.Context, containerID string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	return r.containers.Attach(ctx, containerID, streams(ctx, in, out, errOut, tty, resize))
}

// PortForward connects stream to port on the loopback of the pod's network
// namespace (the node's, for a host-network pod) and copies both ways
// until one side ends; stream is closed on return.
func (r *streamRuntime) PortForward(ctx context.Context, podSandboxID string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	if port <= 0 || port > 65535 {
		return fmt.Errorf("port %d is out of range: %w", port, errdefs.ErrInvalidArgument)
	}
	p, err := r.pods.Get(podSandboxID)
	if err != nil {
		return err
	}
	if p.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		return fmt.Errorf("pod sandbox %s is not ready: %w", p.ID, errdefs.ErrFailedPrecondition)
	}
	conn, err := r.dial(ctx, p, port)
	if err != nil {
		return err
	}
	defer conn.Close()
	log.G(ctx).WithField("podsandboxid", p.ID).WithField("port", port).Debug("port-forward connected")
	return pipe(ctx, stream, conn)
}

// pipe copies between a client stream and a pod connection. The client's
// end of input is passed on as a half-close, and the pod's answer is still
// forwarded until the pod closes or falls silent for
// portForwardHalfOpenIdle (a client that went away entirely looks the same
// as one that half-closed); once the pod closes, the client's last bytes
// get portForwardLinger to go through.
func pipe(ctx context.Context, stream io.ReadWriter, conn net.Conn) error {
	toPod, fromPod := make(chan error, 1), make(chan error, 1)
	var lastFromPod atomic.Int64
	lastFromPod.Store(time.Now().UnixNano())
	go func() {
		_, err := io.Copy(conn, stream)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		toPod <- err
	}()
	go func() {
		_, err := io.Copy(activityWriter{stream, &lastFromPod}, conn)
		fromPod <- err
	}()
	select {
	case err := <-fromPod:
		select {
		case <-toPod:
		case <-time.After(portForwardLinger):
		case <-ctx.Done():
		}
		return err
	case err := <-toPod:
		if err != nil {
			return err
		}
		tick := time.NewTicker(portForwardHalfOpenIdle / 10)
		defer tick.Stop()
		for {
			select {
			case err := <-fromPod:
				return err
			case <-tick.C:
				if time.Since(time.Unix(0, lastFromPod.Load())) >= portForwardHalfOpenIdle {
					return nil
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// activityWriter records when it last wrote.
type activityWriter struct {
	w    io.Writer
	last *atomic.Int64
}

func (a activityWriter) Write(p []byte) (int, error) {
	a.last.Store(time.Now().UnixNano())
	return a.w.Write(p)
}

// dialPodPort connects to port on the pod's loopback, IPv4 first, from a
// thread inside the pod's network namespace: the socket stays in that
// namespace after the thread is gone.
func dialPodPort(ctx context.Context, p pod.Sandbox, port int32) (net.Conn, error) {
	var conn net.Conn
	dial := func() error {
		d := net.Dialer{Timeout: portForwardDialTimeout}
		var err4, err6 error
		// One address family at a time: a dual-stack dial would race
		// two goroutines, and only this one is in the namespace.
		if conn, err4 = d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))); err4 == nil {
			return nil
		}
		if conn, err6 = d.DialContext(ctx, "tcp6", net.JoinHostPort("::1", strconv.Itoa(int(port)))); err6 == nil {
			return nil
		}
		return fmt.Errorf("connecting to port %d of pod %s: IPv4: %v, IPv6: %v: %w", port, p.ID, err4, err6, errdefs.ErrUnavailable)
	}
	netns, ok := p.Namespaces[namespaces.Net]
	if !ok {
		return conn, dial()
	}
	if err := namespaces.Enter(netns, namespaces.Net, dial); err != nil {
		return nil, err
	}
	return conn, nil
}

// streams converts the streaming server's streams; resize sizes are
// forwarded until ctx ends. With a terminal, stdin is read ahead (see
// readAhead): a websocket session (remotecommand v1 to v4) carries every
// stream in one ordered connection and hands each frame to its stream
// synchronously, so keystrokes sent before the terminal's size would hold
// the size back while Exec waits for it without reading stdin.
func streams(ctx context.Context, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) container.Streams {
	s := container.Streams{TTY: tty}
	// Absent streams come as nil interfaces of the server's types (keep
	// them nil), or, on a websocket, as placeholders the request did not
	// ask for (drop them).
	want, known := requestedStreams(ctx)
	if in != nil && (!known || want.Stdin) {
		s.Stdin = in
	}
	if out != nil && (!known || want.Stdout) {
		s.Stdout = out
	}
	if errOut != nil && (!known || want.Stderr) {
		s.Stderr = errOut
	}
	if tty && resize != nil && s.Stdin != nil {
		s.Stdin = newReadAhead(ctx, s.Stdin)
	}
	if tty && resize != nil {
		sizes := make(chan container.TerminalSize)
		go func() {
			defer close(sizes)
			for {
				select {
				case size, ok := <-resize:
					if !ok {
						return
					}
					select {
					case sizes <- container.TerminalSize{Width: size.Width, Height: size.Height}:
					case <-ctx.Done():
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
		s.Resize = sizes
	}
	return s
}

const (
	// readAheadChunk is the most one read of a client's stdin takes.
	readAheadChunk = 32 << 10
	// readAheadChunks is how many reads readAhead holds before it waits
	// for its reader: at most readAheadChunks*readAheadChunk bytes.
	readAheadChunks = 4
)

// readAhead reads a client's stdin from the start of a session into a
// bounded queue, so that the connection that carries it is never held by
// a session that does not read stdin yet; its reader sees the same bytes,
// then the same end (io.EOF or the read error).
type readAhead struct {
	chunks <-chan []byte
	// err is the end of the input, set before chunks is closed.
	err error
	// cur is what is left of the chunk being read; only Read uses it.
	cur []byte
}

// newReadAhead starts reading r until it ends or ctx does.
func newReadAhead(ctx context.Context, r io.Reader) *readAhead {
	chunks := make(chan []byte, readAheadChunks)
	ra := &readAhead{chunks: chunks}
	go func() {
		defer close(chunks)
		buf := make([]byte, readAheadChunk)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				select {
				case chunks <- bytes.Clone(buf[:n]):
				case <-ctx.Done():
					ra.err = ctx.Err()
					return
				}
			}
			if err != nil {
				ra.err = err
				return
			}
		}
	}()
	return ra
}

func (ra *readAhead) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(ra.cur) == 0 {
		chunk, ok := <-ra.chunks
		if !ok {
			return 0, ra.err
		}
		ra.cur = chunk
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

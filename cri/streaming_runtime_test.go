package cri

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
)

// fixedExec is a ContainerStreams whose Exec returns code and err and
// records the streams it got.
type fixedExec struct {
	code int32
	err  error
	got  container.Streams
}

func (f *fixedExec) Exec(ctx context.Context, id string, cmd []string, s container.Streams) (int32, error) {
	f.got = s
	if s.Resize != nil {
		if size, ok := <-s.Resize; ok && size != (container.TerminalSize{Width: 80, Height: 24}) {
			return 0, fmt.Errorf("size %v", size)
		}
	}
	return f.code, f.err
}

func (f *fixedExec) Attach(ctx context.Context, id string, s container.Streams) error {
	f.got = s
	return f.err
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func TestStreamRuntimeExecResult(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	for _, c := range []struct {
		code int32
		err  error
		want func(error) bool
	}{
		{0, nil, func(err error) bool { return err == nil }},
		{3, nil, func(err error) bool {
			var e utilexec.ExitError
			return errors.As(err, &e) && e.Exited() && e.ExitStatus() == 3
		}},
		{0, boom, func(err error) bool { return errors.Is(err, boom) }},
	} {
		rt := &streamRuntime{containers: &fixedExec{code: c.code, err: c.err}}
		if err := rt.Exec(ctx, "c", []string{"x"}, nil, nopWriteCloser{io.Discard}, nil, false, nil); !c.want(err) {
			t.Errorf("code %d, err %v: Exec = %v", c.code, c.err, err)
		}
	}
}

func TestStreamRuntimeStreams(t *testing.T) {
	ctx := context.Background()
	f := &fixedExec{}
	rt := &streamRuntime{containers: f}
	resize := make(chan remotecommand.TerminalSize, 1)
	resize <- remotecommand.TerminalSize{Width: 80, Height: 24}
	var nilIn io.ReadCloser
	if err := rt.Exec(ctx, "c", []string{"x"}, nilIn, nopWriteCloser{io.Discard}, nil, true, resize); err != nil {
		t.Fatal(err)
	}
	if f.got.Stdin != nil || f.got.Stdout == nil || f.got.Stderr != nil || !f.got.TTY {
		t.Errorf("streams %+v: want stdout only, with a terminal", f.got)
	}
	// A websocket session that did not ask for stdin still hands the
	// runtime a stdin placeholder: it is dropped.
	wsCtx := context.WithValue(ctx, sessionStreamsKey{}, streamOptions(true))
	if err := rt.Attach(wsCtx, "c", io.NopCloser(nil), nopWriteCloser{io.Discard}, nopWriteCloser{io.Discard}, false, nil); err != nil {
		t.Fatal(err)
	}
	if f.got.Stdin != nil || f.got.Stderr != nil || f.got.Stdout == nil {
		t.Errorf("streams %+v: want the placeholders dropped", f.got)
	}
}

// pipeStream is the client side of a port-forward stream: what the client
// sends, then its end of input, and what it receives.
type pipeStream struct {
	io.Reader
	io.Writer
	closed chan struct{}
}

func (p *pipeStream) Close() error {
	select {
	case <-p.closed:
	default:
		close(p.closed)
	}
	return nil
}

func TestStreamRuntimePortForward(t *testing.T) {
	ctx := context.Background()
	// The pod's server reads the request to its end, then answers: the
	// client's end of input must reach it as a half-close.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		b, _ := io.ReadAll(conn)
		fmt.Fprintf(conn, "got %q", b)
	}()
	pods := pod.NewStore(nil)
	pods.Put("ready", pod.Sandbox{ID: "ready", State: runtimeapi.PodSandboxState_SANDBOX_READY})
	pods.Put("stopped", pod.Sandbox{ID: "stopped", State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY})
	rt := &streamRuntime{pods: pods, dial: func(ctx context.Context, p pod.Sandbox, port int32) (net.Conn, error) {
		return net.Dial("tcp4", l.Addr().String())
	}}

	var answer safeBuffer
	stream := &pipeStream{Reader: stringsReader("request"), Writer: &answer, closed: make(chan struct{})}
	if err := rt.PortForward(ctx, "ready", 80, stream); err != nil {
		t.Fatal(err)
	}
	if answer.String() != `got "request"` {
		t.Errorf("answer %q", answer.String())
	}
	select {
	case <-stream.closed:
	default:
		t.Error("the stream was left open")
	}

	for _, c := range []struct {
		pod   string
		port  int32
		check func(error) bool
	}{
		{"stopped", 80, errdefs.IsFailedPrecondition},
		{"ready", 0, errdefs.IsInvalidArgument},
		{"ready", 65536, errdefs.IsInvalidArgument},
		{"gone", 80, errdefs.IsNotFound},
	} {
		s := &pipeStream{Reader: stringsReader(""), Writer: io.Discard, closed: make(chan struct{})}
		if err := rt.PortForward(ctx, c.pod, c.port, s); !c.check(err) {
			t.Errorf("PortForward(%s, %d) = %v", c.pod, c.port, err)
		}
	}
}

func TestDialPodPortInsidePodNetwork(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("needs nsenter")
	}
	pinned, err := namespaces.Pin(namespaces.Request{Dir: t.TempDir(), Kinds: []namespaces.Kind{namespaces.Net}})
	if err != nil {
		t.Fatal(err)
	}
	defer namespaces.Unpin(pinned[namespaces.Net])
	netns := pinned[namespaces.Net]
	if out, err := exec.Command("nsenter", "--net="+netns, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("bringing up the pod's loopback: %v: %s", err, out)
	}
	// A server on the pod's loopback, and another on the node's.
	var inPod net.Listener
	if err := namespaces.Enter(netns, namespaces.Net, func() (err error) {
		inPod, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer inPod.Close()
	go func() {
		for {
			conn, err := inPod.Accept()
			if err != nil {
				return
			}
			fmt.Fprint(conn, "pod")
			conn.Close()
		}
	}()
	onNode, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer onNode.Close()

	p := pod.Sandbox{ID: "p", Namespaces: namespaces.Pinned{namespaces.Net: netns}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := dialPodPort(ctx, p, int32(inPod.Addr().(*net.TCPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(conn)
	conn.Close()
	if string(b) != "pod" {
		t.Errorf("read %q from the pod's port", b)
	}
	if conn, err := dialPodPort(ctx, p, int32(onNode.Addr().(*net.TCPAddr).Port)); err == nil {
		conn.Close()
		t.Error("reached a port of the node's loopback from the pod's network")
	} else if !errdefs.IsUnavailable(err) {
		t.Errorf("dial to a closed port = %v, want Unavailable", err)
	}
	// A host-network pod reaches the node's loopback.
	if conn, err := dialPodPort(ctx, pod.Sandbox{ID: "h"}, int32(onNode.Addr().(*net.TCPAddr).Port)); err != nil {
		t.Errorf("host-network pod: %v", err)
	} else {
		conn.Close()
	}
}

func stringsReader(s string) io.Reader { return &onceReader{s: s} }

// onceReader reads s, then reports end of file.
type onceReader struct{ s string }

func (r *onceReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	n := copy(p, r.s)
	r.s = r.s[n:]
	return n, nil
}

// safeBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type safeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestReadAhead(t *testing.T) {
	t.Run("reads before it is read, within its bound", func(t *testing.T) {
		pr, pw := io.Pipe()
		ra := newReadAhead(context.Background(), pr)
		// Nothing reads ra yet: the writes go through anyway.
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range readAheadChunks {
				_, _ = pw.Write([]byte("key"))
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the writer was held until the reader read")
		}
		pw.CloseWithError(errors.New("reset"))
		b, err := io.ReadAll(ra)
		if string(b) != strings.Repeat("key", readAheadChunks) || err == nil || err.Error() != "reset" {
			t.Errorf("read %q, %v; want every byte, then the source's error", b, err)
		}
	})
	t.Run("end of file and small reads", func(t *testing.T) {
		ra := newReadAhead(context.Background(), strings.NewReader("abcdef"))
		var got []byte
		p := make([]byte, 4)
		for {
			n, err := ra.Read(p)
			got = append(got, p[:n]...)
			if err != nil {
				if err != io.EOF {
					t.Errorf("end %v, want io.EOF", err)
				}
				break
			}
		}
		if string(got) != "abcdef" {
			t.Errorf("read %q", got)
		}
	})
	t.Run("stops when the session ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		defer pw.Close()
		ra := newReadAhead(ctx, pr)
		go func() {
			for {
				if _, err := pw.Write([]byte("x")); err != nil {
					return
				}
			}
		}()
		time.Sleep(50 * time.Millisecond) // the queue fills
		cancel()
		if _, err := io.ReadAll(ra); !errors.Is(err, context.Canceled) {
			t.Errorf("read ended with %v, want the session's end", err)
		}
	})
}

func TestStreamRuntimeReadsTTYStdinAhead(t *testing.T) {
	f := &fixedExec{}
	rt := &streamRuntime{containers: f}
	resize := make(chan remotecommand.TerminalSize)
	close(resize)
	if err := rt.Exec(context.Background(), "c", []string{"sh"}, io.NopCloser(strings.NewReader("x")), nopWriteCloser{io.Discard}, nil, true, resize); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.got.Stdin.(*readAhead); !ok {
		t.Errorf("stdin of a terminal session is %T, want it read ahead", f.got.Stdin)
	}
	if err := rt.Exec(context.Background(), "c", []string{"cat"}, io.NopCloser(strings.NewReader("x")), nopWriteCloser{io.Discard}, nil, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.got.Stdin.(*readAhead); ok {
		t.Error("stdin without a terminal is read ahead")
	}
}

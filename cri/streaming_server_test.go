package cri

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/streaming/pkg/httpstream"
	utilexec "k8s.io/utils/exec"

	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/pod"
)

// echoContainers is a ContainerStreams whose sessions echo what they get.
type echoContainers struct{}

// Exec writes "ran CMD in ID" to stdout and "to stderr" to stderr, then,
// with a terminal, the first size it is given, then echoes stdin: until it
// ends for "cat", its first line otherwise. A command "fail" exits 3.
func (echoContainers) Exec(ctx context.Context, id string, cmd []string, s container.Streams) (int32, error) {
	if s.Stdout == nil {
		return 0, errors.New("no stdout")
	}
	fmt.Fprintf(s.Stdout, "ran %s in %s\n", strings.Join(cmd, " "), id)
	if s.Stderr != nil {
		fmt.Fprint(s.Stderr, "to stderr\n")
	}
	if s.TTY {
		select {
		case size := <-s.Resize:
			fmt.Fprintf(s.Stdout, "size %dx%d\n", size.Width, size.Height)
		case <-time.After(5 * time.Second):
			return 0, errors.New("no terminal size")
		}
	}
	switch {
	case s.Stdin == nil:
	case cmd[0] == "cat":
		if _, err := io.Copy(s.Stdout, s.Stdin); err != nil {
			return 0, err
		}
	default:
		line, err := bufio.NewReader(s.Stdin).ReadString('\n')
		if err != nil {
			return 0, fmt.Errorf("reading stdin: %w", err)
		}
		fmt.Fprint(s.Stdout, line)
	}
	if cmd[0] == "fail" {
		return 3, nil
	}
	return 0, nil
}

func (e echoContainers) Attach(ctx context.Context, id string, s container.Streams) error {
	_, err := e.Exec(ctx, id, []string{"attach"}, s)
	return err
}

// readyPods finds every ID as a ready pod.
type readyPods struct{}

func (readyPods) Get(id string) (pod.Sandbox, error) {
	return pod.Sandbox{ID: id, State: runtimeapi.PodSandboxState_SANDBOX_READY}, nil
}

// dialEcho connects to a pod port that answers each line with
// "PORT: LINE".
func dialEcho(ctx context.Context, p pod.Sandbox, port int32) (net.Conn, error) {
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		sc := bufio.NewScanner(server)
		for sc.Scan() {
			fmt.Fprintf(server, "%d: %s\n", port, sc.Text())
		}
	}()
	return client, nil
}

func startStreamingServer(t *testing.T) *StreamingServer {
	t.Helper()
	return startStreamingServerWith(t, StreamingConfig{Addr: "127.0.0.1:0"})
}

func startStreamingServerWith(t *testing.T, cfg StreamingConfig) *StreamingServer {
	t.Helper()
	rt := &streamRuntime{containers: echoContainers{}, pods: readyPods{}, dial: dialEcho}
	s, err := NewStreamingServer(cfg, rt)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

// executor connects to a remotecommand URL the way critest and crictl do
// for each transport.
func executor(t *testing.T, transport, rawURL string) remotecommand.Executor {
	t.Helper()
	return executorWith(t, &rest.Config{}, transport, rawURL)
}

func executorWith(t *testing.T, config *rest.Config, transport, rawURL string) remotecommand.Executor {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	var e remotecommand.Executor
	switch transport {
	case "spdy":
		e, err = remotecommand.NewSPDYExecutor(config, "POST", u)
	case "websocket-v5": // client-go's websocket executor
		e, err = remotecommand.NewWebSocketExecutor(config, "GET", rawURL)
	case "websocket-v4":
		e, err = remotecommand.NewWebSocketExecutorForProtocols(config, "GET", rawURL, "v4.channel.k8s.io")
	}
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var remotecommandTransports = []string{"spdy", "websocket-v5", "websocket-v4"}

type oneSize struct{ sent bool }

func (q *oneSize) Next() *remotecommand.TerminalSize {
	if q.sent {
		return nil
	}
	q.sent = true
	return &remotecommand.TerminalSize{Width: 123, Height: 45}
}

// signalReader closes read once r has been read from.
type signalReader struct {
	r    io.Reader
	read chan struct{}
	once sync.Once
}

func (s *signalReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.once.Do(func() { close(s.read) })
	}
	return n, err
}

// sizeAfter gives one size, 123x45, once ready is closed and a little
// later, for the bytes read before to be sent first.
type sizeAfter struct {
	ready <-chan struct{}
	sent  bool
}

func (q *sizeAfter) Next() *remotecommand.TerminalSize {
	if q.sent {
		return nil
	}
	q.sent = true
	<-q.ready
	time.Sleep(100 * time.Millisecond)
	return &remotecommand.TerminalSize{Width: 123, Height: 45}
}

func TestStreamingExec(t *testing.T) {
	s := startStreamingServer(t)
	for _, transport := range remotecommandTransports {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			t.Run("stdout and stderr", func(t *testing.T) {
				resp, err := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c1", Cmd: []string{"echo", "hi"}, Stdout: true, Stderr: true})
				if err != nil {
					t.Fatal(err)
				}
				var out, errOut bytes.Buffer
				if err := executor(t, transport, resp.Url).StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &errOut}); err != nil {
					t.Fatal(err)
				}
				if out.String() != "ran echo hi in c1\n" || errOut.String() != "to stderr\n" {
					t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
				}
			})

			t.Run("stdin until it ends", func(t *testing.T) {
				if transport == "websocket-v4" {
					t.Skip("remotecommand v4 over websocket cannot close stdin (v5 added that)")
				}
				resp, err := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c1", Cmd: []string{"cat"}, Stdin: true, Stdout: true})
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				if err := executor(t, transport, resp.Url).StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("line 1\nline 2\n"), Stdout: &out}); err != nil {
					t.Fatal(err)
				}
				if out.String() != "ran cat in c1\nline 1\nline 2\n" {
					t.Errorf("stdout %q", out.String())
				}
			})

			t.Run("tty with resize", func(t *testing.T) {
				resp, err := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c1", Cmd: []string{"sh"}, Stdin: true, Stdout: true, Tty: true})
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				if err := executor(t, transport, resp.Url).StreamWithContext(ctx, remotecommand.StreamOptions{
					Stdin: strings.NewReader("typed\n"), Stdout: &out, Tty: true, TerminalSizeQueue: &oneSize{},
				}); err != nil {
					t.Fatal(err)
				}
				if out.String() != "ran sh in c1\nsize 123x45\ntyped\n" {
					t.Errorf("stdout %q", out.String())
				}
			})

			t.Run("tty: keystrokes before the size", func(t *testing.T) {
				// The size leaves the client only after its stdin did: on a
				// websocket (one ordered connection) it reaches the session
				// behind the keystrokes, which the session reads only once
				// it has the size.
				resp, err := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c1", Cmd: []string{"sh"}, Stdin: true, Stdout: true, Tty: true})
				if err != nil {
					t.Fatal(err)
				}
				typed := make(chan struct{})
				stdin := &signalReader{r: strings.NewReader("typed\n"), read: typed}
				var out bytes.Buffer
				if err := executor(t, transport, resp.Url).StreamWithContext(ctx, remotecommand.StreamOptions{
					Stdin: stdin, Stdout: &out, Tty: true, TerminalSizeQueue: &sizeAfter{ready: typed},
				}); err != nil {
					t.Fatal(err)
				}
				if out.String() != "ran sh in c1\nsize 123x45\ntyped\n" {
					t.Errorf("stdout %q", out.String())
				}
			})

			t.Run("exit code", func(t *testing.T) {
				resp, err := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c1", Cmd: []string{"fail"}, Stdout: true})
				if err != nil {
					t.Fatal(err)
				}
				err = executor(t, transport, resp.Url).StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: io.Discard})
				var exitErr utilexec.ExitError
				if !errors.As(err, &exitErr) || exitErr.ExitStatus() != 3 {
					t.Errorf("StreamWithContext = %v, want exit code 3", err)
				}
			})
		})
	}
}

func TestStreamingOverTLS(t *testing.T) {
	// Borrow httptest's self-signed certificate for 127.0.0.1.
	hs := httptest.NewUnstartedServer(nil)
	hs.StartTLS()
	cert := hs.TLS.Certificates[0]
	hs.Close()
	s := startStreamingServerWith(t, StreamingConfig{Addr: "127.0.0.1:0", TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	for _, transport := range remotecommandTransports {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			resp, err := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c1", Cmd: []string{"echo"}, Stdout: true})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(resp.Url, "https://") {
				t.Fatalf("URL %q is not https", resp.Url)
			}
			var out bytes.Buffer
			config := &rest.Config{TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
			if err := executorWith(t, config, transport, resp.Url).StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out}); err != nil {
				t.Fatal(err)
			}
			if out.String() != "ran echo in c1\n" {
				t.Errorf("stdout %q", out.String())
			}
		})
	}
}

func TestStreamingAttach(t *testing.T) {
	s := startStreamingServer(t)
	for _, transport := range remotecommandTransports {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			resp, err := s.GetAttach(&runtimeapi.AttachRequest{ContainerId: "c2", Stdin: true, Stdout: true, Stderr: true})
			if err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			if err := executor(t, transport, resp.Url).StreamWithContext(ctx, remotecommand.StreamOptions{
				Stdin: strings.NewReader("in\n"), Stdout: &out, Stderr: &errOut,
			}); err != nil {
				t.Fatal(err)
			}
			if out.String() != "ran attach in c2\nin\n" || errOut.String() != "to stderr\n" {
				t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
			}
		})
	}
}

func TestStreamingPortForward(t *testing.T) {
	s := startStreamingServer(t)
	for _, transport := range []string{"spdy", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			resp, err := s.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: "p1"})
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(resp.Url)
			if err != nil {
				t.Fatal(err)
			}
			var dialer httpstream.Dialer
			if transport == "spdy" {
				tr, upgrader, err := spdy.RoundTripperFor(&rest.Config{})
				if err != nil {
					t.Fatal(err)
				}
				dialer = spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: tr}, "POST", u)
			} else if dialer, err = portforward.NewSPDYOverWebsocketDialerForStreaming(u, &rest.Config{}); err != nil {
				t.Fatal(err)
			}
			stop, ready := make(chan struct{}), make(chan struct{})
			defer close(stop)
			var pfOut, pfErr bytes.Buffer
			pf, err := portforward.NewOnAddressesForStreaming(dialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, &pfOut, &pfErr)
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { errc <- pf.ForwardPorts() }()
			select {
			case <-ready:
			case err := <-errc:
				t.Fatalf("ForwardPorts: %v (%s)", err, pfErr.String())
			case <-time.After(10 * time.Second):
				t.Fatal("port-forward not ready")
			}
			ports, err := pf.GetPorts()
			if err != nil {
				t.Fatal(err)
			}
			conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "ping\n")
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil || line != "8080: ping\n" {
				t.Errorf("read %q, %v; want the pod's answer", line, err)
			}
		})
	}
}

func TestStreamingURLsAreSingleUse(t *testing.T) {
	s := startStreamingServer(t)
	for _, transport := range remotecommandTransports {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			resp, err := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c1", Cmd: []string{"true"}, Stdout: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := executor(t, transport, resp.Url).StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: io.Discard}); err != nil {
				t.Fatal(err)
			}
			if err := executor(t, transport, resp.Url).StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: io.Discard}); err == nil {
				t.Error("a used URL served a second session")
			}
		})
	}
	// A URL nobody handed out.
	resp, err := http.Get("http://" + s.Addr().String() + "/exec/nosuchtoken")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown token: %s, want 404", resp.Status)
	}
}

func TestStreamingSessionOptionsExpire(t *testing.T) {
	s := &StreamingServer{sessions: map[string]sessionOptions{}}
	s.remember("http://127.0.0.1:1/exec/tok1", streamOptions(true))
	s.sessions["old"] = sessionOptions{opts: streamOptions(true), expires: time.Now().Add(-time.Second)}
	if _, ok := s.take("old"); ok {
		t.Error("an expired session's options were served")
	}
	if o, ok := s.take("tok1"); !ok || !o.Stdout {
		t.Errorf("take(tok1) = %+v, %v", o, ok)
	}
	if _, ok := s.take("tok1"); ok {
		t.Error("a session's options were served twice")
	}
	s.sessions["stale"] = sessionOptions{expires: time.Now().Add(-time.Second)}
	s.remember("http://127.0.0.1:1/attach/tok2", streamOptions(false))
	if _, ok := s.sessions["stale"]; ok {
		t.Error("remember kept an expired entry")
	}
}

func TestSessionPath(t *testing.T) {
	for _, c := range []struct{ path, kind, token string }{
		{"/exec/abc", "exec", "abc"},
		{"/portforward/x-Y_z", "portforward", "x-Y_z"},
		{"/exec", "", ""},
		{"/exec/a/b", "", ""},
		{"/", "", ""},
	} {
		if kind, token := sessionPath(c.path); kind != c.kind || token != c.token {
			t.Errorf("sessionPath(%q) = %q, %q", c.path, kind, token)
		}
	}
}

func streamOptions(stdout bool) proxy.Options { return proxy.Options{Stdout: stdout} }

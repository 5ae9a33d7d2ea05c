package cri

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/containerd/log"
	"golang.org/x/sys/unix"
	utilproxy "k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apiserver/pkg/util/proxy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// StreamServer hands out the single-use URLs of streaming sessions
// (StreamingServer).
type StreamServer interface {
	GetExec(*runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error)
	GetAttach(*runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error)
	GetPortForward(*runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error)
}

var _ StreamServer = (*StreamingServer)(nil)

const (
	// DefaultStreamIdleTimeout ends a streaming session after this long
	// without traffic (kubelet's and containerd's default).
	DefaultStreamIdleTimeout = 4 * time.Hour
	// streamTokenTTL is how long a session URL stays valid: cri-streaming's
	// request cache expires tokens after a minute; the translation options
	// kept beside them live a little longer so that they never expire
	// first.
	streamTokenTTL = 2 * time.Minute
	// streamReadHeaderTimeout bounds how long a client takes to send a
	// request's headers.
	streamReadHeaderTimeout = 30 * time.Second
)

// StreamingConfig configures a StreamingServer.
type StreamingConfig struct {
	// Addr is the TCP host:port to listen on; port 0 picks a free port.
	Addr string
	// TLS, when set, serves https with its certificates.
	TLS *tls.Config
	// IdleTimeout ends a session without traffic; 0 means
	// DefaultStreamIdleTimeout.
	IdleTimeout time.Duration
}

// StreamingServer serves exec, attach and port-forward sessions with
// k8s.io/cri-streaming: SPDY (remotecommand v1 to v4, port-forward) and
// websocket up to remotecommand v4. In front of it, as kube-apiserver does
// in front of kubelet (k8s.io/apiserver/pkg/util/proxy), it translates
// what cri-streaming does not speak: websocket remotecommand v5 (the only
// protocol client-go's websocket executor offers) is served by a
// StreamTranslatorHandler that runs the session as a SPDY client of the
// cri-streaming server, and port-forward tunnelled as SPDY over a
// websocket is unwrapped by a TunnelingHandler. Those inner SPDY
// connections never leave the process: they go through socket pairs to a
// second, in-memory listener of the same handler.
//
// URLs are single-use and expire after a minute (cri-streaming's request
// cache).
type StreamingServer struct {
	inner    streaming.Server
	listener net.Listener
	server   *http.Server
	tls      bool

	// backend serves inner to the translators over socket pairs.
	backend       *pairListener
	backendServer *http.Server
	transport     *http.Transport

	mu sync.Mutex
	// sessions holds what the translator needs to know about a session
	// (cri-streaming keeps it privately), by token; mu guards it.
	sessions map[string]sessionOptions
}

// sessionOptions are a remotecommand session's streams, by token.
type sessionOptions struct {
	opts    proxy.Options
	expires time.Time
}

// NewStreamingServer listens on cfg.Addr; call Serve to serve sessions
// run by rt.
func NewStreamingServer(cfg StreamingConfig, rt streaming.Runtime) (*StreamingServer, error) {
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultStreamIdleTimeout
	}
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("streaming server: listening on %s: %w", cfg.Addr, err)
	}
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	sc := streaming.DefaultConfig
	sc.Addr = l.Addr().String()
	sc.BaseURL = &url.URL{Scheme: scheme, Host: l.Addr().String()}
	sc.StreamIdleTimeout = cfg.IdleTimeout
	inner, err := streaming.NewServer(sc, rt)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	backend := newPairListener()
	s := &StreamingServer{
		inner:    inner,
		listener: l,
		tls:      cfg.TLS != nil,
		backend:  backend,
		transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return backend.Dial(ctx) },
		},
		sessions: map[string]sessionOptions{},
	}
	s.server = &http.Server{Handler: s, TLSConfig: cfg.TLS, ReadHeaderTimeout: streamReadHeaderTimeout}
	s.backendServer = &http.Server{Handler: inner, ReadHeaderTimeout: streamReadHeaderTimeout}
	return s, nil
}

// Addr is the address the server listens on.
func (s *StreamingServer) Addr() net.Addr { return s.listener.Addr() }

// Serve serves sessions until Close; it returns nil after Close.
func (s *StreamingServer) Serve() error {
	go func() { _ = s.backendServer.Serve(s.backend) }()
	var err error
	if s.tls {
		err = s.server.ServeTLS(s.listener, "", "")
	} else {
		err = s.server.Serve(s.listener)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops accepting sessions and closes idle connections; sessions in
// progress (hijacked connections) end on their own.
func (s *StreamingServer) Close() error {
	err := s.server.Close()
	s.backendServer.Close()
	s.transport.CloseIdleConnections()
	return err
}

// GetExec returns the URL of an exec session.
func (s *StreamingServer) GetExec(req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	resp, err := s.inner.GetExec(req)
	if err != nil {
		return nil, err
	}
	s.remember(resp.GetUrl(), proxy.Options{Stdin: req.GetStdin(), Stdout: req.GetStdout(), Stderr: req.GetStderr(), Tty: req.GetTty()})
	return resp, nil
}

// GetAttach returns the URL of an attach session.
func (s *StreamingServer) GetAttach(req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	resp, err := s.inner.GetAttach(req)
	if err != nil {
		return nil, err
	}
	s.remember(resp.GetUrl(), proxy.Options{Stdin: req.GetStdin(), Stdout: req.GetStdout(), Stderr: req.GetStderr(), Tty: req.GetTty()})
	return resp, nil
}

// GetPortForward returns the URL of a port-forward session.
func (s *StreamingServer) GetPortForward(req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return s.inner.GetPortForward(req)
}

// ServeHTTP routes a session: websocket v5 remotecommand and tunnelled
// port-forward to their translators, everything else to cri-streaming.
func (s *StreamingServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	kind, token := sessionPath(req.URL.Path)
	switch {
	case (kind == "exec" || kind == "attach") && wsstream.IsWebSocketRequestWithStreamCloseProtocol(req):
		opts, ok := s.take(token)
		if !ok {
			http.NotFound(w, req)
			return
		}
		proxy.NewStreamTranslatorHandler(s.backendURL(kind, token), s.transport, 0, opts).ServeHTTP(w, req)
	case kind == "portforward" && wsstream.IsWebSocketRequestWithTunnelingProtocol(req):
		upgrade := utilproxy.NewUpgradeAwareHandler(s.backendURL(kind, token), s.transport, false, true, errorResponder{})
		proxy.NewTunnelingHandler(upgrade).ServeHTTP(w, req)
	default:
		// cri-streaming hands the runtime a stream for every channel of a
		// websocket (v1 to v4) session, requested or not, and one that is
		// not reads as an immediate end of file: tell the runtime which
		// were asked for.
		if opts, ok := s.take(token); ok {
			req = req.WithContext(context.WithValue(req.Context(), sessionStreamsKey{}, opts))
		}
		s.inner.ServeHTTP(w, req)
	}
}

// sessionStreamsKey holds a session's proxy.Options in its request context.
type sessionStreamsKey struct{}

// requestedStreams are the streams the session's request asked for, when
// known.
func requestedStreams(ctx context.Context) (proxy.Options, bool) {
	o, ok := ctx.Value(sessionStreamsKey{}).(proxy.Options)
	return o, ok
}

// backendURL is the session's URL on the in-memory backend.
func (s *StreamingServer) backendURL(kind, token string) *url.URL {
	return &url.URL{Scheme: "http", Host: "streaming.backend", Path: "/" + kind + "/" + token}
}

// remember keeps a remotecommand session's options for the translator.
func (s *StreamingServer) remember(sessionURL string, opts proxy.Options) {
	_, token := sessionPath(urlPath(sessionURL))
	if token == "" {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, o := range s.sessions {
		if now.After(o.expires) {
			delete(s.sessions, t)
		}
	}
	s.sessions[token] = sessionOptions{opts: opts, expires: now.Add(streamTokenTTL)}
}

// take removes and returns a session's options.
func (s *StreamingServer) take(token string) (proxy.Options, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.sessions[token]
	delete(s.sessions, token)
	if !ok || time.Now().After(o.expires) {
		return proxy.Options{}, false
	}
	return o.opts, true
}

// sessionPath splits "/KIND/TOKEN" (the path cri-streaming's URLs have).
func sessionPath(p string) (kind, token string) {
	p = strings.Trim(path.Clean(p), "/")
	kind, token, ok := strings.Cut(p, "/")
	if !ok || strings.Contains(token, "/") {
		return "", ""
	}
	return kind, token
}

func urlPath(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Path
}

// errorResponder answers a failed port-forward tunnel.
type errorResponder struct{}

func (errorResponder) Error(w http.ResponseWriter, req *http.Request, err error) {
	log.G(req.Context()).WithError(err).Warn("port-forward tunnel")
	http.Error(w, err.Error(), http.StatusBadGateway)
}

// pairListener is a net.Listener whose connections are made by Dial, as
// unix socket pairs: no address, no file, reachable only in-process.
type pairListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPairListener() *pairListener {
	return &pairListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

// Dial returns one end of a new socket pair and hands the other to Accept.
func (l *pairListener) Dial(ctx context.Context) (net.Conn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	client, err := fileConn(fds[0])
	if err != nil {
		unix.Close(fds[1])
		return nil, err
	}
	server, err := fileConn(fds[1])
	if err != nil {
		client.Close()
		return nil, err
	}
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		err = net.ErrClosed
	case <-ctx.Done():
		err = ctx.Err()
	}
	client.Close()
	server.Close()
	return nil, err
}

func fileConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "socketpair")
	defer f.Close()
	return net.FileConn(f)
}

func (l *pairListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pairListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pairListener) Addr() net.Addr { return pairAddr{} }

type pairAddr struct{}

func (pairAddr) Network() string { return "socketpair" }
func (pairAddr) String() string  { return "streaming.backend" }

package testregistry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Options configures Start.
type Options struct {
	// Addr is the loopback host:port to listen on; "" means 127.0.0.1:0 (a
	// free port). Addresses outside 127.0.0.0/8 and ::1 are refused.
	Addr string

	// Images maps image names (as Build returns them) to images; the
	// registry serves each at LoopbackPath(name). Nil means Build(ctx, Build).
	Images map[string]v1.Image
	// Build is passed to Build when Images is nil.
	Build BuildOptions

	// Auth, when set, is required for repositories under PrivatePrefix; nil
	// leaves them open like the rest.
	Auth *Credentials

	// Log receives one line per registry request; nil discards them.
	Log *log.Logger
}

// Server is a running loopback registry holding the image set. Its methods
// are safe for concurrent use.
type Server struct {
	addr   string
	images map[string]v1.Image
	srv    *http.Server
	done   chan error // receives Serve's result, then is closed
}

// Start serves opts.Images (or the built set) from an in-memory registry on
// a loopback address and returns once every image has been pushed under every
// name, so pulls can begin at once. The server runs until Close; ctx bounds
// only the start.
func Start(ctx context.Context, opts Options) (s *Server, retErr error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	images := opts.Images
	if images == nil {
		var err error
		if images, err = Build(ctx, opts.Build); err != nil {
			return nil, err
		}
	}
	logger := opts.Log
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	var handler http.Handler = ggcrregistry.New(ggcrregistry.Logger(logger))
	if opts.Auth != nil {
		handler = requireAuth(handler, *opts.Auth)
	}
	s = &Server{
		addr:   ln.Addr().String(),
		images: images,
		srv:    &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second},
		done:   make(chan error, 1),
	}
	go func() {
		s.done <- s.srv.Serve(ln)
		close(s.done)
	}()
	defer func() {
		if retErr != nil {
			_ = s.Close()
		}
	}()

	auth := authn.Anonymous
	if opts.Auth != nil {
		auth = &authn.Basic{Username: opts.Auth.Username, Password: opts.Auth.Password}
	}
	todo := map[name.Reference]remote.Taggable{}
	for n, img := range images {
		ref, err := s.reference(n)
		if err != nil {
			return nil, err
		}
		todo[ref] = img
	}
	if err := remote.MultiWrite(todo, remote.WithContext(ctx), remote.WithAuth(auth)); err != nil {
		return nil, fmt.Errorf("pushing images to %s: %w", s.addr, err)
	}
	return s, nil
}

// Addr returns the host:port the registry listens on.
func (s *Server) Addr() string { return s.addr }

// Images returns the images the registry serves, by name. The caller must
// not modify the map.
func (s *Server) Images() map[string]v1.Image { return s.images }

// Ref returns the reference under which the registry serves the image
// named ref (a name as Build returns them, or any other reference):
// Addr()/LoopbackPath(ref).
func (s *Server) Ref(ref string) (string, error) {
	p, err := LoopbackPath(ref)
	if err != nil {
		return "", err
	}
	return s.addr + "/" + p, nil
}

func (s *Server) reference(ref string) (name.Reference, error) {
	r, err := s.Ref(ref)
	if err != nil {
		return nil, err
	}
	return name.ParseReference(r, name.Insecure)
}

// Close stops the registry, waiting up to five seconds for requests in
// flight. Close is idempotent.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	if serveErr := <-s.done; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}

// checkLoopback refuses listen addresses outside the loopback network.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %s is not a loopback address", addr)
	}
	return nil
}

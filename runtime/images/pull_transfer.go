package images

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/streaming"
	streamproxy "github.com/containerd/containerd/v2/core/streaming/proxy"
	"github.com/containerd/containerd/v2/core/transfer"
	transferimage "github.com/containerd/containerd/v2/core/transfer/image"
	"github.com/containerd/containerd/v2/core/transfer/proxy"
	"github.com/containerd/containerd/v2/core/transfer/registry"
	"github.com/containerd/log"
	"github.com/containerd/platforms"
	"github.com/containerd/typeurl/v2"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// progressDrainTimeout bounds the wait, after the transfer returned, for
// its progress stream's last events (containerd closes the stream before
// it answers, but the two travel apart).
const progressDrainTimeout = 2 * time.Second

// transferred is what a transfer pull reports through its progress stream.
type transferred struct {
	// target is the descriptor the record of the pulled name points at,
	// or nil when the stream did not report it.
	target *ocispec.Descriptor
	// bytes is the size of the blobs fetched from the registry (blobs
	// already in the content store are not fetched).
	bytes int64
}

// transferPull has containerd's transfer service fetch name from its
// registry and unpack it for the snapshotter, and make the record of
// name. The registry is reached through the hosts directory (containerd
// reads it, so it must be the same path on containerd's side: slipwayd
// and its containerd share a node); creds, when not nil, are asked for
// over a stream of the transfer. The transfer unpacks only when its
// containerd's transfer configuration lists the snapshotter (containerd's
// default lists overlayfs); a layer it does not unpack is unpacked when a
// container or image volume first needs it (UnpackedChainID).
func (s *Service) transferPull(ctx context.Context, name string, creds Credentials) (transferred, error) {
	var ropts []registry.Opt
	if s.opts.HostsDir != "" {
		ropts = append(ropts, registry.WithHostDir(s.opts.HostsDir))
	}
	if creds != nil {
		ropts = append(ropts, registry.WithCredentials(credentialHelper(creds)))
	}
	src, err := registry.NewOCIRegistry(ctx, name, ropts...)
	if err != nil {
		return transferred{}, err
	}
	dst := transferimage.NewStore(name,
		transferimage.WithPlatforms(platforms.DefaultSpec()),
		transferimage.WithUnpack(platforms.DefaultSpec(), s.opts.Snapshotter))

	// The streams (progress, credentials) live as long as the transfer.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var progress pullProgress
	streams := &drainingCreator{StreamCreator: streamproxy.NewStreamCreator(s.opts.Client.Conn())}
	err = proxy.NewTransferrer(s.opts.Client.Conn(), streams).
		Transfer(ctx, src, dst, transfer.WithProgress(progress.observe(name)))
	if err != nil {
		return transferred{}, err
	}
	if !streams.drained(ctx, progressDrainTimeout) {
		log.G(ctx).WithField("image", name).Debug("pull progress stream did not end; the pulled-bytes count may be short")
	}
	return progress.collected(), nil
}

// credentialHelper answers the transfer service's credential requests.
type credentialHelper Credentials

func (c credentialHelper) GetCredentials(_ context.Context, _, host string) (registry.Credentials, error) {
	user, secret, err := c(host)
	return registry.Credentials{Host: host, Username: user, Secret: secret}, err
}

// pullProgress collects a transfer's progress events; mu guards all. A
// blob the transfer fetched ends "complete", or "extracted" for a layer
// it unpacked; a blob it found in the store is reported "already exists"
// first (and may then be extracted). Layers whose snapshots exist are
// neither fetched nor reported.
type pullProgress struct {
	mu       sync.Mutex
	target   *ocispec.Descriptor
	finished map[string]int64 // blob ref name: size
	existed  map[string]bool  // blob ref names found in the store
}

// observe returns the progress function of a pull of name.
func (p *pullProgress) observe(name string) transfer.ProgressFunc {
	return func(ev transfer.Progress) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.finished == nil {
			p.finished, p.existed = map[string]int64{}, map[string]bool{}
		}
		switch ev.Event {
		case "complete", "extracted":
			p.finished[ev.Name] = ev.Total
		case "already exists":
			p.existed[ev.Name] = true
		case "saved":
			if ev.Name == name && ev.Desc != nil {
				desc := *ev.Desc
				p.target = &desc
			}
		}
	}
}

// collected is what the events observed so far reported.
func (p *pullProgress) collected() transferred {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := transferred{target: p.target}
	for name, size := range p.finished {
		if !p.existed[name] {
			t.bytes += size
		}
	}
	return t
}

// drainingCreator creates a transfer's streams and keeps, for its
// progress stream, a channel closed when the stream ends (containerd
// closes it when the transfer is done). The transfer proxy names that
// stream "progress-..." (transfer/streaming.GenerateID); a stream named
// otherwise is not waited for.
type drainingCreator struct {
	streaming.StreamCreator
	mu    sync.Mutex
	ended []chan struct{} // mu guards ended
}

func (c *drainingCreator) Create(ctx context.Context, id string) (streaming.Stream, error) {
	s, err := c.StreamCreator.Create(ctx, id)
	if err != nil || !strings.HasPrefix(id, "progress-") {
		return s, err
	}
	ended := make(chan struct{})
	c.mu.Lock()
	c.ended = append(c.ended, ended)
	c.mu.Unlock()
	return &endNotifyingStream{Stream: s, ended: ended}, nil
}

// drained waits until every progress stream has ended, for at most
// timeout or until ctx ends, and reports whether they all ended.
func (c *drainingCreator) drained(ctx context.Context, timeout time.Duration) bool {
	c.mu.Lock()
	ended := c.ended
	c.mu.Unlock()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for _, e := range ended {
		select {
		case <-e:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// endNotifyingStream closes ended when a Recv fails (io.EOF at the end).
type endNotifyingStream struct {
	streaming.Stream
	once  sync.Once
	ended chan struct{}
}

func (s *endNotifyingStream) Recv() (typeurl.Any, error) {
	a, err := s.Stream.Recv()
	if err != nil {
		s.once.Do(func() { close(s.ended) })
	}
	return a, err
}

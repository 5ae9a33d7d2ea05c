package images

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/streaming"
	"github.com/containerd/containerd/v2/core/transfer"
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The pulled bytes are the sizes of the fetched blobs, not of those found
// in the store; the target is the one saved under the pulled name.
func TestPullProgressCountsFetchedBlobsAndTheSavedTarget(t *testing.T) {
	const name = "docker.io/library/busybox:1"
	target := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromString("index"), Size: 10}
	var p pullProgress
	observe := p.observe(name)
	for _, ev := range []transfer.Progress{
		{Event: "waiting", Name: "index", Total: 10},
		{Event: "waiting", Name: "layer-a", Total: 100},
		{Event: "downloading", Name: "layer-a", Progress: 50, Total: 100},
		{Event: "waiting", Name: "layer-b", Total: 7},
		{Event: "already exists", Name: "layer-b", Progress: 7, Total: 7},
		{Event: "complete", Name: "index", Progress: 10, Total: 10},
		{Event: "extracting", Name: "layer-a", Progress: 60, Total: 100},
		{Event: "extracted", Name: "layer-a", Progress: 100, Total: 100},
		{Event: "extracted", Name: "layer-b", Progress: 7, Total: 7},
		{Event: "saved", Name: "docker.io/library/busybox@sha256:other", Desc: &ocispec.Descriptor{Digest: digest.FromString("other")}},
		{Event: "saved", Name: name, Desc: &target},
	} {
		observe(ev)
	}
	got := p.collected()
	if got.bytes != 110 {
		t.Errorf("bytes = %d, want 110 (the fetched index and layer a, not the stored layer b)", got.bytes)
	}
	if got.target == nil || got.target.Digest != target.Digest {
		t.Errorf("target = %v, want %s", got.target, target.Digest)
	}

	var none pullProgress
	if got := none.collected(); got.target != nil || got.bytes != 0 {
		t.Errorf("no events collected %+v, want nothing", got)
	}
}

// fakeStream's Recv returns its messages, then end.
type fakeStream struct {
	msgs chan typeurl.Any
	end  chan struct{}
}

func (s *fakeStream) Send(typeurl.Any) error { return nil }
func (s *fakeStream) Close() error           { return nil }
func (s *fakeStream) Recv() (typeurl.Any, error) {
	select {
	case m := <-s.msgs:
		return m, nil
	case <-s.end:
		return nil, io.EOF
	}
}

type fakeCreator map[string]*fakeStream

func (c fakeCreator) Create(_ context.Context, id string) (streaming.Stream, error) {
	s := &fakeStream{msgs: make(chan typeurl.Any), end: make(chan struct{})}
	c[id] = s
	return s, nil
}

// drained waits for the progress stream to end, not for other streams.
func TestDrainingCreatorWaitsForTheProgressStreamOnly(t *testing.T) {
	ctx := context.Background()
	streams := fakeCreator{}
	c := &drainingCreator{StreamCreator: streams}
	progress, err := c.Create(ctx, "progress-1-abc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, "creds-2-def"); err != nil {
		t.Fatal(err)
	}
	// Before the progress stream ends, drained gives up at its timeout.
	if c.drained(ctx, time.Millisecond) {
		t.Fatal("drained before the progress stream ended")
	}
	close(streams["progress-1-abc"].end)
	if _, err := progress.Recv(); err != io.EOF {
		t.Fatalf("Recv = %v, want EOF", err)
	}
	// The credentials stream is still open: drained does not wait for it.
	if !c.drained(ctx, time.Minute) {
		t.Error("not drained after the progress stream ended")
	}
	// A cancelled context ends the wait too.
	c2 := &drainingCreator{StreamCreator: fakeCreator{}}
	if _, err := c2.Create(ctx, "progress-3-ghi"); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if c2.drained(cancelled, time.Minute) {
		t.Error("drained with a cancelled context and an open progress stream")
	}
}

package images

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/transfer"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeResolver serves blobs of given contents and records SetOptions.
type fakeResolver struct {
	remotes.Resolver
	blobs   map[string][]byte
	options int
}

func (f *fakeResolver) Fetcher(context.Context, string) (remotes.Fetcher, error) {
	return remotes.FetcherFunc(func(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
		r := bytes.NewReader(f.blobs[desc.MediaType])
		if desc.MediaType == "seekable" {
			return readSeekNopCloser{r}, nil
		}
		return io.NopCloser(r), nil
	}), nil
}

func (f *fakeResolver) SetOptions(options ...transfer.ImageResolverOption) { f.options += len(options) }

type readSeekNopCloser struct{ io.ReadSeeker }

func (readSeekNopCloser) Close() error { return nil }

func TestCountingResolverCountsFetchedBytes(t *testing.T) {
	inner := &fakeResolver{blobs: map[string][]byte{"plain": make([]byte, 1000), "seekable": make([]byte, 500)}}
	var counted int
	r := countingResolver{Resolver: inner, add: func(n int) { counted += n }}

	r.SetOptions(transfer.WithMaxConcurrentDownloads(2))
	if inner.options != 1 {
		t.Error("SetOptions did not reach the wrapped resolver")
	}
	f, err := r.Fetcher(context.Background(), "ref")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := f.Fetch(context.Background(), ocispec.Descriptor{MediaType: "plain"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	if counted != 1000 {
		t.Errorf("counted %d bytes, want 1000", counted)
	}

	// A seekable body stays seekable (content.Copy resumes by seeking),
	// and only the bytes read count.
	rc, err = f.Fetch(context.Background(), ocispec.Descriptor{MediaType: "seekable"})
	if err != nil {
		t.Fatal(err)
	}
	s, ok := rc.(io.Seeker)
	if !ok {
		t.Fatal("a seekable body lost io.Seeker")
	}
	if _, err := s.Seek(200, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	if counted != 1300 {
		t.Errorf("counted %d bytes, want 1300", counted)
	}
}

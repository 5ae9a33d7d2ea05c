package images

import (
	"context"
	"io"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/transfer"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// countingResolver is a resolver whose fetchers report every byte they
// read from the registry to add (the pull-bytes metric): content already
// on the node is never fetched, so this counts what a pull downloads.
type countingResolver struct {
	remotes.Resolver
	add func(n int)
}

var _ remotes.ResolverWithOptions = countingResolver{}

func (r countingResolver) Fetcher(ctx context.Context, ref string) (remotes.Fetcher, error) {
	f, err := r.Resolver.Fetcher(ctx, ref)
	if err != nil {
		return nil, err
	}
	return remotes.FetcherFunc(func(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
		rc, err := f.Fetch(ctx, desc)
		if err != nil {
			return nil, err
		}
		counted := countingReader{ReadCloser: rc, add: r.add}
		if s, ok := rc.(io.Seeker); ok {
			// content.Copy resumes a partial download by seeking.
			return countingReadSeeker{countingReader: counted, Seeker: s}, nil
		}
		return counted, nil
	}), nil
}

// SetOptions passes the pull's download settings (concurrency, limits) to
// the wrapped resolver.
func (r countingResolver) SetOptions(options ...transfer.ImageResolverOption) {
	if o, ok := r.Resolver.(remotes.ResolverWithOptions); ok {
		o.SetOptions(options...)
	}
}

type countingReader struct {
	io.ReadCloser
	add func(n int)
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.add(n)
	return n, err
}

type countingReadSeeker struct {
	countingReader
	io.Seeker
}

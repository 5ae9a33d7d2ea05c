package images

import (
	"context"
	"io"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/errdefs/pkg/errgrpc"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// sizedContent is containerd's content service as a content.Provider
// that reads a blob in one Read call when its descriptor gives its size.
// containerd's proxy provider asks Info for the size first, one more
// round trip per blob; a descriptor's size is trusted as containerd's
// unpacker and the image walks trust it (a blob is verified against its
// digest and size when written). A descriptor without a size goes
// through Provider.
type sizedContent struct {
	content.Provider
	client contentapi.ContentClient
}

func (c sizedContent) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	if desc.Size <= 0 {
		return c.Provider.ReaderAt(ctx, desc)
	}
	return &sizedReaderAt{ctx: ctx, desc: desc, client: c.client}, nil
}

// sizedReaderAt reads desc's blob through containerd's content service;
// a missing blob is an errdefs.ErrNotFound from ReadAt.
type sizedReaderAt struct {
	ctx    context.Context
	desc   ocispec.Descriptor
	client contentapi.ContentClient
}

func (r *sizedReaderAt) Size() int64  { return r.desc.Size }
func (r *sizedReaderAt) Close() error { return nil }

func (r *sizedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	// The stream's context must end when the read does.
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	stream, err := r.client.Read(ctx, &contentapi.ReadContentRequest{
		Digest: r.desc.Digest.String(), Offset: off, Size: int64(len(p)),
	})
	if err != nil {
		return 0, errgrpc.ToNative(err)
	}
	n := 0
	for n < len(p) {
		resp, err := stream.Recv()
		if err == io.EOF {
			return n, io.EOF
		}
		if err != nil {
			return n, errgrpc.ToNative(err)
		}
		n += copy(p[n:], resp.Data)
	}
	return n, nil
}

package cri

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/slipway-dev/slipway/runtime/images"
)

// fakeImages is an ImageService over a fixed set of images; err, when set,
// is returned by every call.
type fakeImages struct {
	byRef map[string]images.Image
	err   error
	// pulledCreds records the credentials the last Pull got.
	pulledCreds images.Credentials
	removed     []string
}

var _ ImageService = (*fakeImages)(nil)

func (f *fakeImages) Pull(_ context.Context, ref string, creds images.Credentials) (images.Image, error) {
	f.pulledCreds = creds
	if f.err != nil {
		return images.Image{}, f.err
	}
	return f.Get(ref)
}

func (f *fakeImages) Get(ref string) (images.Image, error) {
	if f.err != nil {
		return images.Image{}, f.err
	}
	img, ok := f.byRef[ref]
	if !ok {
		return images.Image{}, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
	}
	return img, nil
}

func (f *fakeImages) List() []images.Image {
	var out []images.Image
	seen := map[string]bool{}
	for _, img := range f.byRef {
		if !seen[img.ID] {
			seen[img.ID] = true
			out = append(out, img)
		}
	}
	return out
}

func (f *fakeImages) Remove(_ context.Context, ref string) error {
	f.removed = append(f.removed, ref)
	return f.err
}

func (f *fakeImages) Usage(context.Context) (images.Usage, error) {
	return images.Usage{Mountpoint: "/snapshots", Bytes: 10, Inodes: 2}, f.err
}

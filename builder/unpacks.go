package builder

import (
	"context"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/log"
)

// unpackTimeout bounds one background unpack.
const unpackTimeout = 10 * time.Minute

// backgroundUnpacks unpacks built images for the node's snapshotter after
// their builds have returned, so that a build's caller does not wait for
// the unpack (standalone BuildKit does not unpack at all by default).
//
// Contract: nothing depends on an unpack here finishing. The image record
// and all its content are stored before the build returns; whoever needs
// the snapshots first (CreateContainer, image volumes) unpacks the image
// itself if they are not there yet, and containerd settles two unpacks of
// one image racing (the second finds the snapshots existing). An unpack
// holds its own containerd lease, so a crash mid-unpack leaves nothing
// that GC keeps for good.
type backgroundUnpacks struct {
	client      *containerd.Client
	snapshotter string
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

// newBackgroundUnpacks unpacks through client (whose default namespace is
// the node's) for snapshotter. It owns client: close closes it.
func newBackgroundUnpacks(client *containerd.Client, snapshotter string) *backgroundUnpacks {
	ctx, cancel := context.WithCancel(context.Background())
	return &backgroundUnpacks{client: client, snapshotter: snapshotter, ctx: ctx, cancel: cancel}
}

// unpackLater starts unpacking the image record name; a failure is logged.
func (u *backgroundUnpacks) unpackLater(name string) {
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		ctx, cancel := context.WithTimeout(u.ctx, unpackTimeout)
		defer cancel()
		if err := u.unpack(ctx, name); err != nil && u.ctx.Err() == nil {
			log.G(ctx).WithError(err).WithField("image", name).Warn("unpacking built image; a pod of it unpacks it at creation")
		}
	}()
}

func (u *backgroundUnpacks) unpack(ctx context.Context, name string) error {
	img, err := u.client.GetImage(ctx, name)
	if err != nil {
		return err
	}
	if ok, err := img.IsUnpacked(ctx, u.snapshotter); err == nil && ok {
		return nil
	}
	return img.Unpack(ctx, u.snapshotter)
}

// close cancels the unpacks going, waits for them to return and closes the
// client. It is safe on a nil *backgroundUnpacks.
func (u *backgroundUnpacks) close() {
	if u == nil {
		return
	}
	u.cancel()
	u.wg.Wait()
	_ = u.client.Close()
}

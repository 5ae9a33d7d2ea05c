package images

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/platforms"
)

// pausingRecords is a fakeRecords whose Get of one name, after reading the
// record, signals got and waits for resume: the window in which a Refresh
// has read containerd but not yet applied what it read.
type pausingRecords struct {
	*fakeRecords
	name   string
	paused atomic.Bool
	got    chan struct{}
	resume chan struct{}
}

func (p *pausingRecords) Get(ctx context.Context, name string) (images.Image, error) {
	rec, err := p.fakeRecords.Get(ctx, name)
	if name == p.name {
		if p.paused.CompareAndSwap(false, true) { // pause only the first Get
			close(p.got)
			<-p.resume
		}
	}
	return rec, err
}

// TestIndexRefreshAppliesInReadOrder: a Refresh that read a record before
// its deletion (an image event handled late) must not apply after the
// Refresh that read the deletion, or the index keeps a deleted image.
func TestIndexRefreshAppliesInReadOrder(t *testing.T) {
	ctx := context.Background()
	_, records, store := newTestIndex(t)
	manifest, _ := testImage(t, store, "a")
	const name = "docker.io/library/app:1"
	records.Create(ctx, images.Image{Name: name, Target: manifest})
	paused := &pausingRecords{fakeRecords: records, name: name, got: make(chan struct{}), resume: make(chan struct{})}
	x := NewIndex(paused, store, platforms.Default())

	stale := make(chan error, 1)
	go func() { stale <- x.Refresh(ctx, name) }()
	<-paused.got // the first Refresh has read the record
	records.Delete(ctx, name)
	fresh := make(chan error, 1)
	go func() { fresh <- x.Refresh(ctx, name) }()
	select {
	case err := <-fresh:
		t.Fatalf("second Refresh finished (%v) while the first had not applied", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(paused.resume)
	for _, c := range []chan error{stale, fresh} {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	if list := x.List(); len(list) != 0 {
		t.Errorf("index holds %v after the record was deleted, want nothing", list)
	}
}

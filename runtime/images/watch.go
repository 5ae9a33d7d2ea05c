package images

import (
	"context"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
)

// Watch keeps the index current with image changes made by anyone else on
// the same containerd namespace (the builder, ctr, another client). It
// resubscribes and resyncs after the event stream breaks (containerd
// restarted) and returns when ctx is done.
func (s *Service) Watch(ctx context.Context, namespace string) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		s.watchOnce(ctx, namespace)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
		if err := s.index.Sync(ctx); err != nil {
			log.G(ctx).WithError(err).Debug("image index resync failed; retrying")
			continue
		}
		backoff = 100 * time.Millisecond
	}
}

// watchOnce applies image events until the stream ends.
func (s *Service) watchOnce(ctx context.Context, namespace string) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	envelopes, errs := s.opts.Client.EventService().Subscribe(ctx,
		`topic~="^/images/"`, `namespace==`+namespace)
	// Events may have been missed before the subscription started.
	if err := s.index.Sync(ctx); err != nil {
		log.G(ctx).WithError(err).Debug("image index sync failed")
	}
	for {
		select {
		case env, open := <-envelopes:
			if !open || env == nil {
				return
			}
			name, ok := imageEventName(env.Event)
			if !ok {
				continue
			}
			if err := s.index.Refresh(ctx, name); err != nil {
				log.G(ctx).WithError(err).WithField("image", name).Debug("refreshing image from event")
			}
		case err := <-errs:
			if err != nil && ctx.Err() == nil {
				log.G(ctx).WithError(err).Debug("image event stream ended")
			}
			return
		}
	}
}

// imageEventName is the image name an /images/ event is about.
func imageEventName(event typeurl.Any) (string, bool) {
	if event == nil {
		return "", false
	}
	v, err := typeurl.UnmarshalAny(event)
	if err != nil {
		return "", false
	}
	switch e := v.(type) {
	case *apievents.ImageCreate:
		return e.Name, true
	case *apievents.ImageUpdate:
		return e.Name, true
	case *apievents.ImageDelete:
		return e.Name, true
	}
	return "", false
}

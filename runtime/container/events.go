package container

import (
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Event is one container lifecycle change.
type Event struct {
	Type        runtimeapi.ContainerEventType
	ContainerID string
	PodID       string
	Time        time.Time
}

// subscriberBuffer is how many events a slow subscriber may fall behind
// before it is dropped (kubelet then relists, as it does on any stream end).
const subscriberBuffer = 1024

// Events fans container events out to subscribers.
type Events struct {
	mu sync.Mutex
	// subs are the open subscriptions; mu guards it.
	subs map[chan Event]struct{}
}

// NewEvents returns an Events with no subscribers.
func NewEvents() *Events { return &Events{subs: map[chan Event]struct{}{}} }

// Subscribe returns a channel of events from now on and a cancel function.
// The channel is closed by cancel, or when the subscriber falls too far
// behind.
func (e *Events) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, subscriberBuffer)
	e.mu.Lock()
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	return ch, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if _, ok := e.subs[ch]; ok {
			delete(e.subs, ch)
			close(ch)
		}
	}
}

// Publish sends ev to every subscriber without blocking.
func (e *Events) Publish(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.subs {
		select {
		case ch <- ev:
		default:
			delete(e.subs, ch)
			close(ch)
		}
	}
}

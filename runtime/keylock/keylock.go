// Package keylock provides mutexes named by string keys, made on first use
// and dropped when no one holds or waits for them.
package keylock

import (
	"context"
	"slices"
	"sync"
)

// Locks is a set of mutexes named by string keys (image repositories,
// record names, pods). The zero value is ready to use.
type Locks struct {
	mu sync.Mutex
	// locks maps a key to its mutex; mu guards it and every users count.
	locks map[string]*keyLock
}

// keyLock is one key's mutex: a token in a one-slot channel.
type keyLock struct {
	token chan struct{}
	// users counts holders and waiters; Locks.mu guards it.
	users int
}

// Lock acquires every key, in sorted order so that callers locking several
// keys cannot deadlock, and returns the function that releases them. It
// gives up with ctx's error, holding nothing, when ctx is done first.
func (k *Locks) Lock(ctx context.Context, keys ...string) (unlock func(), err error) {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	held := make([]string, 0, len(keys))
	release := func() {
		for _, key := range held {
			k.release(key)
		}
	}
	for _, key := range keys {
		l := k.join(key)
		select {
		case l.token <- struct{}{}:
			held = append(held, key)
		case <-ctx.Done():
			k.leave(key)
			release()
			return nil, ctx.Err()
		}
	}
	return release, nil
}

// join returns key's mutex, counting the caller as a user.
func (k *Locks) join(key string) *keyLock {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l, ok := k.locks[key]
	if !ok {
		l = &keyLock{token: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.users++
	return l
}

// release unlocks key and stops counting the caller as a user.
func (k *Locks) release(key string) {
	k.mu.Lock()
	l := k.locks[key]
	k.mu.Unlock()
	<-l.token
	k.leave(key)
}

// leave stops counting the caller as a user of key, dropping the mutex when
// it was the last.
func (k *Locks) leave(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.locks[key]
	l.users--
	if l.users == 0 {
		delete(k.locks, key)
	}
}

// size is the number of keys with holders or waiters.
func (k *Locks) size() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.locks)
}

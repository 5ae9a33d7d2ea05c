package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// record is what slipway needs to undo a pod's networking. Setup writes it
// before the first ADD and Teardown removes it after the last successful
// DEL, so DEL runs with the config, CNI_ARGS and capability args the ADD
// ran with, even after a partial ADD failure (for which libcni caches
// nothing) or a change of the conf dir. libcni's own cache, in the same
// CacheDir, still supplies the prevResult of every complete ADD.
type record struct {
	ID             string                     `json:"id"`
	NetNS          string                     `json:"netns"`
	Args           [][2]string                `json:"cniArgs"`
	CapabilityArgs map[string]json.RawMessage `json:"capabilityArgs,omitempty"`
	// Attachments are in Setup's order: the loopback, then the pod network.
	Attachments []attachment `json:"attachments"`
}

// attachment is one network list attached to the pod on one interface.
type attachment struct {
	Network string          `json:"network"`
	IfName  string          `json:"ifName"`
	Config  json.RawMessage `json:"config"` // self-contained conflist
	// PartialResult is the result of the last plugin that succeeded in an
	// ADD that failed later in the list: the prevResult its DEL needs.
	PartialResult json.RawMessage `json:"partialResult,omitempty"`
}

// recordDir is where records live, one file per pod.
func recordDir(cacheDir string) string { return filepath.Join(cacheDir, "pods") }

func recordPath(cacheDir, id string) string {
	return filepath.Join(recordDir(cacheDir), id+".json")
}

// writeRecord replaces the pod's record atomically (a crash leaves the old
// or the new one). It does not fsync: the network state it describes does
// not survive a power loss either, except host-local's IP files.
func writeRecord(cacheDir string, rec *record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	dir := recordDir(cacheDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+rec.ID+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), recordPath(cacheDir, rec.ID))
}

// readRecord returns the pod's record, or nil when there is none.
func readRecord(cacheDir, id string) (*record, error) {
	data, err := os.ReadFile(recordPath(cacheDir, id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec := &record{}
	if err := json.Unmarshal(data, rec); err != nil {
		return nil, fmt.Errorf("corrupt network record %s: %w", recordPath(cacheDir, id), err)
	}
	return rec, nil
}

func removeRecord(cacheDir, id string) error {
	err := os.Remove(recordPath(cacheDir, id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// recordIDs lists the pods that have a record.
func recordIDs(cacheDir string) ([]string, error) {
	entries, err := os.ReadDir(recordDir(cacheDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		name := e.Name()
		if e.Type().IsRegular() && !strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".json") {
			ids = append(ids, strings.TrimSuffix(name, ".json"))
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// podLocks serialises Setup, Teardown and Check of one pod; different pods
// run in parallel.
type podLocks struct {
	mu    sync.Mutex
	locks map[string]*podLock // mu guards locks
}

type podLock struct {
	sync.Mutex
	refs int // podLocks.mu guards refs
}

// lock locks id and returns its unlock.
func (l *podLocks) lock(id string) func() {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*podLock{}
	}
	pl := l.locks[id]
	if pl == nil {
		pl = &podLock{}
		l.locks[id] = pl
	}
	pl.refs++
	l.mu.Unlock()

	pl.Lock()
	return func() {
		pl.Unlock()
		l.mu.Lock()
		if pl.refs--; pl.refs == 0 {
			delete(l.locks, id)
		}
		l.mu.Unlock()
	}
}

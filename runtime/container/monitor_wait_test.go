package container

import "testing"

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Stop waits for recorded, Remove and pod stop for done: a recorded exit
// wakes the first only, and disarm (task deleted, or container gone)
// wakes both, however often the exit was marked recorded.
func TestMonitorRecordedBeforeDone(t *testing.T) {
	r := &Runtime{monitors: map[string]*monitor{}}
	m := &monitor{recorded: make(chan struct{}), done: make(chan struct{})}
	r.monitors["c"] = m
	m.markRecorded()
	m.markRecorded()
	if !closed(m.recorded) || closed(m.done) {
		t.Fatalf("after the record: recorded closed %v, done closed %v; want true, false", closed(m.recorded), closed(m.done))
	}
	r.disarm("c", m)
	if !closed(m.done) || r.monitorOf("c") != nil {
		t.Fatal("disarm left done open or the monitor armed")
	}

	// A container that goes away unrecorded wakes both at once.
	gone := &monitor{recorded: make(chan struct{}), done: make(chan struct{})}
	r.monitors["d"] = gone
	r.disarm("d", gone)
	if !closed(gone.recorded) || !closed(gone.done) {
		t.Fatal("disarm of an unrecorded monitor left a waiter asleep")
	}
}

// Package timing breaks a runtime call down into timed steps and logs them
// at debug level in one line, so a benchmark's daemon log shows where a
// call's time goes (StartContainer: shim and runc, logger, record writes;
// PullImage: fetch and unpack, records, index). It costs nothing when debug
// logging is off.
package timing

import (
	"context"
	"time"

	"github.com/containerd/log"
)

// Spans times the steps of one call. A nil *Spans (debug logging off)
// records nothing; all methods are safe on it. Spans is not safe for
// concurrent use: time overlapped work from the goroutine that waits for it.
type Spans struct {
	entry *log.Entry
	start time.Time
	last  time.Time
	steps log.Fields
}

// Start begins timing call op, or returns nil when ctx's logger does not
// log at debug level.
func Start(ctx context.Context, op string) *Spans {
	entry := log.G(ctx)
	if !entry.Logger.IsLevelEnabled(log.DebugLevel) {
		return nil
	}
	now := time.Now()
	return &Spans{entry: entry.WithField("op", op), start: now, last: now, steps: log.Fields{}}
}

// Step records the time since the previous step (or Start) as step name;
// a repeated name adds up.
func (s *Spans) Step(name string) {
	if s == nil {
		return
	}
	s.StepAt(name, time.Now())
}

// StepAt records a step that ended at now (taken by another goroutine, for
// instance); a now before the previous step's end counts as zero.
func (s *Spans) StepAt(name string, now time.Time) {
	if s == nil {
		return
	}
	if now.Before(s.last) {
		now = s.last
	}
	d := now.Sub(s.last)
	if prev, ok := s.steps[name].(time.Duration); ok {
		d += prev
	}
	s.steps[name] = d
	s.last = now
}

// End logs the steps and the total at debug level.
func (s *Spans) End() {
	if s == nil {
		return
	}
	s.entry.WithFields(s.steps).WithField("total", time.Since(s.start)).Debug("timing")
}

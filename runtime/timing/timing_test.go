package timing

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/containerd/log"
)

// withLevel sets the level of containerd/log's logger (the standard
// logrus logger) and its output for one test.
func withLevel(t *testing.T, level log.Level, out *bytes.Buffer) context.Context {
	logger := log.L.Logger
	oldLevel, oldOut := logger.GetLevel(), logger.Out
	logger.SetLevel(level)
	logger.SetOutput(out)
	t.Cleanup(func() { logger.SetLevel(oldLevel); logger.SetOutput(oldOut) })
	return log.WithLogger(context.Background(), log.L)
}

func TestSpansOffAtInfo(t *testing.T) {
	ctx := withLevel(t, log.InfoLevel, &bytes.Buffer{})
	s := Start(ctx, "op")
	if s != nil {
		t.Fatal("Start returned spans with debug logging off")
	}
	// A nil *Spans records nothing and does not panic.
	s.Step("a")
	s.StepAt("b", time.Now())
	s.End()
}

func TestSpansLogStepsAtDebug(t *testing.T) {
	var buf bytes.Buffer
	ctx := withLevel(t, log.DebugLevel, &buf)
	s := Start(ctx, "PullImage")
	if s == nil {
		t.Fatal("Start returned nil with debug logging on")
	}
	s.Step("lock")
	s.StepAt("resolve", s.last.Add(-time.Second)) // before the last step: zero
	s.Step("lock")                                // repeated: adds up
	if d := s.steps["resolve"].(time.Duration); d != 0 {
		t.Errorf("a step ending before the previous one took %v, want 0", d)
	}
	s.End()
	out := buf.String()
	for _, want := range []string{"msg=timing", "op=PullImage", "lock=", "resolve=0s", "total="} {
		if !strings.Contains(out, want) {
			t.Errorf("log line %q lacks %q", out, want)
		}
	}
}

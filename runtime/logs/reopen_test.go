package logs

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// fakeLogger plays the logger inside the test process: it owns a pid file
// and answers SIGUSR1 (sent to the test process by Reopen) with answer.
type fakeLogger struct {
	pid    *PIDFile
	sigs   chan os.Signal
	served chan struct{}
}

func startFakeLogger(t *testing.T, pidPath string, answer func(*PIDFile)) *fakeLogger {
	t.Helper()
	l := &fakeLogger{sigs: make(chan os.Signal, 1), served: make(chan struct{})}
	// Subscribe before the pid file exists, as the logger does. The
	// subscription is kept after the test: a late SIGUSR1 must not kill
	// the test binary.
	signal.Notify(l.sigs, unix.SIGUSR1)
	p, err := CreatePIDFile(pidPath)
	if err != nil {
		t.Fatal(err)
	}
	l.pid = p
	go func() {
		defer close(l.served)
		if _, ok := <-l.sigs; ok {
			answer(p)
		}
	}()
	t.Cleanup(func() {
		signal.Stop(l.sigs)
		close(l.sigs)
		<-l.served
		if l.pid.f != nil {
			l.pid.Remove()
		}
	})
	return l
}

func TestReopenConfirmed(t *testing.T) {
	pidPath := filepath.Join(t.TempDir(), "logger.pid")
	startFakeLogger(t, pidPath, func(p *PIDFile) {
		if err := p.Ack(nil); err != nil {
			t.Error(err)
		}
	})
	b, err := os.ReadFile(pidPath)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("pid file = %q, %v", b, err)
	}
	before, _ := os.Stat(pidPath)
	if err := Reopen(context.Background(), pidPath); err != nil {
		t.Fatalf("Reopen: %v", err)
	}
	after, err := os.Stat(pidPath)
	if err != nil || os.SameFile(before, after) {
		t.Errorf("pid file not replaced (%v)", err)
	}
}

func TestReopenReportsLoggerError(t *testing.T) {
	pidPath := filepath.Join(t.TempDir(), "logger.pid")
	startFakeLogger(t, pidPath, func(p *PIDFile) {
		p.Ack(errors.New("open container log: permission denied"))
	})
	err := Reopen(context.Background(), pidPath)
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("Reopen error = %v, want the logger's error", err)
	}
}

func TestReopenTimesOut(t *testing.T) {
	pidPath := filepath.Join(t.TempDir(), "logger.pid")
	startFakeLogger(t, pidPath, func(*PIDFile) {}) // never confirms
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := Reopen(ctx, pidPath); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Reopen error = %v, want DeadlineExceeded", err)
	}
}

func TestReopenNoticesLoggerDeath(t *testing.T) {
	pidPath := filepath.Join(t.TempDir(), "logger.pid")
	startFakeLogger(t, pidPath, func(p *PIDFile) {
		// Dies without confirming: the lock goes, the file stays.
		p.f.Close()
		p.f = nil
	})
	start := time.Now()
	err := Reopen(context.Background(), pidPath)
	if !errors.Is(err, ErrLoggerGone) {
		t.Errorf("Reopen error = %v, want ErrLoggerGone", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Reopen took %v to notice", d)
	}
}

func TestReopenLoggerGone(t *testing.T) {
	dir := t.TempDir()

	err := Reopen(context.Background(), filepath.Join(dir, "none.pid"))
	if !errors.Is(err, ErrLoggerGone) || !errdefs.IsFailedPrecondition(err) {
		t.Errorf("missing pid file: error = %v", err)
	}

	// A stale file naming this very process: Reopen must not signal it
	// (SIGUSR1's default action would kill the test binary).
	stale := filepath.Join(dir, "stale.pid")
	if err := os.WriteFile(stale, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Reopen(context.Background(), stale); !errors.Is(err, ErrLoggerGone) {
		t.Errorf("stale pid file: error = %v", err)
	}

	// A logger that exited cleanly removed its file.
	removed := filepath.Join(dir, "removed.pid")
	p, err := CreatePIDFile(removed)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(removed); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file still there after Remove: %v", err)
	}
	if err := Reopen(context.Background(), removed); !errors.Is(err, ErrLoggerGone) {
		t.Errorf("removed pid file: error = %v", err)
	}
}

func TestCreatePIDFileRefusesLiveOwner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logger.pid")
	p, err := CreatePIDFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Remove()
	if _, err := CreatePIDFile(path); err == nil {
		t.Error("a second logger took over a live pid file")
	}

	// A stale file is taken over.
	stale := filepath.Join(t.TempDir(), "stale.pid")
	os.WriteFile(stale, []byte("1\n"), 0o644)
	q, err := CreatePIDFile(stale)
	if err != nil {
		t.Fatalf("stale pid file: %v", err)
	}
	q.Remove()
}

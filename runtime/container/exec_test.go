package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestCappedBuffer(t *testing.T) {
	for _, tc := range []struct {
		writes []string
		limit  int
		want   string
	}{
		{writes: []string{"abc"}, limit: 5, want: "abc"},
		{writes: []string{"abc", "de"}, limit: 5, want: "abcde"},
		{writes: []string{"abc", "def"}, limit: 5, want: "abcde" + TruncationMarker},
		{writes: []string{"abcdef", "g"}, limit: 3, want: "abc" + TruncationMarker},
		{writes: []string{"", ""}, limit: 3, want: ""},
	} {
		b := &cappedBuffer{limit: tc.limit}
		for _, w := range tc.writes {
			if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("Write(%q) = %d, %v", w, n, err)
			}
		}
		if got := string(b.Bytes()); got != tc.want {
			t.Errorf("%v limit %d: got %q, want %q", tc.writes, tc.limit, got, tc.want)
		}
	}
}

func TestCappedBufferAtRealLimit(t *testing.T) {
	b := &cappedBuffer{limit: MaxExecOutput}
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for range 20 {
		b.Write(chunk)
	}
	got := b.Bytes()
	if len(got) != MaxExecOutput+len(TruncationMarker) || !strings.HasSuffix(string(got), TruncationMarker) {
		t.Errorf("20 MiB written: kept %d bytes, want %d plus the marker", len(got), MaxExecOutput)
	}
}

// fakeProcess is a containerd.Process whose calls can fail or never
// answer, as when a shim hangs or containerd is gone. Methods an exec does
// not call are left to the nil embedded interface (they panic).
type fakeProcess struct {
	containerd.Process

	startErr error
	// exitOnStart, when set, is what Wait delivers once the process starts.
	exitOnStart *containerd.ExitStatus
	killErr     error
	// exitOnKill makes a kill deliver exit 137 (with killErr too, as when
	// the process had exited already); without it Wait never reports the
	// exit.
	exitOnKill bool
	// deleteHangs makes Delete wait for its context to end.
	deleteHangs bool

	exits    chan containerd.ExitStatus
	killed   atomic.Int32
	waitDone chan struct{} // closed when Wait's context ended
	deleted  chan struct{} // closed when Delete was called
	once     sync.Once
}

func (p *fakeProcess) init() *fakeProcess {
	p.exits = make(chan containerd.ExitStatus, 1)
	p.waitDone, p.deleted = make(chan struct{}), make(chan struct{})
	return p
}

func (p *fakeProcess) ID() string { return "exec1" }
func (p *fakeProcess) IO() cio.IO { return nil }

func (p *fakeProcess) Start(context.Context) error {
	if p.startErr != nil {
		return p.startErr
	}
	if p.exitOnStart != nil {
		p.exits <- *p.exitOnStart
	}
	return nil
}

func (p *fakeProcess) Wait(ctx context.Context) (<-chan containerd.ExitStatus, error) {
	c := make(chan containerd.ExitStatus, 1)
	go func() {
		select {
		case s := <-p.exits:
			c <- s
		case <-ctx.Done():
			close(p.waitDone)
			c <- *containerd.NewExitStatus(containerd.UnknownExitStatus, time.Time{}, ctx.Err())
		}
	}()
	return c, nil
}

func (p *fakeProcess) Kill(context.Context, syscall.Signal, ...containerd.KillOpts) error {
	p.killed.Add(1)
	if p.exitOnKill {
		p.exits <- *containerd.NewExitStatus(137, time.Now(), nil)
	}
	return p.killErr
}

func (p *fakeProcess) Delete(ctx context.Context, _ ...containerd.ProcessDeleteOpts) (*containerd.ExitStatus, error) {
	p.once.Do(func() { close(p.deleted) })
	if p.deleteHangs {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return containerd.NewExitStatus(0, time.Now(), nil), nil
}

// fakeTask is an execer that hands out its process and keeps the spec.
type fakeTask struct {
	proc *fakeProcess
	spec *specs.Process
}

func (t *fakeTask) Exec(_ context.Context, _ string, spec *specs.Process, _ cio.Creator) (containerd.Process, error) {
	t.spec = spec
	return t.proc, nil
}

func TestExecWaitsAreBounded(t *testing.T) {
	lost := containerd.NewExitStatus(containerd.UnknownExitStatus, time.Time{}, status.Error(codes.Unavailable, "connection lost"))
	for _, c := range []struct {
		name     string
		proc     *fakeProcess
		syncOnly bool          // the case needs ExecSync's timeout
		timeout  time.Duration // ExecSync's
		cancel   bool          // the caller gives up after 50 ms
		bounds   execBounds    // zero: 30 s each, longer than any case may take
		wantCode int32
		wantErr  error
		wantNote bool // the error says the process may still run
	}{
		{name: "exits", proc: &fakeProcess{exitOnStart: containerd.NewExitStatus(3, time.Now(), nil)}, wantCode: 3},
		{name: "timeout: killed", syncOnly: true, timeout: 50 * time.Millisecond,
			proc: &fakeProcess{exitOnKill: true}, wantErr: context.DeadlineExceeded},
		{name: "timeout: kill fails, wait never returns", syncOnly: true, timeout: 50 * time.Millisecond,
			proc:    &fakeProcess{killErr: fmt.Errorf("connection refused: %w", errdefs.ErrUnavailable), deleteHangs: true},
			wantErr: context.DeadlineExceeded, wantNote: true},
		{name: "timeout: killed, exit never reported", syncOnly: true, timeout: 50 * time.Millisecond,
			proc: &fakeProcess{deleteHangs: true}, bounds: execBounds{kill: 200 * time.Millisecond, delete: 30 * time.Second},
			wantErr: context.DeadlineExceeded, wantNote: true},
		{name: "cancelled: kill fails, wait never returns", cancel: true,
			proc:    &fakeProcess{killErr: fmt.Errorf("connection refused: %w", errdefs.ErrUnavailable), deleteHangs: true},
			wantErr: context.Canceled, wantNote: true},
		{name: "cancelled: already exited", cancel: true,
			proc: &fakeProcess{killErr: fmt.Errorf("process: %w", errdefs.ErrNotFound), exitOnKill: true}, wantErr: context.Canceled},
		{name: "connection to containerd lost", proc: &fakeProcess{exitOnStart: lost}, wantErr: errdefs.ErrUnavailable},
		{name: "start fails", proc: &fakeProcess{startErr: fmt.Errorf("exec: no such file: %w", errdefs.ErrNotFound)}, wantErr: errdefs.ErrNotFound},
	} {
		for _, mode := range []string{"ExecSync", "Exec"} {
			if c.syncOnly && mode == "Exec" {
				continue
			}
			t.Run(mode+": "+c.name, func(t *testing.T) {
				proc := (&fakeProcess{
					startErr: c.proc.startErr, exitOnStart: c.proc.exitOnStart, killErr: c.proc.killErr,
					exitOnKill: c.proc.exitOnKill, deleteHangs: c.proc.deleteHangs,
				}).init()
				bounds := c.bounds
				if bounds == (execBounds{}) {
					bounds = execBounds{kill: 30 * time.Second, delete: 30 * time.Second}
				}
				run := execRun{task: &fakeTask{proc: proc}, spec: &specs.Process{Args: []string{"sh"}}, bounds: bounds}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if c.cancel {
					time.AfterFunc(50*time.Millisecond, cancel)
				}
				start := time.Now()
				var code int32
				var err error
				if mode == "ExecSync" {
					var res ExecResult
					res, err = run.sync(ctx, c.timeout)
					code = res.ExitCode
				} else {
					code, err = run.stream(ctx, Streams{Stdout: io.Discard})
				}
				if took := time.Since(start); took > 5*time.Second {
					t.Errorf("returned after %s", took)
				}
				if c.wantErr == nil && (err != nil || code != c.wantCode) {
					t.Fatalf("got %d, %v; want exit code %d", code, err, c.wantCode)
				}
				if c.wantErr != nil && !errors.Is(err, c.wantErr) {
					t.Fatalf("got %d, %v; want an error that is %v", code, err, c.wantErr)
				}
				if note := err != nil && strings.Contains(err.Error(), "may still run"); note != c.wantNote {
					t.Errorf("error %v: says the process may still run: %v, want %v", err, note, c.wantNote)
				}
				if (c.timeout > 0 || c.cancel) && proc.killed.Load() != 1 {
					t.Errorf("killed %d times, want once", proc.killed.Load())
				}
				if c.wantErr == context.DeadlineExceeded && errors.Is(err, errdefs.ErrUnavailable) {
					t.Errorf("a timeout's error %v also has the kill's class", err)
				}
				for what, ch := range map[string]chan struct{}{"deleted": proc.deleted, "wait ended": proc.waitDone} {
					if what == "wait ended" && c.proc.startErr == nil {
						continue
					}
					select {
					case <-ch:
					case <-time.After(5 * time.Second):
						t.Errorf("the exec process was not %s", what)
					}
				}
			})
		}
	}
}

func TestExecProcessSpec(t *testing.T) {
	env := []string{"PATH=/bin"}
	for _, c := range []struct {
		name    string
		spec    *oci.Spec
		wantErr error
	}{
		{name: "no spec", spec: nil, wantErr: errdefs.ErrFailedPrecondition},
		{name: "no process", spec: &oci.Spec{}, wantErr: errdefs.ErrFailedPrecondition},
		{name: "process", spec: &oci.Spec{Process: &specs.Process{Args: []string{"sleep"}, Env: env, Cwd: "/w"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := execProcessSpec("c1", c.spec)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) || !strings.Contains(err.Error(), "c1") {
					t.Fatalf("err = %v, want %v naming the container", err, c.wantErr)
				}
				return
			}
			if err != nil || p.Cwd != "/w" || !reflect.DeepEqual(p.Env, env) {
				t.Fatalf("got %+v, %v", p, err)
			}
			p.Env[0] = "PATH=/x"
			p.Args = nil
			if env[0] != "PATH=/bin" || c.spec.Process.Args == nil {
				t.Error("the copy shares its settings with the container's spec")
			}
		})
	}
}

package container

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/cio"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestStdinCloserCallsOnEndOnce(t *testing.T) {
	for _, c := range []struct {
		name string
		r    io.Reader
	}{
		{"end of file", strings.NewReader("abc")},
		{"broken connection", io.MultiReader(strings.NewReader("abc"), errReader{errors.New("reset")})},
	} {
		calls := 0
		s := &stdinCloser{r: c.r, onEnd: func() { calls++ }}
		b, _ := io.ReadAll(s)
		_, _ = s.Read(make([]byte, 1))
		if string(b) != "abc" || calls != 1 {
			t.Errorf("%s: read %q, onEnd called %d times", c.name, b, calls)
		}
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestClientWriterReportsAGoneClientOnce(t *testing.T) {
	p := &ioProgress{}
	gone := 0
	fail := true
	w := p.writer(writerFunc(func(b []byte) (int, error) {
		if fail {
			return 0, errors.New("broken pipe")
		}
		return len(b), nil
	}), func() { gone++ })
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("the write error was swallowed")
	}
	fail = false
	if _, err := w.Write([]byte("y")); err == nil {
		t.Error("a write after the client failed went through")
	}
	if gone != 1 {
		t.Errorf("gone called %d times", gone)
	}
	if p.idleFor() > time.Minute {
		t.Error("writes did not count as progress")
	}
	if p.writer(nil, nil) != nil {
		t.Error("a nil stream was wrapped")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// blockingIO is a cio.IO whose output ends when done is closed or it is
// cancelled.
type blockingIO struct {
	done      chan struct{}
	once      sync.Once
	cancelled bool
}

func (b *blockingIO) Config() cio.Config { return cio.Config{} }
func (b *blockingIO) Cancel() {
	b.cancelled = true
	b.once.Do(func() { close(b.done) })
}
func (b *blockingIO) Wait()        { <-b.done }
func (b *blockingIO) Close() error { return nil }

func TestDrainIO(t *testing.T) {
	const idle = 200 * time.Millisecond
	t.Run("output that ends", func(t *testing.T) {
		pio := &blockingIO{done: make(chan struct{})}
		p := &ioProgress{}
		p.touch()
		time.AfterFunc(50*time.Millisecond, func() { close(pio.done) })
		if !drainIO(pio, p, idle) || pio.cancelled {
			t.Error("output that ended was cancelled")
		}
	})
	t.Run("pipes held open by a background child", func(t *testing.T) {
		pio := &blockingIO{done: make(chan struct{})}
		p := &ioProgress{}
		p.touch()
		start := time.Now()
		if drainIO(pio, p, idle) || !pio.cancelled || time.Since(start) > 5*idle {
			t.Errorf("cancelled %v after %s", pio.cancelled, time.Since(start))
		}
	})
	t.Run("output still flowing to a slow client", func(t *testing.T) {
		pio := &blockingIO{done: make(chan struct{})}
		p := &ioProgress{}
		p.touch()
		stop := make(chan struct{})
		go func() {
			tick := time.NewTicker(idle / 4)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					p.touch()
				}
			}
		}()
		time.AfterFunc(4*idle, func() { close(stop); pio.once.Do(func() { close(pio.done) }) })
		drainIO(pio, p, idle)
		if pio.cancelled {
			t.Error("output that kept moving was cut off")
		}
	})
}

func TestSetEnv(t *testing.T) {
	env := []string{"PATH=/bin", "TERM=dumb", "TERMINAL=x"}
	got := setEnv(env, "TERM", "xterm")
	want := []string{"PATH=/bin", "TERMINAL=x", "TERM=xterm"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("setEnv = %q, want %q", got, want)
	}
	if env[1] != "TERM=dumb" {
		t.Error("setEnv changed its input")
	}
}

func TestHandleResizeSkipsEmptySizes(t *testing.T) {
	sizes := make(chan TerminalSize)
	var mu sync.Mutex
	var got [][2]uint32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	handleResize(ctx, sizes, func(_ context.Context, w, h uint32) error {
		mu.Lock()
		got = append(got, [2]uint32{w, h})
		mu.Unlock()
		return nil
	})
	sizes <- TerminalSize{Width: 80, Height: 24}
	sizes <- TerminalSize{}
	sizes <- TerminalSize{Width: 100, Height: 30}
	close(sizes)
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(got, [][2]uint32{{80, 24}, {100, 30}}) {
		t.Errorf("resized to %v", got)
	}
}

func TestAttachFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "attach")
	r := &Runtime{opts: Options{AttachDir: dir}}
	withStdin := Container{ID: "c1", Config: &runtimeapi.ContainerConfig{Stdin: true}}
	p, err := r.prepareAttach(withStdin)
	if err != nil {
		t.Fatal(err)
	}
	if p.Socket != filepath.Join(dir, "c1.sock") || p.Stdin != filepath.Join(dir, "c1.stdin") || p.Stdout == "" || p.Stderr == "" {
		t.Errorf("paths %+v", p)
	}
	st, err := os.Stat(p.Stdin)
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 || st.Mode().Perm() != 0o600 {
		t.Errorf("stdin FIFO: %v, %v", st, err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("attach dir: %v, %v", st, err)
	}
	// A stale FIFO from an earlier start is replaced.
	if _, err := r.prepareAttach(withStdin); err != nil {
		t.Fatal(err)
	}
	r.cleanupAttach(context.Background(), "c1")
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left %d files", len(entries))
	}

	if p, _ := r.prepareAttach(Container{ID: "c2", Config: &runtimeapi.ContainerConfig{}}); p.Stdin != "" || p.Socket == "" {
		t.Errorf("container without stdin: %+v", p)
	}
	off := &Runtime{}
	if p, _ := off.prepareAttach(withStdin); p != (AttachPaths{}) {
		t.Errorf("attach disabled: %+v", p)
	}
}

func TestFirstSize(t *testing.T) {
	sizes := func(s ...TerminalSize) <-chan TerminalSize {
		c := make(chan TerminalSize, len(s))
		for _, size := range s {
			c <- size
		}
		return c
	}
	closed := make(chan TerminalSize)
	close(closed)
	for _, c := range []struct {
		name   string
		sizes  <-chan TerminalSize
		cancel bool
		want   TerminalSize
		wantOK bool
	}{
		{name: "size at once", sizes: sizes(TerminalSize{Width: 100, Height: 30}), want: TerminalSize{Width: 100, Height: 30}, wantOK: true},
		{name: "empty sizes skipped", sizes: sizes(TerminalSize{}, TerminalSize{Width: 5}, TerminalSize{Width: 80, Height: 24}), want: TerminalSize{Width: 80, Height: 24}, wantOK: true},
		{name: "none in time", sizes: sizes()},
		{name: "closed", sizes: closed},
		{name: "no channel", sizes: nil},
		{name: "session ended", sizes: sizes(), cancel: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wait := 100 * time.Millisecond
			if c.cancel {
				cancel()
				wait = time.Hour
			}
			got, ok := firstSize(ctx, c.sizes, wait)
			if got != c.want || ok != c.wantOK {
				t.Errorf("firstSize = %v, %v; want %v, %v", got, ok, c.want, c.wantOK)
			}
		})
	}
}

func TestSetExecSpec(t *testing.T) {
	sized := make(chan TerminalSize, 1)
	sized <- TerminalSize{Width: 100, Height: 30}
	noSize := make(chan TerminalSize)
	close(noSize)
	for _, c := range []struct {
		name         string
		streams      Streams
		wantTerminal bool
		wantSize     *specs.Box
		wantTERM     bool
	}{
		{name: "no terminal", streams: Streams{Resize: sized}},
		{name: "terminal with its first size", streams: Streams{TTY: true, Resize: sized}, wantTerminal: true, wantTERM: true,
			wantSize: &specs.Box{Width: 100, Height: 30}},
		{name: "terminal, no size sent", streams: Streams{TTY: true, Resize: noSize}, wantTerminal: true, wantTERM: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &specs.Process{Args: []string{"sleep", "1"}, CommandLine: "sleep 1", Env: []string{"PATH=/bin"}}
			setExecSpec(context.Background(), p, []string{"sh"}, c.streams, time.Hour)
			if !reflect.DeepEqual(p.Args, []string{"sh"}) || p.CommandLine != "" || p.Terminal != c.wantTerminal {
				t.Errorf("args %q, command line %q, terminal %v", p.Args, p.CommandLine, p.Terminal)
			}
			if !reflect.DeepEqual(p.ConsoleSize, c.wantSize) {
				t.Errorf("console size %+v, want %+v", p.ConsoleSize, c.wantSize)
			}
			if hasTERM := slices.Contains(p.Env, "TERM=xterm"); hasTERM != c.wantTERM {
				t.Errorf("env %q", p.Env)
			}
		})
	}
}

package logs

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAttachFanoutDeliversBothStreamsUntilClose(t *testing.T) {
	for _, name := range []struct{ desc, dir string }{
		{"short path", t.TempDir()},
		{"path over the sockaddr_un limit", longDir(t)},
	} {
		t.Run(name.desc, func(t *testing.T) {
			path := filepath.Join(name.dir, strings.Repeat("c", 64)+".sock")
			fan, err := ListenAttach(path)
			if err != nil {
				t.Fatal(err)
			}
			if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("socket mode: %v, %v", st, err)
			}
			ctx := context.Background()
			// Output before the subscription is not replayed.
			fan.Writer(Stdout).Write([]byte("before\n"))
			c, err := DialAttach(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fan.Writer(Stdout).Write([]byte("out 1\n"))
			fan.Writer(Stderr).Write([]byte("err 1\n"))
			fan.Writer(Stdout).Write([]byte("out 2"))
			var stdout, stderr bytes.Buffer
			done := make(chan error, 1)
			go func() { done <- c.Copy(&stdout, &stderr) }()
			if err := fan.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Copy = %v, want nil at the end of the output", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Copy did not end after Close")
			}
			if stdout.String() != "out 1\nout 2" || stderr.String() != "err 1\n" {
				t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("socket left behind: %v", err)
			}
		})
	}
}

func TestAttachSlowClientIsCutOffWithoutBlockingWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.sock")
	fan, err := ListenAttach(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fan.Close()
	slow, err := DialAttach(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	// Never read from slow: once the socket buffers fill, its queue grows
	// past the limit.
	chunk := bytes.Repeat([]byte("x"), 64*1024)
	start := time.Now()
	for written := 0; written < 8*attachClientBuffer; written += len(chunk) {
		fan.Writer(Stdout).Write(chunk)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("writing took %s: a slow client blocked the writer", d)
	}
	fan.mu.Lock()
	n := len(fan.clients)
	fan.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for n != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		fan.mu.Lock()
		n = len(fan.clients)
		fan.mu.Unlock()
	}
	if n != 0 {
		t.Fatalf("%d clients still subscribed, want the slow one dropped", n)
	}
	// The dropped client sees its stream end with an error or a short
	// read, never a hang.
	done := make(chan error, 1)
	go func() { done <- slow.Copy(nil, nil) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the dropped client's Copy did not return")
	}
}

func TestAttachStoppedWriterEndsCopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.sock")
	fan, err := ListenAttach(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fan.Close()
	c, err := DialAttach(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fan.Writer(Stdout).Write([]byte("hello"))
	failing := writerFunc(func(p []byte) (int, error) { return 0, errors.New("client gone") })
	err = c.Copy(failing, nil)
	var we *WriteError
	if !errors.As(err, &we) {
		t.Fatalf("Copy = %v, want a *WriteError", err)
	}
}

func TestDialAttachWithoutLogger(t *testing.T) {
	dir := t.TempDir()
	if _, err := DialAttach(context.Background(), filepath.Join(dir, "none.sock")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing socket: %v, want fs.ErrNotExist", err)
	}
	// A stale socket file with no listener behind it.
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := DialAttach(context.Background(), stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale socket: %v, want fs.ErrNotExist", err)
	}
}

func TestAttachArgRoundTrips(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "logger")
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	args := LoggerArgs{Path: filepath.Join(dir, "c.log"), PIDFile: filepath.Join(dir, "c.pid"), Attach: filepath.Join(dir, "c.sock")}
	uri, err := LogURI(bin, args)
	if err != nil {
		t.Fatal(err)
	}
	var argv []string
	for k, vs := range uri.Query() {
		argv = append(argv, k, vs[0])
	}
	got, err := ParseLoggerArgs(argv)
	if err != nil {
		t.Fatal(err)
	}
	if got != args {
		t.Errorf("parsed %+v, want %+v", got, args)
	}
	if _, err := ParseLoggerArgs([]string{ArgPath, "/l", ArgPIDFile, "/p", ArgAttach, "rel.sock"}); err == nil {
		t.Error("a relative attach path was accepted")
	}
}

// longDir is a directory whose socket paths do not fit in sockaddr_un.
func longDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

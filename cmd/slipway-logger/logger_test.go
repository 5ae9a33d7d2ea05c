package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/runtime/logs"
)

// testDirs makes a pod log directory and a run directory and returns the
// logger arguments for them.
func testDirs(t *testing.T) logs.LoggerArgs {
	t.Helper()
	dir := t.TempDir()
	podLogs := filepath.Join(dir, "pods", "default_web_uid", "app")
	run := filepath.Join(dir, "run")
	for _, d := range []string{podLogs, run} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return logs.LoggerArgs{Path: filepath.Join(podLogs, "0.log"), PIDFile: filepath.Join(run, "logger.pid")}
}

func startLogger(t *testing.T, args logs.LoggerArgs) *shimIO {
	t.Helper()
	uri, err := logs.LogURI(loggerBinary, args)
	if err != nil {
		t.Fatal(err)
	}
	s, err := startLikeShim(t, uri)
	if err != nil {
		t.Fatalf("%v; logger stderr: %s", err, s.stderr.String())
	}
	return s
}

func TestLoggerLifecycleLikeShim(t *testing.T) {
	args := testDirs(t)
	args.MaxLineSize = 8
	s := startLogger(t, args)

	// Ready means: the log file exists and the pid file names the logger.
	if _, err := os.Stat(args.Path); err != nil {
		t.Errorf("log file after ready: %v", err)
	}
	if b, err := os.ReadFile(args.PIDFile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(s.cmd.Process.Pid) {
		t.Errorf("pid file = %q, %v; logger pid %d", b, err, s.cmd.Process.Pid)
	}

	s.run(t, `echo out1; echo err1 >&2; echo 0123456789ab; printf 'cr\r\n'; echo; `+
		`i=0; while [ $i -lt 300 ]; do echo "o$i"; echo "e$i" >&2; i=$((i+1)); done`)
	var wantOut, wantErr []string
	wantOut = append(wantOut, "F out1", "P 01234567", "F 89ab", "F cr", "F ")
	wantErr = append(wantErr, "F err1")
	for i := range 300 {
		wantOut = append(wantOut, fmt.Sprintf("F o%d", i))
		wantErr = append(wantErr, fmt.Sprintf("F e%d", i))
	}
	waitForEntries(t, args.Path, wantOut, wantErr)
	t.Logf("logger RSS after 600 lines: %s", s.rss())

	// kubelet's rotation: rename, then ReopenContainerLog.
	rotated := args.Path + ".20260101-000000"
	if err := os.Rename(args.Path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := logs.Reopen(context.Background(), args.PIDFile); err != nil {
		t.Fatalf("Reopen: %v", err)
	}
	if _, err := os.Stat(args.Path); err != nil {
		t.Fatalf("no new log file when Reopen returned: %v", err)
	}
	s.run(t, `echo after; echo aftererr >&2; printf tail`)
	waitForEntries(t, args.Path, []string{"F after"}, []string{"F aftererr"})
	waitForEntries(t, rotated, wantOut, wantErr) // unchanged

	// Task delete: the unterminated "tail" is written, then a clean exit.
	if err := s.closeLikeShim(t); err != nil {
		t.Fatalf("logger exit: %v; stderr: %s", err, s.stderr.String())
	}
	waitForEntries(t, args.Path, []string{"F after", "P tail"}, []string{"F aftererr"})
	if _, err := os.Stat(args.PIDFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pid file left behind: %v", err)
	}
	if err := logs.Reopen(context.Background(), args.PIDFile); !errors.Is(err, logs.ErrLoggerGone) {
		t.Errorf("Reopen after exit = %v, want ErrLoggerGone", err)
	}
}

func TestLoggerFailsBeforeReady(t *testing.T) {
	args := testDirs(t)
	uri, err := logs.LogURI(loggerBinary, args)
	if err != nil {
		t.Fatal(err)
	}
	// The directory goes away between LogURI and the shim starting us.
	if err := os.RemoveAll(filepath.Dir(args.Path)); err != nil {
		t.Fatal(err)
	}
	s, err := startLikeShim(t, uri)
	if err == nil {
		t.Fatal("the shim would start the container without a logger")
	}
	exitErr := s.wait(t, 5*time.Second)
	if code := exitCode(exitErr); code != 1 {
		t.Errorf("exit code %d (%v), want 1", code, exitErr)
	}
	if !strings.Contains(s.stderr.String(), "log directory does not exist") {
		t.Errorf("stderr = %q", s.stderr.String())
	}
	if _, err := os.Stat(args.PIDFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pid file written by a failed logger: %v", err)
	}
}

// TestLoggerSIGTERMWithPipeStillOpen covers a process that keeps the
// container's stdout open past task delete: SIGTERM still ends the logger
// quickly, after writing what the pipe held.
func TestLoggerSIGTERMWithPipeStillOpen(t *testing.T) {
	args := testDirs(t)
	s := startLogger(t, args)
	if _, err := s.outW.WriteString("line\npartial"); err != nil {
		t.Fatal(err)
	}
	waitForEntries(t, args.Path, []string{"F line"}, nil)
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := s.wait(t, 5*time.Second); err != nil {
		t.Fatalf("logger exit: %v; stderr: %s", err, s.stderr.String())
	}
	if d := time.Since(start); d > drainGrace+time.Second {
		t.Errorf("logger took %v to exit after SIGTERM", d)
	}
	waitForEntries(t, args.Path, []string{"F line", "P partial"}, nil)
}

// TestLoggerTTY follows the shim's terminal path: output comes on stdout,
// and the stderr pipe's write end is never closed. Stderr is still read, so
// a container wrongly marked tty does not get EPIPE.
func TestLoggerTTY(t *testing.T) {
	args := testDirs(t)
	args.TTY = true
	s := startLogger(t, args)
	if _, err := s.outW.WriteString("a\r\nb\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.errW.WriteString("e\n"); err != nil {
		t.Fatalf("stderr write with tty=true: %v", err)
	}
	waitForEntries(t, args.Path, []string{"F a", "F b"}, []string{"F e"})
	s.outW.Close() // the terminal closed; errW stays open
	if err := s.wait(t, 5*time.Second); err != nil {
		t.Fatalf("logger exit: %v; stderr: %s", err, s.stderr.String())
	}
}

// waitForEntries waits until the file at path holds exactly the given
// entries per stream ("TAG content", in order), parsing every line.
func waitForEntries(t *testing.T, path string, stdout, stderr []string) {
	t.Helper()
	want := fmt.Sprint(stdout, stderr)
	var got string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		entries, err := logs.ReadEntries(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		per := map[logs.Stream][]string{}
		for _, e := range entries {
			tag := logs.TagFull
			if e.Partial {
				tag = logs.TagPartial
			}
			per[e.Stream] = append(per[e.Stream], tag+" "+string(e.Content))
		}
		got = fmt.Sprint(per[logs.Stdout], per[logs.Stderr])
		if got == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s:\n got %.500q\nwant %.500q", path, got, want)
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err == nil {
		return 0
	}
	return -1
}

package logs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shimContractLogger is a logger binary honouring the shim's contract: it reports
// ready on fd 5, then copies fd 3 to the "path" argument, writes its
// environment to path.env and, at the end of its input, creates path.done.
const shimContractLogger = `#!/bin/sh
while [ $# -gt 1 ]; do
	[ "$1" = path ] && out=$2
	shift 2
done
env | grep CONTAINER_ | sort >"$out.env"
printf '\000' >&5
exec 5>&-
cat <&3 >"$out"
touch "$out.done"
`

func TestFIFOLoggerRunsTheLoggerOnFIFOs(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "logger")
	if err := os.WriteFile(bin, []byte(shimContractLogger), 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "c.log")
	stdout, stderr := filepath.Join(dir, "c.stdout"), filepath.Join(dir, "c.stderr")
	l, err := StartFIFOLogger(bin, LoggerArgs{Path: logPath, PIDFile: filepath.Join(dir, "c.pid")}, "cid", "k8s.io", stdout, stderr)
	if err != nil {
		t.Fatal(err)
	}
	// The shim's side: open the FIFOs for writing, write, close.
	for _, p := range []string{stdout, stderr} {
		w, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if p == stdout {
			w.WriteString("hello\n")
		}
		w.Close()
	}
	// Until Release, the logger does not see the end of its input.
	time.Sleep(100 * time.Millisecond)
	if b, _ := os.ReadFile(logPath); string(b) != "hello\n" {
		t.Fatalf("log %q before release", b)
	}
	if _, err := os.Stat(logPath + ".done"); err == nil {
		t.Fatal("the logger's input ended before Release")
	}
	l.Release()
	l.Release()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(logPath + ".done"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the logger's input did not end after Release")
		}
		time.Sleep(10 * time.Millisecond)
	}
	env, err := os.ReadFile(logPath + ".env")
	if err != nil || string(env) != "CONTAINER_ID=cid\nCONTAINER_NAMESPACE=k8s.io\n" {
		t.Errorf("logger environment %q, %v", env, err)
	}
}

func TestFIFOLoggerThatNeverGetsReady(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "logger")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := StartFIFOLogger(bin, LoggerArgs{Path: filepath.Join(dir, "c.log"), PIDFile: filepath.Join(dir, "c.pid")}, "cid", "ns",
		filepath.Join(dir, "c.stdout"), filepath.Join(dir, "c.stderr"))
	if err == nil || !strings.Contains(err.Error(), "ready") {
		t.Errorf("StartFIFOLogger = %v, want a not-ready error", err)
	}
}

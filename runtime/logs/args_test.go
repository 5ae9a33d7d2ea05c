package logs

import (
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
)

func TestLogURIMatchesContainerdAndRoundTrips(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "pods", "ns_pod uid&x=1")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := writeExecutable(t, filepath.Join(dir, "bin dir", "slipway-logger"))
	for _, args := range []LoggerArgs{
		{Path: filepath.Join(logDir, "0.log"), PIDFile: filepath.Join(dir, "logger.pid")},
		{Path: filepath.Join(logDir, "0.log"), PIDFile: filepath.Join(dir, "p&d=1.pid"), TTY: true, MaxLineSize: 1024},
		{Path: filepath.Join(logDir, "0.log"), PIDFile: filepath.Join(dir, "logger.pid"), MaxLineSize: -1},
	} {
		u, err := LogURI(bin, args)
		if err != nil {
			t.Fatalf("LogURI(%+v): %v", args, err)
		}

		// Same URI as containerd's own generator, but for the scheme.
		want, err := cio.LogURIGenerator("binary", bin, queryMap(args))
		if err != nil {
			t.Fatal(err)
		}
		want.Scheme = URIScheme
		if u.String() != want.String() {
			t.Errorf("LogURI = %s, cio.LogURIGenerator = %s", u, want)
		}

		// What the shim does with it (process.NewBinaryCmd).
		parsed, err := url.Parse(u.String())
		if err != nil {
			t.Fatal(err)
		}
		if parsed.Path != bin {
			t.Errorf("the shim would run %q, want %q", parsed.Path, bin)
		}
		var argv []string
		for k, vs := range parsed.Query() {
			argv = append(argv, k, vs[0])
		}
		got, err := ParseLoggerArgs(argv)
		if err != nil {
			t.Fatalf("ParseLoggerArgs(%q): %v", argv, err)
		}
		if !reflect.DeepEqual(got, args) {
			t.Errorf("round trip: got %+v, want %+v", got, args)
		}
	}
}

func TestLogURIErrors(t *testing.T) {
	dir := t.TempDir()
	bin := writeExecutable(t, filepath.Join(dir, "slipway-logger"))
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ok := LoggerArgs{Path: filepath.Join(dir, "0.log"), PIDFile: filepath.Join(dir, "logger.pid")}
	for _, tc := range []struct {
		name   string
		binary string
		mutate func(*LoggerArgs)
		want   error
	}{
		{"relative binary", "slipway-logger", nil, errdefs.ErrInvalidArgument},
		{"missing binary", filepath.Join(dir, "nope"), nil, errdefs.ErrFailedPrecondition},
		{"binary not executable", plain, nil, errdefs.ErrFailedPrecondition},
		{"binary is a directory", dir, nil, errdefs.ErrFailedPrecondition},
		{"relative path", bin, func(a *LoggerArgs) { a.Path = "0.log" }, errdefs.ErrInvalidArgument},
		{"empty pidfile", bin, func(a *LoggerArgs) { a.PIDFile = "" }, errdefs.ErrInvalidArgument},
		{"missing log dir", bin, func(a *LoggerArgs) { a.Path = filepath.Join(dir, "x", "0.log") }, errdefs.ErrFailedPrecondition},
		{"log dir is a file", bin, func(a *LoggerArgs) { a.Path = filepath.Join(plain, "0.log") }, errdefs.ErrFailedPrecondition},
		{"missing pid dir", bin, func(a *LoggerArgs) { a.PIDFile = filepath.Join(dir, "x", "p") }, errdefs.ErrFailedPrecondition},
		{"bad max line size", bin, func(a *LoggerArgs) { a.MaxLineSize = -2 }, errdefs.ErrInvalidArgument},
	} {
		args := ok
		if tc.mutate != nil {
			tc.mutate(&args)
		}
		_, err := LogURI(tc.binary, args)
		if !isKind(err, tc.want) {
			t.Errorf("%s: error = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestParseLoggerArgsErrors(t *testing.T) {
	base := []string{"path", "/l/0.log", "pidfile", "/run/p"}
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{nil, "absolute"},
		{[]string{"path"}, "pairs"},
		{append(base, "colour", "red"), "unknown argument"},
		{append(base, "path", "/x"), "twice"},
		{append(base, "tty", "maybe"), "tty"},
		{append(base, "max-line-size", "big"), "max-line-size"},
		{[]string{"path", "/l/0.log"}, "pidfile"},
	} {
		_, err := ParseLoggerArgs(tc.argv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseLoggerArgs(%q) error = %v, want one containing %q", tc.argv, err, tc.want)
		}
	}
}

// queryMap is args' query as the map cio.BinaryIO takes.
func queryMap(a LoggerArgs) map[string]string {
	m := map[string]string{}
	for k, vs := range a.query() {
		m[k] = vs[0]
	}
	return m
}

func isKind(err, kind error) bool {
	switch kind {
	case errdefs.ErrInvalidArgument:
		return errdefs.IsInvalidArgument(err)
	case errdefs.ErrFailedPrecondition:
		return errdefs.IsFailedPrecondition(err)
	}
	return false
}

func writeExecutable(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

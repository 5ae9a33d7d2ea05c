package logs

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"github.com/containerd/errdefs"
)

// URIScheme is the scheme of the logger URI. With "binary-v2" (containerd
// 2.2 and later) the shim waits for the logger's ready byte and fails task
// creation if the logger exits first; with "binary" it would start the
// container anyway.
const URIScheme = "binary-v2"

// Query keys of the logger URI. The shim passes each as an argument followed
// by its value.
const (
	ArgPath        = "path"
	ArgPIDFile     = "pidfile"
	ArgTTY         = "tty"
	ArgMaxLineSize = "max-line-size"
	ArgAttach      = "attach"
)

// LoggerArgs are the parameters of one slipway-logger process.
type LoggerArgs struct {
	// Path is the CRI log file (absolute; "path"). Its directory must exist.
	Path string
	// PIDFile is where the logger writes its pid (absolute; "pidfile"). Its
	// directory must exist. The logger holds an exclusive flock on the file
	// while it runs, replaces the file (a new inode) to confirm each SIGUSR1,
	// and removes it when it exits; Reopen relies on all three.
	PIDFile string
	// TTY says the container has a terminal ("tty=true"); create its task
	// with cio.TerminalLogURI. The shim then sends the terminal's output on
	// stdout and never closes the stderr pipe, so the logger ends when
	// stdout ends instead of waiting for both.
	TTY bool
	// MaxLineSize is the longest content of one entry ("max-line-size"):
	// 0 (the argument left out) means DefaultMaxLineSize, -1 no limit.
	MaxLineSize int
	// Attach is the unix socket on which the logger serves the container's
	// live output to attach clients (absolute; "attach"; "" for none). Its
	// directory must exist; ListenAttach documents the protocol.
	Attach string
}

// LogURI returns the URI that makes the shim run the logger binary at
// binary with args; create the task's IO with cio.LogURI(uri). It checks
// what the shim cannot report well (the logger's own errors go to
// /dev/null): that the paths are absolute (errdefs.ErrInvalidArgument) and
// that the binary and both directories exist (errdefs.ErrFailedPrecondition).
func LogURI(binary string, args LoggerArgs) (*url.URL, error) {
	if err := args.validate(); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(binary) {
		return nil, fmt.Errorf("logger binary %q must be an absolute path: %w", binary, errdefs.ErrInvalidArgument)
	}
	if st, err := os.Stat(binary); err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("logger binary %q is not an executable file (%v): %w", binary, err, errdefs.ErrFailedPrecondition)
	}
	for _, p := range []string{args.Path, args.PIDFile, args.Attach} {
		if p == "" {
			continue
		}
		dir := filepath.Dir(p)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				err = errors.New("no such directory")
			}
			return nil, fmt.Errorf("directory of %s: %w: %w", p, err, errdefs.ErrFailedPrecondition)
		}
	}
	return &url.URL{Scheme: URIScheme, Path: filepath.Clean(binary), RawQuery: args.query().Encode()}, nil
}

// ParseLoggerArgs parses the logger's command line (without the program
// name): the URI query as "key value" pairs, in any order. Unknown keys,
// repeated keys and a missing value are errors.
func ParseLoggerArgs(argv []string) (LoggerArgs, error) {
	if len(argv)%2 != 0 {
		return LoggerArgs{}, fmt.Errorf("arguments must be key value pairs, got %q", argv)
	}
	var a LoggerArgs
	seen := map[string]bool{}
	for i := 0; i < len(argv); i += 2 {
		k, v := argv[i], argv[i+1]
		if seen[k] {
			return LoggerArgs{}, fmt.Errorf("argument %q given twice", k)
		}
		seen[k] = true
		switch k {
		case ArgPath:
			a.Path = v
		case ArgPIDFile:
			a.PIDFile = v
		case ArgTTY:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return LoggerArgs{}, fmt.Errorf("argument %s: %w", ArgTTY, err)
			}
			a.TTY = b
		case ArgMaxLineSize:
			n, err := strconv.Atoi(v)
			if err != nil {
				return LoggerArgs{}, fmt.Errorf("argument %s: %w", ArgMaxLineSize, err)
			}
			a.MaxLineSize = n
		case ArgAttach:
			a.Attach = v
		default:
			return LoggerArgs{}, fmt.Errorf("unknown argument %q", k)
		}
	}
	return a, a.validate()
}

func (a LoggerArgs) validate() error {
	for _, f := range []struct{ key, val string }{{ArgPath, a.Path}, {ArgPIDFile, a.PIDFile}} {
		if !filepath.IsAbs(f.val) {
			return fmt.Errorf("logger argument %s=%q must be an absolute path: %w", f.key, f.val, errdefs.ErrInvalidArgument)
		}
	}
	if a.Attach != "" && !filepath.IsAbs(a.Attach) {
		return fmt.Errorf("logger argument %s=%q must be an absolute path: %w", ArgAttach, a.Attach, errdefs.ErrInvalidArgument)
	}
	if a.MaxLineSize < -1 {
		return fmt.Errorf("logger argument %s=%d must be -1, 0 or positive: %w", ArgMaxLineSize, a.MaxLineSize, errdefs.ErrInvalidArgument)
	}
	return nil
}

// query encodes a as the URI query, leaving out defaults.
func (a LoggerArgs) query() url.Values {
	q := url.Values{}
	q.Set(ArgPath, a.Path)
	q.Set(ArgPIDFile, a.PIDFile)
	if a.TTY {
		q.Set(ArgTTY, "true")
	}
	if a.MaxLineSize != 0 {
		q.Set(ArgMaxLineSize, strconv.Itoa(a.MaxLineSize))
	}
	if a.Attach != "" {
		q.Set(ArgAttach, a.Attach)
	}
	return q
}

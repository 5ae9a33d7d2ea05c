package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// ReopenTimeout bounds how long Reopen waits for the logger to confirm.
const ReopenTimeout = 5 * time.Second

// reopenPoll is how often Reopen looks for the confirmation.
const reopenPoll = 2 * time.Millisecond

// ErrLoggerGone is returned (wrapped) by Reopen when no logger runs for the
// pid file: it exited (its container's task was deleted) or was killed.
var ErrLoggerGone = fmt.Errorf("container logger is not running: %w", errdefs.ErrFailedPrecondition)

// Reopen makes the logger that owns pidFile reopen its log path, for
// ReopenContainerLog after kubelet renamed the log file: it sends the logger
// SIGUSR1 and returns once the logger confirms, so the new file exists at
// the log path when Reopen returns nil. It fails with ErrLoggerGone if no
// logger holds the pid file (it never signals a pid from a stale file), with
// the logger's error if the reopen failed (the logger then keeps writing to
// the old file), and after ReopenTimeout or when ctx ends without an answer.
func Reopen(ctx context.Context, pidFile string) error {
	ctx, cancel := context.WithTimeout(ctx, ReopenTimeout)
	defer cancel()
	f, pid, err := openLivePIDFile(pidFile)
	if err != nil {
		return err
	}
	// Holding f open keeps its inode from being reused, so a changed inode
	// at pidFile is the logger's confirmation.
	defer f.Close()
	if err := unix.Kill(pid, unix.SIGUSR1); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("reopen log of logger %d: %w", pid, ErrLoggerGone)
		}
		return fmt.Errorf("signal container logger %d: %w", pid, err)
	}
	tick := time.NewTicker(reopenPoll)
	defer tick.Stop()
	for {
		// Check the lock before the file: the logger renames the new pid
		// file into place before it unlocks the old one, so "unlocked and
		// not replaced" means it died.
		live, err := locked(f)
		if err != nil {
			return err
		}
		same, err := sameFile(f, pidFile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("container logger %d exited before reopening its log: %w", pid, ErrLoggerGone)
		case err != nil:
			return err
		case !same:
			return reopenOutcome(pidFile, pid)
		case !live:
			return fmt.Errorf("container logger %d died before reopening its log: %w", pid, ErrLoggerGone)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("container logger %d did not confirm reopening its log: %w", pid, ctx.Err())
		case <-tick.C:
		}
	}
}

// openLivePIDFile opens pidFile, checks that a live logger holds it and
// returns it with the pid it holds.
func openLivePIDFile(pidFile string) (*os.File, int, error) {
	for attempt := 0; ; attempt++ {
		f, err := os.Open(pidFile)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, fmt.Errorf("no pid file %s: %w", pidFile, ErrLoggerGone)
		}
		if err != nil {
			return nil, 0, err
		}
		live, err := locked(f)
		if err != nil {
			f.Close()
			return nil, 0, err
		}
		if !live {
			// Either a stale file, or the logger replaced it between our
			// open and our check: look again.
			same, _ := sameFile(f, pidFile)
			f.Close()
			if same || attempt == 2 {
				return nil, 0, fmt.Errorf("stale pid file %s: %w", pidFile, ErrLoggerGone)
			}
			continue
		}
		b, err := io.ReadAll(f)
		if err != nil {
			f.Close()
			return nil, 0, err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			f.Close()
			return nil, 0, fmt.Errorf("pid file %s holds %q, not a pid", pidFile, b)
		}
		return f, pid, nil
	}
}

// reopenOutcome is nil, or the error the logger recorded for the reopen it
// just confirmed.
func reopenOutcome(pidFile string, pid int) error {
	msg, err := os.ReadFile(errPath(pidFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("container logger %d could not reopen its log: %s", pid, msg)
}

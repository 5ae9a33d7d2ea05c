package logs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// PIDFile is the logger's side of the pid file contract (see
// LoggerArgs.PIDFile): the file at path holds the logger's pid and a newline,
// and the logger holds an exclusive flock on it for as long as it runs, so a
// reader can tell a live logger from a stale file left by a killed one. Each
// Ack replaces the file with a new, already locked one. A PIDFile is owned by
// one goroutine.
type PIDFile struct {
	path string
	f    *os.File // the locked file now at path
}

// CreatePIDFile writes and locks the pid file of the calling process at
// path. It fails if another live logger holds the file.
func CreatePIDFile(path string) (*PIDFile, error) {
	p := &PIDFile{path: path}
	f, err := p.publish()
	if err != nil {
		return nil, err
	}
	p.f = f
	return p, nil
}

// Ack reports the outcome of a reopen to the Reopen call waiting for it: it
// records reopenErr (or clears a previous one) and then replaces the pid
// file, the signal that Reopen polls for.
func (p *PIDFile) Ack(reopenErr error) error {
	if reopenErr != nil {
		if err := os.WriteFile(errPath(p.path), []byte(reopenErr.Error()), 0o600); err != nil {
			return fmt.Errorf("recording reopen error: %w", err)
		}
	} else if err := os.Remove(errPath(p.path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := p.publish()
	if err != nil {
		return err
	}
	old := p.f
	p.f = f
	return old.Close()
}

// Remove deletes the pid file if it is still the one this process wrote,
// and releases the lock.
func (p *PIDFile) Remove() error {
	var err error
	if same, _ := sameFile(p.f, p.path); same {
		err = os.Remove(p.path)
	}
	os.Remove(errPath(p.path))
	return errors.Join(err, p.f.Close())
}

// publish writes this process's pid to a temporary file, locks it and
// renames it over path, so path always names a complete, locked file.
func (p *PIDFile) publish() (*os.File, error) {
	tmp := p.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("pid file %s: locked by another process: %w", tmp, err)
	}
	if _, err := f.WriteString(strconv.Itoa(os.Getpid()) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("pid file: %w", err)
	}
	if p.f == nil {
		// First publish: refuse to take over the file of a live logger.
		if live, _ := lockedByOther(p.path); live {
			f.Close()
			os.Remove(tmp)
			return nil, fmt.Errorf("pid file %s is held by a running logger", p.path)
		}
	}
	if err := os.Rename(tmp, p.path); err != nil {
		f.Close()
		return nil, fmt.Errorf("pid file: %w", err)
	}
	return f, nil
}

// lockedByOther reports whether some process holds an exclusive lock on the
// file at path. A missing file is not locked.
func lockedByOther(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	defer f.Close()
	return locked(f)
}

// locked reports whether another open file description holds an exclusive
// flock on f's file.
func locked(f *os.File) (bool, error) {
	fd := int(f.Fd())
	switch err := unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB); {
	case err == nil:
		return false, unix.Flock(fd, unix.LOCK_UN)
	case errors.Is(err, unix.EWOULDBLOCK):
		return true, nil
	default:
		return false, fmt.Errorf("flock %s: %w", f.Name(), err)
	}
}

// sameFile reports whether f is the file path names now.
func sameFile(f *os.File, path string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return os.SameFile(a, b), nil
}

// errPath is where the logger records why its last reopen failed.
func errPath(pidFile string) string { return pidFile + ".err" }

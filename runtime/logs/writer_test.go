package logs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOpenWriterCreatesFile(t *testing.T) {
	w, path := openTestWriter(t, 0)
	fixed := time.Date(2026, 5, 6, 7, 8, 9, 10, time.UTC)
	w.now = func() time.Time { return fixed }
	if err := w.WriteEntry(Stderr, false, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm&^0o640 != 0 {
		t.Errorf("log file mode %v, want at most 0640", perm)
	}
	b, _ := os.ReadFile(path)
	if want := "2026-05-06T07:08:09.00000001Z stderr F hi\n"; string(b) != want {
		t.Errorf("file = %q, want %q", b, want)
	}
}

func TestOpenWriterAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	old := "2016-10-06T00:17:09Z stdout F old\n"
	if err := os.WriteFile(path, []byte(old), 0o640); err != nil {
		t.Fatal(err)
	}
	w, err := OpenWriter(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.WriteEntry(Stdout, false, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got := render(readEntries(t, path)); got != "stdout F old|stdout F new" {
		t.Errorf("entries = %q", got)
	}
}

func TestOpenWriterErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := OpenWriter(filepath.Join(dir, "missing", "0.log"), 0)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "directory does not exist") {
		t.Errorf("missing directory: error = %v", err)
	}

	link := filepath.Join(dir, "link.log")
	if err := os.Symlink(filepath.Join(dir, "target"), link); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWriter(link, 0); err == nil {
		t.Error("OpenWriter followed a symlink")
	}
}

func TestReopenAfterRename(t *testing.T) {
	w, path := openTestWriter(t, 0)
	mustWrite(t, w, "before")
	rotated := path + ".20260101-000000"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, "between") // still goes to the renamed file
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, "after")
	if got := render(readEntries(t, rotated)); got != "stdout F before|stdout F between" {
		t.Errorf("rotated file = %q", got)
	}
	if got := render(readEntries(t, path)); got != "stdout F after" {
		t.Errorf("new file = %q", got)
	}
}

func TestReopenFailureKeepsOldFile(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "pod")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "0.log")
	w, err := OpenWriter(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	moved := filepath.Join(root, "moved.log")
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Reopen error = %v, want ErrNotExist", err)
	}
	mustWrite(t, w, "still here")
	if got := render(readEntries(t, moved)); got != "stdout F still here" {
		t.Errorf("old file = %q", got)
	}
}

func TestClosedWriter(t *testing.T) {
	w, _ := openTestWriter(t, 0)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := w.WriteEntry(Stdout, false, nil); !errors.Is(err, os.ErrClosed) {
		t.Errorf("WriteEntry after Close = %v", err)
	}
	if err := w.Reopen(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Reopen after Close = %v", err)
	}
}

// TestReopenWhileWriting rotates the file repeatedly under concurrent
// writers: every entry lands whole in exactly one of the files.
func TestReopenWhileWriting(t *testing.T) {
	w, path := openTestWriter(t, 0)
	const writers, perWriter, rotations = 4, 300, 20
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perWriter {
				if err := w.WriteEntry(Stdout, false, fmt.Appendf(nil, "w%d-%d", i, j)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for r := range rotations {
		if err := os.Rename(path, fmt.Sprintf("%s.%d", path, r)); err != nil {
			t.Fatal(err)
		}
		if err := w.Reopen(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	seen := map[string]bool{}
	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		for _, e := range readEntries(t, f) {
			seen[string(e.Content)] = true
		}
	}
	if len(seen) != writers*perWriter {
		t.Errorf("found %d distinct entries in %d files, want %d", len(seen), len(files), writers*perWriter)
	}
}

func mustWrite(t *testing.T, w *Writer, content string) {
	t.Helper()
	if err := w.WriteEntry(Stdout, false, []byte(content)); err != nil {
		t.Fatal(err)
	}
}

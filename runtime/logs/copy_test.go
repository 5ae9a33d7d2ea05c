package logs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

func TestCopySplitsLines(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	for _, tc := range []struct {
		name string
		max  int
		in   string
		want string // render() of the entries
	}{
		{name: "full lines", in: "a\nb c\n", want: "stdout F a|stdout F b c"},
		{name: "nothing", in: "", want: ""},
		{name: "empty lines", in: "\n\n", want: "stdout F |stdout F "},
		{name: "crlf", in: "a\r\nb\n", want: "stdout F a|stdout F b"},
		{name: "lone cr is content", in: "a\rb\n", want: "stdout F a\rb"},
		{name: "final line without newline", in: "a\nbc", want: "stdout F a|stdout P bc"},
		{name: "final cr without newline", in: "bc\r", want: "stdout P bc\r"},
		{name: "exactly max", max: 4, in: "abcd\n", want: "stdout F abcd"},
		{name: "exactly max crlf", max: 4, in: "abcd\r\n", want: "stdout F abcd"},
		{name: "max plus one", max: 4, in: "abcde\n", want: "stdout P abcd|stdout F e"},
		{name: "twice max", max: 4, in: "abcdefgh\n", want: "stdout P abcd|stdout F efgh"},
		{name: "long then short", max: 4, in: "abcdefghij\nk\n", want: "stdout P abcd|stdout P efgh|stdout F ij|stdout F k"},
		{name: "long at eof", max: 4, in: "abcdefghi", want: "stdout P abcd|stdout P efgh|stdout P i"},
		{name: "max-sized content then cr at eof", max: 4, in: "abcd\r", want: "stdout P abcd|stdout P \r"},
		{
			name: "default max across the read buffer",
			in:   x(40000) + "\n",
			want: "stdout P " + x(16384) + "|stdout P " + x(16384) + "|stdout F " + x(40000-2*16384),
		},
		{name: "no limit", max: -1, in: x(100000) + "\n", want: "stdout F " + x(100000)},
		{
			// The first read fills the buffer up to the "\r"; the "\n"
			// comes in the next one.
			name: "crlf straddling the read buffer", max: -1,
			in: x(copyBufferSize-1) + "\r\n", want: "stdout F " + x(copyBufferSize-1),
		},
		{
			name: "max-sized line with crlf straddling the read buffer", max: copyBufferSize - 1,
			in: x(copyBufferSize-1) + "\r\n", want: "stdout F " + x(copyBufferSize-1),
		},
	} {
		for _, chunking := range []string{"whole", "bytes"} {
			t.Run(tc.name+"/"+chunking, func(t *testing.T) {
				w, path := openTestWriter(t, tc.max)
				var r io.Reader = strings.NewReader(tc.in)
				if chunking == "bytes" {
					r = iotest.OneByteReader(r)
				}
				if err := w.Copy(Stdout, r); err != nil {
					t.Fatalf("Copy: %v", err)
				}
				if got := render(readEntries(t, path)); got != tc.want {
					t.Errorf("entries:\n got %.200q\nwant %.200q", got, tc.want)
				}
			})
		}
	}
}

func TestCopyBothStreamsKeepLinesWhole(t *testing.T) {
	w, path := openTestWriter(t, 64)
	const lines = 500
	gen := func(s Stream) string {
		var b strings.Builder
		for i := range lines {
			fmt.Fprintf(&b, "%s-%d-%s\n", s, i, strings.Repeat("y", i%100))
		}
		return b.String()
	}
	var wg sync.WaitGroup
	for _, s := range []Stream{Stdout, Stderr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Small reads, so the two copies take turns often.
			if err := w.Copy(s, iotest.HalfReader(strings.NewReader(gen(s)))); err != nil {
				t.Errorf("Copy %s: %v", s, err)
			}
		}()
	}
	wg.Wait()
	got := map[Stream]string{}
	var pending = map[Stream]string{}
	for _, e := range readEntries(t, path) {
		pending[e.Stream] += string(e.Content)
		if !e.Partial {
			got[e.Stream] += pending[e.Stream] + "\n"
			pending[e.Stream] = ""
		}
	}
	for _, s := range []Stream{Stdout, Stderr} {
		if got[s] != gen(s) {
			t.Errorf("%s reassembled from the file differs from its input", s)
		}
	}
}

func TestCopyDrainsAfterWriteErrors(t *testing.T) {
	w, _ := openTestWriter(t, 0)
	w.Close()
	r := strings.NewReader(strings.Repeat("line\n", 1000))
	err := w.Copy(Stdout, r)
	if !errors.Is(err, os.ErrClosed) {
		t.Errorf("Copy error = %v, want os.ErrClosed", err)
	}
	if r.Len() != 0 {
		t.Errorf("Copy stopped reading with %d bytes left", r.Len())
	}
}

func TestCopyWritesPendingOnReadError(t *testing.T) {
	w, path := openTestWriter(t, 0)
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("a\npart"), iotest.ErrReader(boom))
	if err := w.Copy(Stderr, r); !errors.Is(err, boom) {
		t.Errorf("Copy error = %v, want %v", err, boom)
	}
	if got := render(readEntries(t, path)); got != "stderr F a|stderr P part" {
		t.Errorf("entries = %q", got)
	}
}

func openTestWriter(t *testing.T, max int) (*Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "0.log")
	w, err := OpenWriter(path, max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, path
}

func readEntries(t *testing.T, path string) []Entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := ReadEntries(f)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

package container

import (
	"bytes"
	"strings"
	"testing"
)

func TestCappedBuffer(t *testing.T) {
	for _, tc := range []struct {
		writes []string
		limit  int
		want   string
	}{
		{writes: []string{"abc"}, limit: 5, want: "abc"},
		{writes: []string{"abc", "de"}, limit: 5, want: "abcde"},
		{writes: []string{"abc", "def"}, limit: 5, want: "abcde" + TruncationMarker},
		{writes: []string{"abcdef", "g"}, limit: 3, want: "abc" + TruncationMarker},
		{writes: []string{"", ""}, limit: 3, want: ""},
	} {
		b := &cappedBuffer{limit: tc.limit}
		for _, w := range tc.writes {
			if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("Write(%q) = %d, %v", w, n, err)
			}
		}
		if got := string(b.Bytes()); got != tc.want {
			t.Errorf("%v limit %d: got %q, want %q", tc.writes, tc.limit, got, tc.want)
		}
	}
}

func TestCappedBufferAtRealLimit(t *testing.T) {
	b := &cappedBuffer{limit: MaxExecOutput}
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for range 20 {
		b.Write(chunk)
	}
	got := b.Bytes()
	if len(got) != MaxExecOutput+len(TruncationMarker) || !strings.HasSuffix(string(got), TruncationMarker) {
		t.Errorf("20 MiB written: kept %d bytes, want %d plus the marker", len(got), MaxExecOutput)
	}
}

package logs

import (
	"strings"
	"testing"
	"time"
)

func TestAppendEntryParsesBack(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 600700800, time.FixedZone("x", 3600))
	for _, tc := range []struct {
		stream  Stream
		partial bool
		content string
		want    string
	}{
		{Stdout, false, "hello world", "2026-01-02T03:04:05.6007008+01:00 stdout F hello world\n"},
		{Stderr, true, "part", "2026-01-02T03:04:05.6007008+01:00 stderr P part\n"},
		{Stdout, false, "", "2026-01-02T03:04:05.6007008+01:00 stdout F \n"},
		{Stdout, false, "  spaced  \r out ", "2026-01-02T03:04:05.6007008+01:00 stdout F   spaced  \r out \n"},
	} {
		got := string(appendEntry(nil, ts, tc.stream, tc.partial, []byte(tc.content)))
		if got != tc.want {
			t.Errorf("appendEntry(%q) = %q, want %q", tc.content, got, tc.want)
		}
		e, err := ParseLine([]byte(got))
		if err != nil {
			t.Fatalf("ParseLine(%q): %v", got, err)
		}
		if !e.Time.Equal(ts) || e.Stream != tc.stream || e.Partial != tc.partial || string(e.Content) != tc.content {
			t.Errorf("ParseLine(%q) = %+v", got, e)
		}
	}
}

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		line    string
		stream  Stream
		partial bool
		content string
		wantErr string
	}{
		{line: "2016-10-06T00:17:09.669794202Z stdout P log content 1", stream: Stdout, partial: true, content: "log content 1"},
		{line: "2016-10-06T00:17:09.669794203Z stderr F log content 2\n", stream: Stderr, content: "log content 2"},
		{line: "2016-10-06T00:17:09Z stdout F \n", stream: Stdout, content: ""},
		{line: "2016-10-06T00:17:09Z stdout F:extra x", stream: Stdout, content: "x"},
		{line: "2016-10-06T00:17:09Z stdout P:extra x", stream: Stdout, partial: true, content: "x"},
		{line: "2016-10-06T00:17:09Z stdout F two\n\n", stream: Stdout, content: "two\n"},
		{line: "2016-10-06T00:17:09Z stdout F", wantErr: "want"},
		{line: "", wantErr: "want"},
		{line: "yesterday stdout F x", wantErr: "timestamp"},
		{line: "2016-10-06T00:17:09Z stdin F x", wantErr: "unknown stream"},
		{line: "2016-10-06T00:17:09Z stdout X x", wantErr: "unknown tag"},
	} {
		e, err := ParseLine([]byte(tc.line))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseLine(%q) error = %v, want one containing %q", tc.line, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseLine(%q): %v", tc.line, err)
			continue
		}
		if e.Stream != tc.stream || e.Partial != tc.partial || string(e.Content) != tc.content {
			t.Errorf("ParseLine(%q) = %+v, want %s %v %q", tc.line, e, tc.stream, tc.partial, tc.content)
		}
	}
}

func TestReadEntries(t *testing.T) {
	in := "2016-10-06T00:17:09Z stdout P a\n" +
		"2016-10-06T00:17:10Z stdout F b\n" +
		"2016-10-06T00:17:11Z stderr F c" // no final newline
	entries, err := ReadEntries(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := render(entries); got != "stdout P a|stdout F b|stderr F c" {
		t.Errorf("ReadEntries = %s", got)
	}

	_, err = ReadEntries(strings.NewReader(in + "\ngarbage\n"))
	if err == nil {
		t.Error("ReadEntries accepted a malformed line")
	}
}

// render is a compact form of entries for comparisons: "stream tag content"
// joined by "|".
func render(entries []Entry) string {
	parts := make([]string, len(entries))
	for i, e := range entries {
		tag := TagFull
		if e.Partial {
			tag = TagPartial
		}
		parts[i] = string(e.Stream) + " " + tag + " " + string(e.Content)
	}
	return strings.Join(parts, "|")
}

package logs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// Stream names the container output an entry came from.
type Stream string

// The two streams of the CRI log format.
const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// Tags of the CRI log format (the values of k8s.io/cri-api's LogTagPartial
// and LogTagFull, which this package does not import to keep the logger
// binary small).
const (
	TagPartial = "P"
	TagFull    = "F"
)

// DefaultMaxLineSize is the longest content one entry carries, in bytes:
// longer lines are split (containerd's max_container_log_line_size default).
const DefaultMaxLineSize = 16 * 1024

// timeFormat is the entry timestamp layout. RFC3339Nano drops trailing zeros
// of the fraction; kubelet parses every variant.
const timeFormat = time.RFC3339Nano

// Entry is one parsed line of a CRI log file.
type Entry struct {
	// Time is when the logger wrote the entry.
	Time time.Time
	// Stream is Stdout or Stderr.
	Stream Stream
	// Partial is true for a P entry: the line continues in the next entry
	// of the same stream (or the output ended without a newline).
	Partial bool
	// Content is the entry's bytes without the line terminator.
	Content []byte
}

// appendEntry appends the encoding of one entry, "\n" included, to b.
func appendEntry(b []byte, t time.Time, s Stream, partial bool, content []byte) []byte {
	b = t.AppendFormat(b, timeFormat)
	b = append(b, ' ')
	b = append(b, s...)
	if partial {
		b = append(b, " "+TagPartial+" "...)
	} else {
		b = append(b, " "+TagFull+" "...)
	}
	b = append(b, content...)
	return append(b, '\n')
}

// ParseLine parses one line of a CRI log file, with or without its trailing
// "\n". Content aliases line. Like kubelet, it accepts extra tags after the
// first one (separated by ':'); it rejects a first tag other than P or F.
func ParseLine(line []byte) (Entry, error) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	fields := bytes.SplitN(line, []byte{' '}, 4)
	if len(fields) < 4 {
		return Entry{}, fmt.Errorf("malformed CRI log line %q: want \"TIME STREAM TAG CONTENT\"", truncate(line))
	}
	t, err := time.Parse(timeFormat, string(fields[0]))
	if err != nil {
		return Entry{}, fmt.Errorf("malformed CRI log line %q: timestamp: %w", truncate(line), err)
	}
	e := Entry{Time: t, Stream: Stream(fields[1]), Content: fields[3]}
	if e.Stream != Stdout && e.Stream != Stderr {
		return Entry{}, fmt.Errorf("malformed CRI log line %q: unknown stream %q", truncate(line), fields[1])
	}
	tag, _, _ := bytes.Cut(fields[2], []byte{':'})
	switch string(tag) {
	case TagPartial:
		e.Partial = true
	case TagFull:
	default:
		return Entry{}, fmt.Errorf("malformed CRI log line %q: unknown tag %q", truncate(line), fields[2])
	}
	return e, nil
}

// ReadEntries parses every line r yields until EOF.
func ReadEntries(r io.Reader) ([]Entry, error) {
	var entries []Entry
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			e, perr := ParseLine(line)
			if perr != nil {
				return entries, perr
			}
			entries = append(entries, e)
		}
		if errors.Is(err, io.EOF) {
			return entries, nil
		}
		if err != nil {
			return entries, err
		}
	}
}

// truncate shortens a line for an error message.
func truncate(b []byte) []byte {
	const max = 80
	if len(b) > max {
		return b[:max]
	}
	return b
}

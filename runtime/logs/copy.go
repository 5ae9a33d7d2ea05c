package logs

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// copyBufferSize is the read buffer of one stream.
const copyBufferSize = 32 * 1024

// Copy reads the raw output of stream s from r and writes it as entries
// until r ends, returning nil at io.EOF and the read error otherwise.
//
// Every complete line becomes an F entry as soon as its "\n" arrives, with a
// "\r\n" or "\n" terminator removed; a line longer than the maximum line size
// is written in P entries of exactly that size as it arrives and ends with an
// F entry; output left without a newline when r ends (or fails) is written as
// P entries. Write errors do not stop the copy, so the container never blocks
// on a full pipe: Copy keeps draining r and returns the first write error
// (joined with the read error, if any) when r ends.
func (w *Writer) Copy(s Stream, r io.Reader) error {
	c := copier{w: w, s: s}
	br := bufio.NewReaderSize(r, copyBufferSize)
	var pending []byte // the start of the current line, not yet written
	for {
		chunk, err := br.ReadSlice('\n')
		if n := len(chunk); n > 0 && chunk[n-1] == '\n' {
			line := chunk[:n-1]
			if len(pending) > 0 {
				pending = append(pending, line...)
				line = pending
			}
			c.line(bytes.TrimSuffix(line, []byte{'\r'}), false)
			pending = pending[:0]
			continue
		}
		pending = append(pending, chunk...)
		pending = c.overflow(pending)
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(pending) > 0 {
			c.line(pending, true)
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
		return errors.Join(err, c.writeErr)
	}
}

// copier writes the entries of one stream and remembers the first write
// error. It is owned by one Copy call.
type copier struct {
	w        *Writer
	s        Stream
	writeErr error
}

// line writes content as entries: P entries of the maximum size while more
// than that is left, then one last entry, which is P if partial is set.
func (c *copier) line(content []byte, partial bool) {
	max := c.w.maxLineSize
	for max > 0 && len(content) > max {
		c.write(true, content[:max])
		content = content[max:]
	}
	c.write(partial, content)
}

// overflow writes P entries while the unfinished line p holds more than the
// maximum size, not counting a trailing "\r" that may turn out to be part of
// the terminator, and returns what is left (reusing p's memory). A line of
// exactly the maximum size therefore ends in one F entry, never in a P entry
// followed by an empty F entry.
func (c *copier) overflow(p []byte) []byte {
	max := c.w.maxLineSize
	if max < 0 {
		return p
	}
	for {
		n := len(p)
		if n > 0 && p[n-1] == '\r' {
			n--
		}
		if n <= max {
			return p
		}
		c.write(true, p[:max])
		p = p[:copy(p, p[max:])]
	}
}

func (c *copier) write(partial bool, content []byte) {
	if err := c.w.WriteEntry(c.s, partial, content); err != nil && c.writeErr == nil {
		c.writeErr = err
	}
}

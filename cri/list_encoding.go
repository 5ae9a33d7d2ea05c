package cri

import (
	"fmt"
	"slices"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// listEncodings keeps, for a List call answering one message per indexed
// record (ListContainers, ListPodSandbox), each record's message encoded
// once as an entry of the response's repeated field: its tag, its length
// and the marshalled message. A response whose unknown fields are such
// entries, one after the other, is on the wire exactly the response with
// those messages in that field, and marshalling it copies bytes instead of
// walking hundreds of messages (with kubelet's labels and annotations,
// about 50 allocations per message to marshal the maps). kubelet lists
// every second; building and marshalling the messages was most of a
// list's CPU and garbage, so of the daemon's garbage collections during a
// burst of lists.
//
// Encodings are keyed by the record's pointer: the index never changes a
// record in place (a change indexes a new pointer, see index.Index.View),
// so a new state, a removal or a re-creation under the same ID is a new
// key and the next list encodes it; a message must depend on its record
// alone. The last unfiltered answer is kept whole and handed out again
// while the records are the same ones. Every byte slice handed out is
// shared by concurrent calls and never written again. The zero value is
// ready to use.
type listEncodings[R any] struct {
	mu sync.Mutex
	// byRecord is the entry of each record listed so far; mu guards it.
	// Records no longer indexed are dropped once they outnumber the
	// indexed ones, so it holds at most about twice the node's records.
	byRecord map[*R][]byte
	// all is the last unfiltered answer and allOf the records it lists,
	// in order; mu guards both.
	all   []byte
	allOf []*R
}

// entries returns the entries of the records in view that keep accepts
// (all of them if keep is nil), in view's order; view is every indexed
// record, as index.Index.View returns them. field is the response's
// repeated field, message a record's message.
func (l *listEncodings[R]) entries(view []*R, keep func(*R) bool, field protoreflect.FieldDescriptor, message func(*R) proto.Message) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if keep == nil && l.allOf != nil && slices.Equal(view, l.allOf) {
		return l.all, nil
	}
	if l.byRecord == nil || len(l.byRecord) > 2*len(view)+64 {
		l.pruneLocked(view)
	}
	kept := make([][]byte, 0, len(view))
	size := 0
	for _, r := range view {
		if keep != nil && !keep(r) {
			continue
		}
		entry, ok := l.byRecord[r]
		if !ok {
			msg, err := proto.Marshal(message(r))
			if err != nil {
				return nil, fmt.Errorf("encoding a %s entry: %w", field.FullName(), err)
			}
			entry = protowire.AppendTag(make([]byte, 0, len(msg)+8), field.Number(), protowire.BytesType)
			entry = protowire.AppendBytes(entry, msg)
			l.byRecord[r] = entry
		}
		kept = append(kept, entry)
		size += len(entry)
	}
	out := make([]byte, 0, size)
	for _, entry := range kept {
		out = append(out, entry...)
	}
	if keep == nil {
		l.all, l.allOf = out, view
	}
	return out, nil
}

// pruneLocked keeps only the entries of the records in view.
func (l *listEncodings[R]) pruneLocked(view []*R) {
	next := make(map[*R][]byte, len(view))
	for _, r := range view {
		if entry, ok := l.byRecord[r]; ok {
			next[r] = entry
		}
	}
	l.byRecord = next
}

// encodedResponse sets resp's unknown fields to entries (listEncodings)
// and returns resp: on the wire, the response with those messages.
func encodedResponse[M proto.Message](resp M, entries []byte) M {
	resp.ProtoReflect().SetUnknown(entries)
	return resp
}

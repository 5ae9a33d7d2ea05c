package e2e

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// soakTally counts the soak's calls by RPC and their errors by gRPC code,
// split into errors the race that caused them explains (tolerated) and
// all others (unexpected), and collects broken invariants. It is safe for
// concurrent use.
type soakTally struct {
	mu sync.Mutex
	// rpcs, violations and the samples are guarded by mu.
	rpcs       map[string]*rpcTally
	violations []string
}

// rpcTally is one RPC's counts.
type rpcTally struct {
	calls, ok  int
	tolerated  map[codes.Code]int
	unexpected map[codes.Code]int
	// samples are the first few messages of each (tolerated or not) code.
	samples map[string][]string
}

const samplesPerCode = 3

func newSoakTally() *soakTally { return &soakTally{rpcs: map[string]*rpcTally{}} }

// record counts one call of rpc on subject (a description of the object
// and of the calls begun on it, for the samples) that returned err;
// tolerated says whether the call's race explains err (ignored when err is
// nil). It returns err's code.
func (t *soakTally) record(rpc string, err error, tolerated bool, subject string) codes.Code {
	code := status.Code(err)
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.rpcs[rpc]
	if r == nil {
		r = &rpcTally{tolerated: map[codes.Code]int{}, unexpected: map[codes.Code]int{}, samples: map[string][]string{}}
		t.rpcs[rpc] = r
	}
	r.calls++
	if err == nil {
		r.ok++
		return code
	}
	key := "unexpected " + code.String()
	if tolerated {
		r.tolerated[code]++
		key = "tolerated " + code.String()
	} else {
		r.unexpected[code]++
	}
	if len(r.samples[key]) < samplesPerCode {
		r.samples[key] = append(r.samples[key], fmt.Sprintf("%s [%s %s]", status.Convert(err).Message(), time.Now().UTC().Format("15:04:05.000"), subject))
	}
	return code
}

// violate records a broken invariant.
func (t *soakTally) violate(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.violations = append(t.violations, time.Now().UTC().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

// totals are the number of calls, unexpected errors and violations.
func (t *soakTally) totals() (calls, unexpected, violations int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.rpcs {
		calls += r.calls
		for _, n := range r.unexpected {
			unexpected += n
		}
	}
	return calls, unexpected, len(t.violations)
}

// table renders the counts, one row per RPC, with the sampled messages and
// the violations below it.
func (t *soakTally) table() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "RPC\tcalls\tok\ttolerated\tunexpected")
	var all rpcTally
	names := make([]string, 0, len(t.rpcs))
	for name := range t.rpcs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		r := t.rpcs[name]
		all.calls, all.ok = all.calls+r.calls, all.ok+r.ok
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\n", name, r.calls, r.ok, byCode(r.tolerated), byCode(r.unexpected))
	}
	fmt.Fprintf(w, "total\t%d\t%d\t\t\n", all.calls, all.ok)
	w.Flush()
	for _, name := range names {
		keys := make([]string, 0, len(t.rpcs[name].samples))
		for k := range t.rpcs[name].samples {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			for _, msg := range t.rpcs[name].samples[k] {
				fmt.Fprintf(&b, "%s %s: %s\n", name, k, msg)
			}
		}
	}
	for _, v := range t.violations {
		fmt.Fprintf(&b, "VIOLATION: %s\n", v)
	}
	return b.String()
}

// byCode renders counts by code as "NotFound=3 FailedPrecondition=1", or 0.
func byCode(m map[codes.Code]int) string {
	if len(m) == 0 {
		return "0"
	}
	parts := make([]string, 0, len(m))
	for c, n := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", c, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

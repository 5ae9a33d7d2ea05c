// Command report turns the result files of hack/bench/cri.sh into a
// side-by-side table: per operation, p50 and p90 for each runtime and the
// ratio of the first runtime's p50 to the second's.
//
// It reads RESULTS/RUNTIME/GROUP/ for every runtime and group:
//
//	*_benchmark_data.json  critest's LifecycleBenchmarksResultsSet files
//	ginkgo.json            ginkgo's JSON report (spec state, failure message,
//	                       and the gmeasure experiment of the one benchmark
//	                       that writes no data file)
//	status                 the harness's verdict: "ok", "failed: ..." or "skipped: ..."
//	server.log             the runtime's log lines written while the group ran
//	                       (slipwayd logs every RPC with its duration at debug level)
//
// Usage:
//
//	go run ./hack/bench/report -results DIR -runtimes slipwayd,containerd [-md FILE]
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// group is one critest benchmark spec, run as its own critest invocation.
type group struct {
	name  string
	title string
	// file is the data file critest writes; empty for the spec that only
	// records a gmeasure experiment in the ginkgo report.
	file string
	// ops are the operation names, used when no runtime produced data.
	ops []string
}

var groups = []group{
	{"pod", "pod lifecycle", "pod_benchmark_data.json", []string{"CreatePod", "StatusPod", "StopPod", "RemovePod"}},
	{"container", "container lifecycle (in a fresh pod each)", "container_benchmark_data.json",
		[]string{"CreateContainer", "StartContainer", "StatusContainer", "StopContainer", "RemoveContainer"}},
	{"image", "image lifecycle", "image_lifecycle_benchmark_data.json", []string{"PullImage", "StatusImage", "RemoveImage"}},
	{"imagelist", "image listing", "image_listing_benchmark_data.json", []string{"ListImages"}},
	{"podcontainer", "pod + container from scratch (critest measures it once)", "",
		[]string{"create PodSandbox and container"}},
}

// resultsSet mirrors critest's LifecycleBenchmarksResultsSet.
type resultsSet struct {
	OperationsNames []string `json:"operationsNames"`
	NumParallel     int      `json:"numParallel"`
	Datapoints      []struct {
		OperationsDurationsNs []int64 `json:"operationsDurationsNs"`
	} `json:"datapoints"`
}

// groupResult is what one runtime produced for one group.
type groupResult struct {
	status   string // "ok", "failed: ...", "skipped: ...", "" when never run
	ops      []string
	samples  map[string][]time.Duration
	parallel int
	server   map[string][]time.Duration // RPC name -> server-side durations
	cni      map[string][]time.Duration // "plugin CMD" -> plugin run times (--trace-cni)
}

func main() {
	results := flag.String("results", "", "results directory (RESULTS/RUNTIME/GROUP/...)")
	runtimesFlag := flag.String("runtimes", "slipwayd,containerd", "comma-separated runtimes; the ratio is the first's p50 over the second's")
	md := flag.String("md", "", "also write the tables as markdown to this file")
	flag.Parse()
	if *results == "" {
		fmt.Fprintln(os.Stderr, "report: -results is required")
		os.Exit(2)
	}
	runtimes := strings.Split(*runtimesFlag, ",")

	all := map[string]map[string]*groupResult{}
	for _, rt := range runtimes {
		all[rt] = map[string]*groupResult{}
		for _, g := range groups {
			r, err := load(filepath.Join(*results, rt, g.name), g)
			if err != nil {
				fmt.Fprintf(os.Stderr, "report: %s/%s: %v\n", rt, g.name, err)
				os.Exit(1)
			}
			all[rt][g.name] = r
		}
	}

	t := buildTable(runtimes, all)
	fmt.Print(t.text())
	srv := buildServerTable(runtimes, all)
	if len(srv.rows) > 0 {
		fmt.Println()
		fmt.Println("Server-side RPC durations (from the runtime's own log, while each group ran):")
		fmt.Print(srv.text())
	}
	cniT := buildCNITable(runtimes, all)
	if len(cniT.rows) > 0 {
		fmt.Println()
		fmt.Println("CNI plugin run times (--trace-cni), while each group ran:")
		fmt.Print(cniT.text())
	}
	if *md != "" {
		var b strings.Builder
		b.WriteString(t.markdown())
		if len(srv.rows) > 0 {
			b.WriteString("\nServer-side RPC durations, from the runtime's own log while each group ran " +
				"(slipwayd logs every RPC with its duration at debug level):\n\n")
			b.WriteString(srv.markdown())
		}
		if len(cniT.rows) > 0 {
			b.WriteString("\nCNI plugin run times (`--trace-cni`: each plugin run through a timing wrapper), while each group ran:\n\n")
			b.WriteString(cniT.markdown())
		}
		if err := os.WriteFile(*md, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "report: %v\n", err)
			os.Exit(1)
		}
	}
}

// load reads one runtime's results for one group; a missing directory is a
// group that did not run.
func load(dir string, g group) (*groupResult, error) {
	r := &groupResult{samples: map[string][]time.Duration{}, server: map[string][]time.Duration{}, cni: map[string][]time.Duration{}}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	// Rounds (cri.sh --rounds) are DIR/round-N; their samples are pooled.
	rounds, err := filepath.Glob(filepath.Join(dir, "round-*"))
	if err != nil {
		return nil, err
	}
	sort.Slice(rounds, func(i, j int) bool { return roundNumber(rounds[i]) < roundNumber(rounds[j]) })
	if len(rounds) == 0 {
		rounds = []string{dir}
	}
	// Rounds that failed the same way are named together.
	var bad []string
	badRounds := map[string][]string{}
	ran := false
	for _, rd := range rounds {
		status, err := loadRound(rd, g, r)
		if err != nil {
			return nil, err
		}
		ran = ran || status != ""
		if status != "ok" && status != "" {
			if _, seen := badRounds[status]; !seen {
				bad = append(bad, status)
			}
			badRounds[status] = append(badRounds[status], strings.TrimPrefix(filepath.Base(rd), "round-"))
		}
	}
	switch {
	case len(bad) > 0:
		for i, status := range bad {
			if len(rounds) > 1 {
				bad[i] = fmt.Sprintf("round %s of %d: %s", strings.Join(badRounds[status], ", "), len(rounds), status)
			}
		}
		r.status = strings.Join(bad, "; ")
	case ran:
		r.status = "ok"
	}
	return r, nil
}

func roundNumber(dir string) int {
	var n int
	fmt.Sscanf(filepath.Base(dir), "round-%d", &n)
	return n
}

// loadRound adds one critest run's results to r and returns its status.
func loadRound(dir string, g group, r *groupResult) (string, error) {
	var status string
	if b, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		status = strings.TrimSpace(string(b))
	}
	if g.file != "" {
		b, err := os.ReadFile(filepath.Join(dir, g.file))
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return "", err
		default:
			var rs resultsSet
			if err := json.Unmarshal(b, &rs); err != nil {
				return "", fmt.Errorf("%s: %w", g.file, err)
			}
			if len(r.ops) == 0 {
				r.ops = rs.OperationsNames
			}
			r.parallel = rs.NumParallel
			for _, dp := range rs.Datapoints {
				for i, ns := range dp.OperationsDurationsNs {
					if i < len(rs.OperationsNames) {
						op := rs.OperationsNames[i]
						r.samples[op] = append(r.samples[op], time.Duration(ns))
					}
				}
			}
		}
	}
	failure, err := loadGinkgoReport(filepath.Join(dir, "ginkgo.json"), r, g.file == "")
	if err != nil {
		return "", err
	}
	// The harness's status names the RPC error when critest crashed; a
	// ginkgo report (written when it did not) names the failed assertion.
	if strings.HasPrefix(status, "failed") && !strings.Contains(status, ": ") && failure != "" {
		status += ": " + failure
	}
	if err := loadServerLog(filepath.Join(dir, "server.log"), r); err != nil {
		return "", err
	}
	if err := loadCNITrace(filepath.Join(dir, "cni.log"), r); err != nil {
		return "", err
	}
	return status, nil
}

// loadGinkgoReport reads a ginkgo JSON report: it returns the failure of
// the first spec that did not pass, and with experiments, adds the duration
// measurements of gmeasure experiments recorded as report entries to the
// group's samples.
func loadGinkgoReport(path string, r *groupResult, experiments bool) (failure string, _ error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	var reports []struct {
		SpecReports []struct {
			State         string
			Failure       struct{ Message string }
			ReportEntries []struct {
				Name  string
				Value struct{ AsJSON string }
			}
		}
	}
	if err := json.Unmarshal(b, &reports); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	for _, rep := range reports {
		for _, spec := range rep.SpecReports {
			if spec.State != "passed" && spec.State != "skipped" && spec.State != "pending" {
				if failure == "" {
					failure = briefFailure(spec.Failure.Message)
				}
				continue
			}
			if spec.State != "passed" || !experiments {
				continue
			}
			for _, e := range spec.ReportEntries {
				var exp struct {
					Measurements []struct {
						Name      string
						Durations []int64
					}
				}
				if json.Unmarshal([]byte(e.Value.AsJSON), &exp) != nil {
					continue
				}
				for _, m := range exp.Measurements {
					if len(m.Durations) == 0 {
						continue
					}
					if _, seen := r.samples[m.Name]; !seen {
						r.ops = append(r.ops, m.Name)
					}
					for _, ns := range m.Durations {
						r.samples[m.Name] = append(r.samples[m.Name], time.Duration(ns))
					}
				}
			}
		}
	}
	return failure, nil
}

var rpcError = regexp.MustCompile(`rpc error: code = \w+ desc = [^"\n]*`)

// briefFailure is the gRPC error in a failure message when there is one,
// else the message squeezed onto one short line.
func briefFailure(msg string) string {
	if m := rpcError.FindString(msg); m != "" {
		return m
	}
	return oneLine(msg, 200)
}

// oneLine squeezes whitespace and cuts s to at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n]) + "..."
	}
	return s
}

var (
	rpcField      = regexp.MustCompile(`\brpc="?([A-Za-z/.]+)"?`)
	durationField = regexp.MustCompile(`\bduration="?([0-9.]+[a-zµ]+)"?`)
	doneMsg       = regexp.MustCompile(`\bmsg="?done"?`)
)

// loadServerLog collects "done" lines carrying an rpc and a duration field
// (slipwayd's interceptor logs each call so).
func loadServerLog(path string, r *groupResult) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := br.ReadString('\n')
		if m := rpcField.FindStringSubmatch(line); m != nil && doneMsg.MatchString(line) {
			if d := durationField.FindStringSubmatch(line); d != nil {
				if dur, perr := time.ParseDuration(d[1]); perr == nil {
					rpc := m[1][strings.LastIndex(m[1], "/")+1:]
					r.server[rpc] = append(r.server[rpc], dur)
				}
			}
		}
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

var cniLine = regexp.MustCompile(`^plugin=(\S+) cmd=(\S*) .*\bduration=(\S+) rc=(\d+)`)

// loadCNITrace reads hack/bench/cnitrace lines: one per plugin run.
func loadCNITrace(path string, r *groupResult) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		m := cniLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		d, err := time.ParseDuration(m[3])
		if err != nil {
			continue
		}
		key := m[1] + " " + m[2]
		if m[4] != "0" {
			key += " (failed)"
		}
		r.cni[key] = append(r.cni[key], d)
	}
	return nil
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}

func sortedCopy(d []time.Duration) []time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

// ms formats a duration in milliseconds with about three significant digits.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 100:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.0f ms", v)
	}
}

type table struct {
	header []string
	rows   [][]string
	notes  []string
}

// cell is what a runtime shows for one operation of one group.
func cell(r *groupResult, op string) (n, p50, p90 string, median time.Duration) {
	if s, ok := r.samples[op]; ok && len(s) > 0 {
		sorted := sortedCopy(s)
		median = percentile(sorted, 50)
		return fmt.Sprint(len(s)), ms(median), ms(percentile(sorted, 90)), median
	}
	switch {
	case r.status == "":
		return "", "not run", "", 0
	case strings.Contains(r.status, "failed"):
		return "", "FAILED", "", 0
	default:
		return "", "no data", "", 0
	}
}

func buildTable(runtimes []string, all map[string]map[string]*groupResult) table {
	t := table{header: []string{"group", "operation"}}
	for _, rt := range runtimes {
		t.header = append(t.header, rt+" n", rt+" p50", rt+" p90")
	}
	if len(runtimes) >= 2 {
		t.header = append(t.header, fmt.Sprintf("p50 ratio (%s/%s)", runtimes[0], runtimes[1]))
	}
	for _, g := range groups {
		anyRun := false
		for _, rt := range runtimes {
			if all[rt][g.name].status != "" {
				anyRun = true
			}
		}
		if !anyRun {
			continue
		}
		ops := g.ops
		for _, rt := range runtimes {
			if r := all[rt][g.name]; len(r.ops) > 0 {
				ops = r.ops
				break
			}
		}
		for i, op := range ops {
			label := ""
			if i == 0 {
				label = g.name
			}
			row := []string{label, op}
			var medians []time.Duration
			for _, rt := range runtimes {
				n, p50, p90, med := cell(all[rt][g.name], op)
				row = append(row, n, p50, p90)
				medians = append(medians, med)
			}
			if len(runtimes) >= 2 {
				ratio := ""
				if medians[0] > 0 && medians[1] > 0 {
					ratio = fmt.Sprintf("%.2fx", float64(medians[0])/float64(medians[1]))
				}
				row = append(row, ratio)
			}
			t.rows = append(t.rows, row)
		}
		for _, rt := range runtimes {
			r := all[rt][g.name]
			if r.status != "" && r.status != "ok" {
				t.notes = append(t.notes, fmt.Sprintf("%s on %s: %s", g.name, rt, r.status))
			}
		}
	}
	return t
}

// serverNoise are RPCs critest makes around the benchmarks (connection
// checks), left out of the server-side table.
var serverNoise = map[string]bool{"Version": true, "RuntimeConfig": true, "ImageFsInfo": true, "Status": true}

func buildServerTable(runtimes []string, all map[string]map[string]*groupResult) table {
	return buildDurationTable(runtimes, all, "rpc", func(r *groupResult) map[string][]time.Duration {
		m := map[string][]time.Duration{}
		for rpc, d := range r.server {
			if !serverNoise[rpc] {
				m[rpc] = d
			}
		}
		return m
	})
}

func buildCNITable(runtimes []string, all map[string]map[string]*groupResult) table {
	return buildDurationTable(runtimes, all, "plugin call", func(r *groupResult) map[string][]time.Duration { return r.cni })
}

// buildDurationTable lists, per group, runtime and key, the percentiles of
// the durations that which picks out of each result.
func buildDurationTable(runtimes []string, all map[string]map[string]*groupResult, what string,
	which func(*groupResult) map[string][]time.Duration) table {
	t := table{header: []string{"group", "runtime", what, "n", "p50", "p90", "max"}}
	for _, g := range groups {
		for _, rt := range runtimes {
			m := which(all[rt][g.name])
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, rpc := range keys {
				s := sortedCopy(m[rpc])
				t.rows = append(t.rows, []string{g.name, rt, rpc, fmt.Sprint(len(s)),
					ms(percentile(s, 50)), ms(percentile(s, 90)), ms(s[len(s)-1])})
			}
		}
	}
	return t
}

func (t table) text() string {
	widths := make([]int, len(t.header))
	for i, h := range t.header {
		widths[i] = len(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for i, c := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := widths[i] - len([]rune(c))
			if i < 2 || i == 2 && t.header[1] == "runtime" { // names left, numbers right
				b.WriteString(c + strings.Repeat(" ", pad))
			} else {
				b.WriteString(strings.Repeat(" ", pad) + c)
			}
		}
		b.WriteString("\n")
	}
	line(t.header)
	for _, r := range t.rows {
		line(r)
	}
	for _, n := range t.notes {
		b.WriteString("note: " + n + "\n")
	}
	return b.String()
}

func (t table) markdown() string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(t.header, " | ") + " |\n|")
	for i := range t.header {
		if i < 2 {
			b.WriteString("---|")
		} else {
			b.WriteString("--:|")
		}
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	if len(t.notes) > 0 {
		b.WriteString("\n")
		for _, n := range t.notes {
			b.WriteString("- " + n + "\n")
		}
	}
	return b.String()
}

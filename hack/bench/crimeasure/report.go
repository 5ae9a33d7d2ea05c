package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// runReport reads RESULTS/RUNTIME/{scale,memory,kubelet}/round-*.json and
// writes the markdown tables: scale percentiles pooled over rounds, memory
// growth per pod for every round and the mean, and kubelet pod starts. The ratio columns are the
// first runtime over the second.
func runReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	results := fs.String("results", "", "results directory")
	runtimes := fs.String("runtimes", "slipwayd,containerd", "runtimes, comma-separated; ratios are first/second")
	md := fs.String("md", "", "markdown output (default stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rts := strings.Split(*runtimes, ",")
	var b strings.Builder
	scaleTable(&b, *results, rts)
	memoryTable(&b, *results, rts)
	kubeletTable(&b, *results, rts)
	if *md == "" {
		_, err := io.WriteString(os.Stdout, b.String())
		return err
	}
	return os.WriteFile(*md, []byte(b.String()), 0o644)
}

// rounds returns the decoded round-*.json files of RESULTS/RT/KIND, in name order.
func rounds[T any](results, rt, kind string) []T {
	files, _ := filepath.Glob(filepath.Join(results, rt, kind, "round-*.json"))
	sort.Strings(files)
	var out []T
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var v T
		if json.Unmarshal(b, &v) == nil {
			out = append(out, v)
		}
	}
	return out
}

// percentile is the nearest-rank percentile (p in 0..100) of sorted d.
func percentile(sorted []int64, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return time.Duration(sorted[i])
}

func ms(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond))
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func scaleTable(w io.Writer, results string, rts []string) {
	// pooled and undecoded are by runtime and then by row name.
	pooled, undecoded := map[string]map[string][]int64{}, map[string]map[string][]int64{}
	sizes := map[string]map[string]int{}
	setup := map[string]string{}
	shape := ""
	for _, rt := range rts {
		pooled[rt], undecoded[rt], sizes[rt] = map[string][]int64{}, map[string][]int64{}, map[string]int{}
		var setups []string
		for _, r := range rounds[scaleResult](results, rt, "scale") {
			shape = fmt.Sprintf("%d pods x %d sleep containers (%d containers)", r.Pods, r.Containers, r.Pods*r.Containers)
			setups = append(setups, fmt.Sprintf("%.1fs", r.Setup.Seconds()))
			for op, d := range r.Ops {
				pooled[rt][op] = append(pooled[rt][op], d...)
			}
			for op, d := range r.Undecoded {
				pooled[rt][op+undecodedRow] = append(pooled[rt][op+undecodedRow], d...)
				undecoded[rt][op] = d
			}
			for op, n := range r.ResponseBytes {
				sizes[rt][op] = n
			}
		}
		setup[rt] = strings.Join(setups, ", ")
	}
	if shape == "" {
		return // not run (or every run failed: the harness said so)
	}
	fmt.Fprintf(w, "## Scale: List and Status calls with %s running\n\n", shape)
	fmt.Fprintf(w, "One call at a time, after one untimed call; up to 300 calls per operation and round (fewer when they take over 20 s);\nsamples pooled over rounds; milliseconds, nearest-rank percentiles. ")
	var took []string
	for _, rt := range rts {
		if setup[rt] != "" {
			took = append(took, fmt.Sprintf("Starting them took %s on %s (per round).", setup[rt], rt))
		}
	}
	fmt.Fprint(w, strings.Join(took, " "))
	fmt.Fprintf(w, "\nIssue 11's target, reported and not asserted: slipwayd under 1 ms p99 for ListContainers, ListPodSandbox and ContainerStatus.")
	fmt.Fprintf(w, "\n\n| operation | n |")
	for _, rt := range rts {
		fmt.Fprintf(w, " %s p50 | %s p99 |", rt, rt)
	}
	if len(rts) == 2 {
		fmt.Fprintf(w, " p50 ratio | p99 ratio |")
	}
	fmt.Fprintf(w, "\n|---|--:|")
	for range rts {
		fmt.Fprintf(w, "--:|--:|")
	}
	if len(rts) == 2 {
		fmt.Fprintf(w, "--:|--:|")
	}
	fmt.Fprintln(w)
	rows := scaleOps
	for _, op := range rawOps {
		for _, rt := range rts {
			if len(undecoded[rt][op]) > 0 {
				rows = append(rows, op+undecodedRow)
				break
			}
		}
	}
	for _, op := range rows {
		p50, p99 := map[string]time.Duration{}, map[string]time.Duration{}
		n := 0
		for _, rt := range rts {
			d := append([]int64(nil), pooled[rt][op]...)
			sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
			p50[rt], p99[rt] = percentile(d, 50), percentile(d, 99)
			n = max(n, len(d))
		}
		fmt.Fprintf(w, "| %s | %d |", op, n)
		for _, rt := range rts {
			fmt.Fprintf(w, " %s | %s |", ms(p50[rt]), ms(p99[rt]))
		}
		if len(rts) == 2 {
			fmt.Fprintf(w, " %s | %s |", ratio(float64(p50[rts[0]]), float64(p50[rts[1]])), ratio(float64(p99[rts[0]]), float64(p99[rts[1]])))
		}
		fmt.Fprintln(w)
	}
	if len(rows) > len(scaleOps) {
		fmt.Fprintf(w, "\nRows%s time the same calls with the client keeping the response as bytes: the runtime and the transport without the client's protobuf decoding (crimeasure's here; kubelet decodes too).\n", undecodedRow)
	}
	var size []string
	for _, op := range scaleOps {
		var per []string
		for _, rt := range rts {
			if n := sizes[rt][op]; n > 0 {
				per = append(per, fmt.Sprintf("%s %.1f", rt, float64(n)/1000))
			}
		}
		if len(per) > 0 {
			size = append(size, fmt.Sprintf("%s %s", op, strings.Join(per, ", ")))
		}
	}
	if len(size) > 0 {
		fmt.Fprintf(w, "Response sizes, kB: %s.\n", strings.Join(size, "; "))
	}
	fmt.Fprintln(w)
}

// undecodedRow names the rows of scaleResult.Undecoded.
const undecodedRow = " (not decoded)"

func memoryTable(w io.Writer, results string, rts []string) {
	type perPod struct{ rss, pss float64 }
	all := map[string][]perPod{}
	last := map[string]memoryResult{}
	pods := 0
	for _, rt := range rts {
		for _, r := range rounds[memoryResult](results, rt, "memory") {
			if r.Pods == 0 {
				continue
			}
			pods = r.Pods
			all[rt] = append(all[rt], perPod{
				rss: float64(r.After.RSS-r.Before.RSS) / float64(r.Pods) / 1024,
				pss: float64(r.After.PSS-r.Before.PSS) / float64(r.Pods) / 1024,
			})
			last[rt] = r
		}
	}
	if pods == 0 {
		return
	}
	fmt.Fprintf(w, "## Memory per idle pod\n\n")
	fmt.Fprintf(w, "Growth of the summed RSS and PSS (/proc/PID/smaps_rollup) of every non-workload process (the daemon(s), shims, loggers,\n")
	fmt.Fprintf(w, "infra or pause; the `sleep` processes left out) from before to after %d pods with one `sleep` container each, divided by %d;\n", pods, pods)
	fmt.Fprintf(w, "measured 5 s after the pods started, after one warm-up pod was made and removed. MB = MiB.\n\n")
	fmt.Fprintf(w, "| runtime | RSS MB/pod per round | PSS MB/pod per round | RSS MB/pod mean | PSS MB/pod mean |\n|---|---|---|--:|--:|\n")
	mean := map[string]perPod{}
	for _, rt := range rts {
		var rs, ps []string
		var m perPod
		for _, p := range all[rt] {
			rs = append(rs, fmt.Sprintf("%.2f", p.rss))
			ps = append(ps, fmt.Sprintf("%.2f", p.pss))
			m.rss += p.rss / float64(len(all[rt]))
			m.pss += p.pss / float64(len(all[rt]))
		}
		mean[rt] = m
		fmt.Fprintf(w, "| %s | %s | %s | %.2f | %.2f |\n", rt, strings.Join(rs, ", "), strings.Join(ps, ", "), m.rss, m.pss)
	}
	if len(rts) == 2 {
		fmt.Fprintf(w, "| ratio | | | %s | %s |\n", ratio(mean[rts[0]].rss, mean[rts[1]].rss), ratio(mean[rts[0]].pss, mean[rts[1]].pss))
	}
	fmt.Fprintf(w, "\nBy process, last round (after the pods; count, RSS MiB, PSS MiB; in brackets the PSS growth over the baseline):\n\n")
	for _, rt := range rts {
		r, ok := last[rt]
		if !ok {
			continue
		}
		var names []string
		for c := range r.After.ByComm {
			names = append(names, c)
		}
		sort.Strings(names)
		var parts []string
		for _, c := range names {
			a, b := r.After.ByComm[c], r.Before.ByComm[c]
			parts = append(parts, fmt.Sprintf("`%s` %d, %.1f, %.1f [%+.1f PSS]", c, a.Count, float64(a.RSS)/1024, float64(a.PSS)/1024, float64(a.PSS-b.PSS)/1024))
		}
		fmt.Fprintf(w, "- %s: %s\n", rt, strings.Join(parts, "; "))
	}
	fmt.Fprintln(w)
}

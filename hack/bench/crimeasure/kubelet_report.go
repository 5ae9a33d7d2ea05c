package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// kubeletTable writes the kubelet section from RESULTS/RT/kubelet/round-*.json:
// per pod count, the per-pod start percentiles pooled over rounds, the time
// for all N pods per round and its mean, per runtime, and the ratios of the
// first runtime over the second.
func kubeletTable(w io.Writer, results string, rts []string) {
	type pooled struct {
		start, firstLog []int64
		all             []time.Duration // per round
		restarts        int
		sliCount        float64
	}
	data := map[string]map[int]*pooled{}
	var counts []int
	roundsRun := map[string]int{}
	for _, rt := range rts {
		data[rt] = map[int]*pooled{}
		for _, r := range rounds[kubeletResult](results, rt, "kubelet") {
			roundsRun[rt]++
			for _, ph := range r.Phases {
				p := data[rt][ph.Pods]
				if p == nil {
					p = &pooled{}
					data[rt][ph.Pods] = p
				}
				if !slices.Contains(counts, ph.Pods) {
					counts = append(counts, ph.Pods)
				}
				p.start = append(p.start, ph.Start...)
				p.firstLog = append(p.firstLog, ph.FirstLog...)
				p.all = append(p.all, time.Duration(slices.Max(append([]int64{0}, ph.Start...))))
				p.restarts += ph.Restarts
				p.sliCount += ph.SLICount
			}
		}
	}
	failed := kubeletFailures(results, rts)
	if len(counts) == 0 {
		if len(failed) > 0 {
			fmt.Fprintf(w, "## kubelet: static pods to running\n\nNo round finished:\n\n%s\n", strings.Join(failed, ""))
		}
		return // not run, or every run failed
	}
	slices.Sort(counts)
	sec := func(d time.Duration) string {
		if d == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f", d.Seconds())
	}
	pct := func(v []int64, p float64) time.Duration {
		s := slices.Clone(v)
		slices.Sort(s)
		return percentile(s, p)
	}
	mean := func(v []time.Duration) time.Duration {
		if len(v) == 0 {
			return 0
		}
		var t time.Duration
		for _, d := range v {
			t += d
		}
		return t / time.Duration(len(v))
	}

	fmt.Fprintf(w, "## kubelet: static pods to running\n\n")
	fmt.Fprintf(w, "A real kubelet (standalone: no API server, static pods from its manifest directory) on each runtime in turn, a fresh\n")
	fmt.Fprintf(w, "runtime and kubelet per round. Each pod: a web server (the nginx test image) with an exec readiness probe (`wget` of its\n")
	fmt.Fprintf(w, "page every second) and a busybox logging a line a second; small requests (Burstable). Images pulled on both runtimes\n")
	fmt.Fprintf(w, "before timing; one untimed warm-up pod first. N manifests are placed at once; a pod's start is from then to its last\n")
	fmt.Fprintf(w, "container's StartedAt in the runtime's ContainerStatus (what kubelet reports as startedAt). The slowest pod is the\n")
	fmt.Fprintf(w, "time for all N. Every pod was then seen Ready in kubelet's /pods (the probe works) before the pods were removed, and\n")
	fmt.Fprintf(w, "the next count started only when the runtime listed none. Seconds; nearest-rank percentiles of the pods of all rounds.\n\n")
	fmt.Fprintf(w, "| pods |")
	for _, rt := range rts {
		fmt.Fprintf(w, " %s p50 | %s p90 | %s all N, per round | %s all N mean |", rt, rt, rt, rt)
	}
	if len(rts) == 2 {
		fmt.Fprintf(w, " p50 ratio | p90 ratio | all N ratio |")
	}
	fmt.Fprintf(w, "\n|--:|")
	for range rts {
		fmt.Fprintf(w, "--:|--:|---|--:|")
	}
	if len(rts) == 2 {
		fmt.Fprintf(w, "--:|--:|--:|")
	}
	fmt.Fprintln(w)
	for _, n := range counts {
		fmt.Fprintf(w, "| %d |", n)
		p50, p90, all := map[string]time.Duration{}, map[string]time.Duration{}, map[string]time.Duration{}
		for _, rt := range rts {
			p := data[rt][n]
			if p == nil {
				p = &pooled{}
			}
			p50[rt], p90[rt], all[rt] = pct(p.start, 50), pct(p.start, 90), mean(p.all)
			var per []string
			for _, d := range p.all {
				per = append(per, sec(d))
			}
			fmt.Fprintf(w, " %s | %s | %s | %s |", sec(p50[rt]), sec(p90[rt]), strings.Join(per, ", "), sec(all[rt]))
		}
		if len(rts) == 2 {
			a, b := rts[0], rts[1]
			fmt.Fprintf(w, " %s | %s | %s |", ratio(float64(p50[a]), float64(p50[b])), ratio(float64(p90[a]), float64(p90[b])), ratio(float64(all[a]), float64(all[b])))
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintf(w, "\nCross-check with an end point both runtimes stamp alike: to the first line the pod's logging container wrote, as\n")
	fmt.Fprintf(w, "the runtime's logger timestamped it (slipwayd records StartedAt just before the task starts, containerd's CRI just\n")
	fmt.Fprintf(w, "after). p50 / p90, seconds:\n\n")
	for _, n := range counts {
		var parts []string
		var p50s []float64
		for _, rt := range rts {
			p := data[rt][n]
			if p == nil {
				continue
			}
			p50s = append(p50s, float64(pct(p.firstLog, 50)))
			parts = append(parts, fmt.Sprintf("%s %s / %s", rt, sec(pct(p.firstLog, 50)), sec(pct(p.firstLog, 90))))
		}
		if len(p50s) == 2 {
			parts = append(parts, "p50 ratio "+ratio(p50s[0], p50s[1]))
		}
		fmt.Fprintf(w, "- %d pods: %s\n", n, strings.Join(parts, "; "))
	}
	var notes []string
	for _, rt := range rts {
		restarts, sli, pods := 0, 0.0, 0
		for _, n := range counts {
			if p := data[rt][n]; p != nil {
				restarts += p.restarts
				sli += p.sliCount
				pods += len(p.start)
			}
		}
		notes = append(notes, fmt.Sprintf("%s: %d round(s), %d timed pods, %d container restarts, %.0f pod starts in kubelet_pod_start_sli_duration_seconds",
			rt, roundsRun[rt], pods, restarts, sli))
	}
	fmt.Fprintf(w, "\n%s.\n", strings.Join(notes, "; "))
	if len(failed) > 0 {
		fmt.Fprintf(w, "Rounds that failed (not in the tables):\n\n%s\n", strings.Join(failed, ""))
	}
	fmt.Fprintf(w, "kubelet's own pod start-up SLI metric leaves static pods out (v1.37 `pkg/kubelet/config/config.go`: \"ignore static\n")
	fmt.Fprintf(w, "pods\"), and `kubelet_pod_start_duration_seconds` is observed at a pod's first sync, so neither can time these pods;\n")
	fmt.Fprintf(w, "the CRI records can, to the nanosecond and without the probe period.\n\n")
}

// kubeletFailures lists RESULTS/RT/kubelet/round-*.failed (the harness
// writes the reason there when a round does not finish) as markdown items.
func kubeletFailures(results string, rts []string) []string {
	var out []string
	for _, rt := range rts {
		files, _ := filepath.Glob(filepath.Join(results, rt, "kubelet", "round-*.failed"))
		slices.Sort(files)
		for _, f := range files {
			b, _ := os.ReadFile(f)
			round := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "round-"), ".failed")
			out = append(out, fmt.Sprintf("- %s, round %s: %s\n", rt, round, strings.Join(strings.Fields(string(b)), " ")))
		}
	}
	return out
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	d := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for p, want := range map[float64]time.Duration{50: 5, 90: 9, 99: 10, 100: 10, 1: 1} {
		if got := percentile(d, p); got != want {
			t.Errorf("percentile(1..10, %v) = %v, want %v", p, got, want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
}

func TestReportTables(t *testing.T) {
	dir := t.TempDir()
	put := func(rt, kind string, v any) {
		p := filepath.Join(dir, rt, kind, "round-1.json")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writeJSON(p, v); err != nil {
			t.Fatal(err)
		}
	}
	put("a", "scale", scaleResult{Pods: 2, Containers: 3, Ops: map[string][]int64{"ListContainers": {1e6, 2e6}},
		Undecoded: map[string][]int64{"ListContainers": {5e5, 5e5}}, ResponseBytes: map[string]int{"ListContainers": 1500}})
	put("b", "scale", scaleResult{Pods: 2, Containers: 3, Ops: map[string][]int64{"ListContainers": {4e6, 4e6}}})
	put("a", "memory", memoryResult{Pods: 2, Before: memorySample{RSS: 1024, PSS: 1024}, After: memorySample{RSS: 5 * 1024, PSS: 3 * 1024}})
	put("b", "memory", memoryResult{Pods: 2, Before: memorySample{RSS: 0, PSS: 0}, After: memorySample{RSS: 8 * 1024, PSS: 4 * 1024}})
	put("a", "kubelet", kubeletResult{Phases: []kubeletPhase{{Pods: 2, Start: []int64{1e9, 2e9}, FirstLog: []int64{1e9, 2e9}}}})
	put("b", "kubelet", kubeletResult{Phases: []kubeletPhase{{Pods: 2, Start: []int64{2e9, 4e9}, FirstLog: []int64{3e9, 4e9}, Restarts: 1}}})
	if err := os.WriteFile(filepath.Join(dir, "b", "kubelet", "round-2.failed"), []byte("kubelet did not\nbecome healthy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	md := filepath.Join(dir, "out.md")
	if err := runReport([]string{"-results", dir, "-runtimes", "a,b", "-md", md}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"2 pods x 3 sleep containers (6 containers)",
		"| ListContainers | 2 | 1.000 | 2.000 | 4.000 | 4.000 | 0.25x | 0.50x |",
		"| ListContainers (not decoded) | 2 | 0.500 | 0.500 | — | — | — | — |",
		"Response sizes, kB: ListContainers a 1.5.",
		"| a | 2.00 | 1.00 | 2.00 | 1.00 |",
		"| b | 4.00 | 2.00 | 4.00 | 2.00 |",
		"| ratio | | | 0.50x | 0.50x |",
		"| 2 | 1.00 | 2.00 | 2.00 | 2.00 | 2.00 | 4.00 | 4.00 | 4.00 | 0.50x | 0.50x | 0.50x |",
		"- 2 pods: a 1.00 / 2.00; b 3.00 / 4.00; p50 ratio 0.33x",
		"b: 1 round(s), 2 timed pods, 1 container restarts",
		"- b, round 2: kubelet did not become healthy",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q:\n%s", want, b)
		}
	}
}

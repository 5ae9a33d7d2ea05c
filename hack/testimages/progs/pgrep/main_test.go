package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestProcesses(t *testing.T) {
	root := t.TempDir()
	for pid, files := range map[string]map[string]string{
		"12":   {"comm": "sleep\n", "cmdline": "sleep\x004321\x00"},
		"3":    {"comm": "sh\n", "cmdline": "sh\x00-c\x00pgrep sleep || true\x00"},
		"7":    {"comm": "kthreadd\n", "cmdline": ""},
		"self": {"comm": "x\n"},
	} {
		dir := filepath.Join(root, pid)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		full bool
		want []process
	}{
		{false, []process{{3, "sh"}, {7, "kthreadd"}, {12, "sleep"}}},
		{true, []process{{3, "sh -c pgrep sleep || true"}, {12, "sleep 4321"}}},
	}
	for _, tt := range tests {
		got := processes(root, tt.full)
		if len(got) != len(tt.want) {
			t.Fatalf("processes(full=%v) = %v, want %v", tt.full, got, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("processes(full=%v)[%d] = %v, want %v", tt.full, i, got[i], tt.want[i])
			}
		}
	}
}

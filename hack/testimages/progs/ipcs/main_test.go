package main

import (
	"strings"
	"testing"
)

func TestPrintSegments(t *testing.T) {
	const proc = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n" +
		"-276750059      32769   644                  4096 15162     0      0     0     0     0     0          0          0 1795754549                     0                     0\n"
	owner := func(uid string) string { return map[string]string{"0": "root"}[uid] }

	var b strings.Builder
	if err := segments.print(&b, strings.NewReader(proc), owner); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if lines[1] != "------ Shared Memory Segments --------" {
		t.Errorf("title = %q", lines[1])
	}
	row := strings.Fields(lines[3])
	want := []string{"0xef812115", "32769", "root", "644", "4096", "0"}
	if strings.Join(row, " ") != strings.Join(want, " ") {
		t.Errorf("row = %q, want %q", row, want)
	}

	b.Reset()
	header := strings.SplitAfter(proc, "\n")[0]
	if err := segments.print(&b, strings.NewReader(header), owner); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(b.String(), "0123456789") {
		t.Errorf("empty table output %q contains digits", b.String())
	}
}

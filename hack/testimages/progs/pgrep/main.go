// Command pgrep lists the processes whose name matches a regular expression,
// a small stand-in for procps' pgrep (busybox-static on Debian lacks it).
//
// Usage: pgrep [-f] [-l] [-x] PATTERN
//
//	-f  match against the full command line instead of the process name
//	-l  print the process name (or command line with -f) after each pid
//	-x  require the whole name (or command line) to match
//
// It never lists itself. Exit status: 0 if something matched, 1 if nothing
// did, 2 on a usage error or an invalid pattern.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

func main() {
	full := flag.Bool("f", false, "match the full command line")
	long := flag.Bool("l", false, "print the name after the pid")
	exact := flag.Bool("x", false, "match the whole name")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: pgrep [-f] [-l] [-x] PATTERN")
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	expr := flag.Arg(0)
	if *exact {
		expr = "^(?:" + expr + ")$"
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgrep: %v\n", err)
		os.Exit(2)
	}
	found := false
	for _, p := range processes("/proc", *full) {
		if p.pid == os.Getpid() || !re.MatchString(p.text) {
			continue
		}
		found = true
		if *long {
			fmt.Printf("%d %s\n", p.pid, p.text)
		} else {
			fmt.Println(p.pid)
		}
	}
	if !found {
		os.Exit(1)
	}
}

// process is one entry of /proc: its pid and the text a pattern is matched against.
type process struct {
	pid  int
	text string
}

// processes lists the processes under procRoot in pid order with their name,
// or with their command line (arguments joined by spaces) when full is set.
// Processes that exit while being read, or whose command line is empty
// (kernel threads) under full, are left out.
func processes(procRoot string, full bool) []process {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil
	}
	var out []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		file := "comm"
		if full {
			file = "cmdline"
		}
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), file))
		if err != nil {
			continue
		}
		text := strings.TrimRight(string(b), "\n\x00")
		if full {
			text = strings.ReplaceAll(text, "\x00", " ")
		}
		if text == "" {
			continue
		}
		out = append(out, process{pid: pid, text: text})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pid < out[j].pid })
	return out
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// memorySample is the summed memory of a runtime's non-workload processes
// at one moment, in KiB, in total and by process name (comm).
type memorySample struct {
	Processes int                  `json:"processes"`
	RSS       int64                `json:"rssKiB"`
	PSS       int64                `json:"pssKiB"`
	ByComm    map[string]commUsage `json:"byComm"`
}

type commUsage struct {
	Count int   `json:"count"`
	RSS   int64 `json:"rssKiB"`
	PSS   int64 `json:"pssKiB"`
}

// memoryResult is the JSON result of one memory run.
type memoryResult struct {
	Pods   int          `json:"pods"`
	Before memorySample `json:"before"`
	After  memorySample `json:"after"`
}

// skipComms are not counted: the container processes themselves (sleep),
// and the harness's own containerd watcher (hack/bench/ctrwatch), whose
// command line holds the run's work dir.
var skipComms = map[string]bool{"sleep": true, "ctrwatch": true}

func runMemory(args []string) error {
	fs := flag.NewFlagSet("memory", flag.ContinueOnError)
	var c common
	c.register(fs)
	pods := fs.Int("pods", 20, "pods with one sleep container each")
	daemonPID := fs.Int("daemon-pid", 0, "the runtime daemon's pid: it and its descendants count")
	match := fs.String("match", "", "processes whose command line holds this string count too, with their descendants (the shims: their -address is under the run's work dir)")
	settle := fs.Duration("settle", 5*time.Second, "wait this long after the pods start before measuring")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	if *daemonPID <= 0 || *match == "" {
		return fmt.Errorf("-daemon-pid and -match are required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	rs, closeConn, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	// One pod made and removed first, so that what the daemon sets up
	// once (CNI config, caches) is in the baseline, not in the growth.
	warm := &podSet{rs: rs, image: c.image, logDir: c.logDir, prefix: "warm"}
	if err := warm.run(ctx, 1, 1, 1); err != nil {
		_ = warm.removeAll()
		return err
	}
	if err := warm.removeAll(); err != nil {
		return err
	}
	time.Sleep(*settle)
	res := memoryResult{Pods: *pods}
	if res.Before, err = measure(*daemonPID, *match); err != nil {
		return err
	}
	set := &podSet{rs: rs, image: c.image, logDir: c.logDir, prefix: "mem"}
	defer func() {
		if err := set.removeAll(); err != nil {
			fmt.Println("crimeasure: cleanup:", err)
		}
	}()
	if err := set.run(ctx, *pods, 1, 2); err != nil {
		return err
	}
	time.Sleep(*settle)
	if res.After, err = measure(*daemonPID, *match); err != nil {
		return err
	}
	return writeJSON(c.out, res)
}

// measure sums RSS and PSS over daemonPID, the processes whose command line
// contains match, and all their descendants, workload processes left out.
func measure(daemonPID int, match string) (memorySample, error) {
	procs, err := listProcs()
	if err != nil {
		return memorySample{}, err
	}
	counted := map[int]bool{}
	children := map[int][]int{}
	var roots []int
	self := os.Getpid() // its command line holds match
	for pid, p := range procs {
		if pid == self {
			continue
		}
		children[p.ppid] = append(children[p.ppid], pid)
		if pid == daemonPID || strings.Contains(p.cmdline, match) {
			roots = append(roots, pid)
		}
	}
	for len(roots) > 0 {
		pid := roots[len(roots)-1]
		roots = roots[:len(roots)-1]
		if counted[pid] {
			continue
		}
		counted[pid] = true
		roots = append(roots, children[pid]...)
	}
	s := memorySample{ByComm: map[string]commUsage{}}
	for pid := range counted {
		comm := procs[pid].comm
		if skipComms[comm] {
			continue
		}
		rss, pss, err := smapsRollup(pid)
		if err != nil {
			continue // exited meanwhile
		}
		s.Processes++
		s.RSS += rss
		s.PSS += pss
		u := s.ByComm[comm]
		u.Count++
		u.RSS += rss
		u.PSS += pss
		s.ByComm[comm] = u
	}
	return s, nil
}

type procInfo struct {
	ppid    int
	comm    string
	cmdline string
}

func listProcs() (map[int]procInfo, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, err
	}
	procs := map[int]procInfo{}
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parens.
		open, closing := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || closing < open {
			continue
		}
		fields := strings.Fields(string(stat[closing+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		cmdline, _ := os.ReadFile(filepath.Join(d, "cmdline"))
		procs[pid] = procInfo{ppid: ppid, comm: string(stat[open+1 : closing]), cmdline: string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))}
	}
	return procs, nil
}

// smapsRollup reads Rss and Pss (KiB) from /proc/PID/smaps_rollup.
func smapsRollup(pid int) (rss, pss int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "Rss:":
			rss = v
		case "Pss:":
			pss = v
		}
	}
	return rss, pss, sc.Err()
}

// Command ipcs reports the System V IPC objects of the caller's IPC namespace
// in util-linux's layout, a small stand-in for util-linux' ipcs (busybox-static
// on Debian lacks it). It reads /proc/sysvipc.
//
// Usage: ipcs [-m] [-q] [-s] [-a]
//
// -m, -q and -s select shared memory segments, message queues and semaphore
// arrays; with none of them (or -a) all three are shown. An empty table prints
// only its title and column names, which contain no digits, so a caller can
// look for an id in the output.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// table describes one /proc/sysvipc file and how util-linux prints it.
type table struct {
	file, title string
	// idColumn heads the id column; extra are the columns after "perms".
	idColumn string
	extra    []column
}

// column is one trailing heading and the /proc/sysvipc field printed under it.
type column struct {
	heading, field string
	width          int
}

var (
	queues = table{file: "msg", title: "Message Queues", idColumn: "msqid",
		extra: []column{{"used-bytes", "cbytes", 12}, {"messages", "qnum", 12}}}
	segments = table{file: "shm", title: "Shared Memory Segments", idColumn: "shmid",
		extra: []column{{"bytes", "size", 10}, {"nattch", "nattch", 10}, {"status", "", 12}}}
	arrays = table{file: "sem", title: "Semaphore Arrays", idColumn: "semid",
		extra: []column{{"nsems", "nsems", 10}}}
)

func main() {
	shm := flag.Bool("m", false, "shared memory segments")
	msg := flag.Bool("q", false, "message queues")
	sem := flag.Bool("s", false, "semaphore arrays")
	all := flag.Bool("a", false, "all (default)")
	flag.Parse()
	if *all || !(*shm || *msg || *sem) {
		*shm, *msg, *sem = true, true, true
	}
	for _, sel := range []struct {
		on bool
		t  table
	}{{*msg, queues}, {*shm, segments}, {*sem, arrays}} {
		if !sel.on {
			continue
		}
		f, err := os.Open("/proc/sysvipc/" + sel.t.file)
		if err != nil {
			fmt.Fprintf(os.Stderr, "ipcs: %v\n", err)
			os.Exit(1)
		}
		err = sel.t.print(os.Stdout, f, ownerName)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "ipcs: %v\n", err)
			os.Exit(1)
		}
	}
}

// print writes t as util-linux does, reading the rows from src, a
// /proc/sysvipc file, and naming owners with owner.
func (t table) print(w io.Writer, src io.Reader, owner func(uid string) string) error {
	fmt.Fprintf(w, "\n------ %s --------\n", t.title)
	fmt.Fprintf(w, "%-10s %-10s %-10s %-10s", "key", t.idColumn, "owner", "perms")
	for _, c := range t.extra {
		fmt.Fprintf(w, " %-*s", c.width, c.heading)
	}
	fmt.Fprintln(w)
	sc := bufio.NewScanner(src)
	var fields []string
	for sc.Scan() {
		values := strings.Fields(sc.Text())
		if fields == nil {
			fields = values
			continue
		}
		row := map[string]string{}
		for i, v := range values {
			if i < len(fields) {
				row[fields[i]] = v
			}
		}
		key, err := strconv.ParseInt(row["key"], 10, 64)
		if err != nil {
			return fmt.Errorf("bad key %q in %s", row["key"], t.file)
		}
		fmt.Fprintf(w, "0x%08x %-10s %-10s %-10s", uint32(key), row[fields[1]], owner(row["uid"]), row["perms"])
		for _, c := range t.extra {
			fmt.Fprintf(w, " %-*s", c.width, row[c.field])
		}
		fmt.Fprintln(w)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return nil
}

// ownerName returns the user name of uid from /etc/passwd, or uid itself.
func ownerName(uid string) string {
	if u, err := user.LookupId(uid); err == nil {
		return u.Username
	}
	return uid
}

// Command cnitrace times CNI plugin calls for hack/bench/cri.sh --trace-cni.
//
// A trace directory holds this binary under each plugin's name (links to
// one file), a file "real-dir" naming the directory of the real plugins,
// and receives "trace.log". Pointed at that directory instead of the real
// one, a runtime runs cnitrace, which runs the real plugin with the same
// arguments, environment, stdin, stdout and stderr, and appends one line:
//
//	plugin=bridge cmd=ADD container=ID start=UNIXNANO duration=12.3ms rc=0
//
// The line costs a fork/exec more than the plugin alone (about a
// millisecond), so traced runs are for finding where time goes, not for
// the headline numbers.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	self, err := os.Executable()
	if err != nil {
		fail(err)
	}
	dir := filepath.Dir(self)
	name := filepath.Base(os.Args[0])
	realDir, err := os.ReadFile(filepath.Join(dir, "real-dir"))
	if err != nil {
		fail(err)
	}
	cmd := exec.Command(filepath.Join(strings.TrimSpace(string(realDir)), name), os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	rc := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		rc = exitErr.ExitCode()
	} else if err != nil {
		fail(err)
	}
	line := fmt.Sprintf("plugin=%s cmd=%s container=%s start=%d duration=%s rc=%d\n",
		name, os.Getenv("CNI_COMMAND"), os.Getenv("CNI_CONTAINERID"), start.UnixNano(), took, rc)
	if f, err := os.OpenFile(filepath.Join(dir, "trace.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
		_, _ = f.WriteString(line) // one write of a short line: O_APPEND keeps lines whole
		_ = f.Close()
	}
	os.Exit(rc)
}

// fail reports a wrapper error the way a CNI plugin reports errors.
func fail(err error) {
	fmt.Printf(`{"cniVersion":"1.0.0","code":999,"msg":%q}`+"\n", "cnitrace: "+err.Error())
	os.Exit(1)
}

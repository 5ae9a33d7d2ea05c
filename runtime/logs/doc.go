// Package logs writes and reads container logs in the CRI log format, and
// holds slipwayd's side of the contract with cmd/slipway-logger, the binary
// the containerd shim runs to write those logs.
//
// # Format
//
// A CRI log file holds one entry per line, both streams of a container in one
// file:
//
//	2016-10-06T00:17:09.669794202Z stdout P the first 16 KiB of a long line
//	2016-10-06T00:17:09.669794203Z stdout F the rest of it
//	2016-10-06T00:17:09.669794204Z stderr F a short line
//
// The fields are the time the entry was written (RFC 3339 with nanoseconds),
// the stream (stdout or stderr), the tag (F for the end of a line, P for a
// piece of a line that continues in the next entry of the same stream) and
// the content, which never holds the line's "\n" or "\r\n". A line longer than
// the maximum line size (DefaultMaxLineSize) is cut into P entries of exactly
// that size and ends with an F entry; output that ends without a newline ends
// with a P entry. This is what containerd's CRI writes and what kubelet's
// reader (k8s.io/cri-client/pkg/logs) expects. Writer writes the format,
// ParseLine and ReadEntries read it.
//
// # The logger binary
//
// slipwayd does not copy container output itself: the shim starts
// slipway-logger per container through containerd's binary log URI, so logs
// keep flowing while slipwayd is down or restarting. LogURI builds the URI
// for a task (pass it to cio.LogURI, or cio.TerminalLogURI for a container
// with a terminal):
//
//	binary-v2:///usr/local/bin/slipway-logger?path=LOG&pidfile=PID[&tty=true][&max-line-size=N][&attach=SOCK]
//
// The shim runs the binary with the query as "key value" argument pairs (in
// no fixed order), CONTAINER_ID and CONTAINER_NAMESPACE as its only
// environment, the container's stdout on fd 3, its stderr on fd 4 and a
// ready pipe on fd 5. The "binary-v2" scheme makes the shim fail task
// creation when the logger exits before it reports ready, instead of starting
// a container whose output has no reader. LoggerArgs documents each
// argument.
//
// The logger, once ready, has the log file open and its pid file written
// and locked. It writes every complete line at once, so everything a
// container printed before it exited is in the file when the exit is
// reported; a last line without a newline is written when the stream ends.
// On SIGUSR1 it reopens the log path (kubelet's rotation renames the file,
// then calls ReopenContainerLog, which calls Reopen). It exits 0 when its
// streams reach end of file, which is when the shim closes them at task
// delete; on SIGTERM (sent by the shim right after closing them) it drains
// what the pipes still hold for up to a second and exits 0. Delete a task
// soon after its exit so its logger ends.
//
// # Attach
//
// With the attach argument the logger also serves the container's live
// output on a unix socket (ListenAttach, DialAttach): CRI Attach reads the
// output there, so attach works across slipwayd restarts, and a container
// without a log path still gets a logger (writing to /dev/null) for it.
// Attach's stdin is not the logger's business: it is a FIFO the shim reads
// (the task IO's stdin), which slipwayd opens for writing per attach.
package logs

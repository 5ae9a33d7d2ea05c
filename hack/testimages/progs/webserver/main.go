// Command webserver stands in for nginx and Apache httpd in the test images.
// It serves a directory over HTTP until SIGTERM, SIGINT, SIGQUIT or SIGWINCH
// (the stop signals of the images it replaces), then exits 0. It behaves like
// the program it is installed as, named by the file it runs from:
//
//   - nginx: listens on the port of the first "listen N;" in
//     /etc/nginx/conf.d/default.conf (80 without one), serves
//     /usr/share/nginx/html, writes its pid to /var/run/nginx.pid and first
//     re-executes itself so that /proc/PID/cmdline reads
//     "nginx: master process nginx -g daemon off;" as real nginx's does
//     (critest looks for "master process" there, and for "nginx" with pidof).
//   - anything else, e.g. httpd-foreground: listens on :80, serves
//     /usr/local/apache2/htdocs, writes /usr/local/apache2/logs/httpd.pid and
//     logs lines starting with "httpd" to stderr.
//
// Requests are logged to stdout.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// profile is what the server does when installed under a given name.
type profile struct {
	config  string // file holding "listen N;", or "" for port 80
	root    string // directory served
	pidFile string
	title   string // argv[0] prefix to re-execute under, or ""
	banner  string // logged to stderr once listening
}

var (
	nginx = profile{
		config:  "/etc/nginx/conf.d/default.conf",
		root:    "/usr/share/nginx/html",
		pidFile: "/var/run/nginx.pid",
		title:   "nginx: master process ",
	}
	httpd = profile{
		root:    "/usr/local/apache2/htdocs",
		pidFile: "/usr/local/apache2/logs/httpd.pid",
		banner:  "httpd (slipway test image): serving on port %d",
	}
)

func main() {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	p := httpd
	if filepath.Base(exe) == "nginx" {
		p = nginx
	}
	if p.title != "" && !strings.HasPrefix(os.Args[0], p.title) {
		argv0 := p.title + strings.Join(os.Args, " ")
		err := syscall.Exec(exe, []string{argv0}, os.Environ())
		log.Fatalf("re-executing %s: %v", exe, err)
	}
	if err := serve(p); err != nil {
		log.Fatal(err)
	}
}

// serve runs p until a stop signal arrives.
func serve(p profile) error {
	port := 80
	if p.config != "" {
		b, err := os.ReadFile(p.config)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if n, ok := listenPort(string(b)); ok {
			port = n
		}
	}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return err
	}
	if err := os.WriteFile(p.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	if p.banner != "" {
		fmt.Fprintf(os.Stderr, p.banner+"\n", port)
	}

	ctx, stop := signal.NotifyContext(context.Background(),
		syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGWINCH)
	defer stop()
	srv := &http.Server{Handler: logRequests(http.FileServer(http.Dir(p.root))), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	_ = os.Remove(p.pidFile)
	return nil
}

var listenRE = regexp.MustCompile(`(?m)^\s*listen\s+(?:[^;\s]*:)?(\d+)\b[^;]*;`)

// listenPort returns the port of the first "listen" directive in an nginx
// configuration, and whether there is one.
func listenPort(conf string) (int, bool) {
	m := listenRE.FindStringSubmatch(conf)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil && n > 0 && n < 65536
}

// logRequests logs one line per request to stdout, after the combined log format.
func logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Printf("%s - - [%s] %q\n", host, time.Now().Format("02/Jan/2006:15:04:05 -0700"),
			r.Method+" "+r.URL.RequestURI()+" "+r.Proto)
	})
}

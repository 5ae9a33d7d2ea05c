// Command testimages builds the test image set (see package testregistry),
// serves it from an in-memory registry on a loopback address, writes a
// containerd hosts directory pointing the public registries at it, prints the
// registry's address and runs until SIGINT or SIGTERM.
//
//	go run ./hack/testimages --addr 127.0.0.1:5000 --hosts-dir /etc/slipway/certs.d
//
// With --addr-file F the address is also written to F once the registry is
// ready (every image pushed, the hosts directory written), and F is removed
// on exit; a script can wait for F to appear. --list prints the image names
// and exits without building anything.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/slipway-dev/slipway/hack/testimages/testregistry"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "testimages:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "loopback `host:port` to serve on (port 0 picks a free one)")
	hostsDir := flag.String("hosts-dir", "", "containerd hosts `directory` to write HOST/hosts.toml files into (none if empty)")
	addrFile := flag.String("addr-file", "", "`file` to write the address to once ready; removed on exit")
	list := flag.Bool("list", false, "print the image names and exit")
	auth := flag.String("auth", "", "`user:password` required for "+testregistry.PrivatePrefix+"* repositories (open if empty)")
	busybox := flag.String("busybox", "/bin/busybox", "static busybox `binary` the images are made from")
	glibcBusybox := flag.String("glibc-busybox", "", "busybox `binary` whose shell execs from PATH, for the default image and *-glibc images")
	fetchGlibc := flag.Bool("fetch-glibc-busybox", false, "download Debian's busybox package with apt-get (cached in the user cache dir) and use it as --glibc-busybox")
	verbose := flag.Bool("v", false, "log every registry request to stderr")
	flag.Parse()
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}

	if *list {
		for _, n := range testregistry.Names() {
			fmt.Println(n)
		}
		fmt.Printf("ADDR/%s (loopback only; --auth protects it)\n", testregistry.PrivateImage)
		return nil
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	opts := testregistry.Options{Addr: *addr, Build: testregistry.BuildOptions{Busybox: *busybox, GlibcBusybox: *glibcBusybox}}
	if *fetchGlibc && opts.Build.GlibcBusybox == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return err
		}
		bin, err := testregistry.FetchDebianBusybox(ctx, filepath.Join(cache, "slipway", "debian-busybox"))
		if err != nil {
			return err
		}
		opts.Build.GlibcBusybox = bin
	}
	if *auth != "" {
		user, pass, ok := strings.Cut(*auth, ":")
		if !ok || user == "" || pass == "" {
			return errors.New("--auth wants user:password")
		}
		opts.Auth = &testregistry.Credentials{Username: user, Password: pass}
	}
	if *verbose {
		opts.Log = log.New(os.Stderr, "registry: ", log.LstdFlags)
	}

	srv, err := testregistry.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer srv.Close()
	if *hostsDir != "" {
		if err := testregistry.WriteHostsDir(*hostsDir, srv.Addr()); err != nil {
			return err
		}
	}
	if *addrFile != "" {
		if err := writeAddrFile(*addrFile, srv.Addr()); err != nil {
			return err
		}
		defer os.Remove(*addrFile)
	}
	fmt.Println(srv.Addr())

	<-ctx.Done()
	return nil
}

// writeAddrFile writes addr and a newline to path through a rename, so a
// reader never sees a partial file.
func writeAddrFile(path, addr string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(addr+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

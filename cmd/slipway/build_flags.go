package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// defaultAddr is slipwayd's builder socket; $BUILDKIT_HOST overrides it.
const defaultAddr = "unix:///run/slipway/buildkit.sock"

// buildOptions are the parsed flags and argument of `slipway build`.
type buildOptions struct {
	contextDir   string
	file         string   // -f: the Dockerfile; "-" reads it from stdin
	tags         []string // -t, repeatable
	buildArgs    []string // KEY=VALUE or KEY (taken from the environment)
	labels       []string // KEY=VALUE
	target       string
	platform     string
	noCache      bool
	pull         bool
	cacheFrom    []string
	cacheTo      []string
	secrets      []string
	ssh          []string
	outputs      []string
	push         bool
	keep         bool
	progress     string
	quiet        bool
	iidFile      string
	metadataFile string
	addr         string
	tlsCA        string
	tlsCert      string
	tlsKey       string
	tlsName      string
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

const buildUsage = `Usage: slipway build [OPTIONS] PATH

Build an image from the Dockerfile in the context directory PATH on a slipway
builder. By default the image lands in the node's image store under its -t
tags, unpacked and ready for a pod.

Options:
`

// parseBuildFlags parses `slipway build` arguments. Flags may come before
// or after PATH, as with docker build. getenv supplies $BUILDKIT_HOST.
func parseBuildFlags(args []string, stderr io.Writer, getenv func(string) string) (buildOptions, error) {
	var o buildOptions
	fs := flag.NewFlagSet("slipway build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, buildUsage)
		printFlags(stderr, fs)
	}
	fs.StringVar(&o.file, "f", "", "Dockerfile (default PATH/Dockerfile; - reads stdin)")
	fs.StringVar(&o.file, "file", "", "same as -f")
	fs.Var((*stringList)(&o.tags), "t", "image name and tag, name:tag (repeatable)")
	fs.Var((*stringList)(&o.tags), "tag", "same as -t")
	fs.Var((*stringList)(&o.buildArgs), "build-arg", "build-time variable KEY=VALUE, or KEY to take it from the environment (repeatable)")
	fs.Var((*stringList)(&o.labels), "label", "image label KEY=VALUE (repeatable)")
	fs.StringVar(&o.target, "target", "", "build stage to stop at")
	fs.StringVar(&o.platform, "platform", "", "target platform (the builder's own by default)")
	fs.BoolVar(&o.noCache, "no-cache", false, "do not use the build cache")
	fs.BoolVar(&o.pull, "pull", false, "always resolve base images in their registry")
	fs.Var((*stringList)(&o.cacheFrom), "cache-from", "cache source: type=registry,ref=R | type=local,src=DIR | R (repeatable)")
	fs.Var((*stringList)(&o.cacheTo), "cache-to", "cache destination: type=registry,ref=R[,mode=max] | type=local,dest=DIR | type=inline (repeatable)")
	fs.Var((*stringList)(&o.secrets), "secret", "secret for RUN --mount=type=secret: id=ID,src=FILE | id=ID,env=VAR (repeatable)")
	fs.Var((*stringList)(&o.ssh), "ssh", "ssh agent socket or keys for RUN --mount=type=ssh: default | ID=PATH[,PATH] (repeatable)")
	fs.Var((*stringList)(&o.outputs), "output", "output: type=image|registry|oci|docker|local|tar[,dest=PATH][,name=...] or a directory (repeatable)")
	fs.Var((*stringList)(&o.outputs), "o", "same as --output")
	fs.BoolVar(&o.push, "push", false, "push the image to its registry (same as --output type=registry)")
	fs.BoolVar(&o.keep, "keep", false, "pin the image on this node: slipway's CRI reports it pinned and kubelet's image GC keeps it")
	fs.StringVar(&o.progress, "progress", "auto", "progress output: auto, plain, tty, quiet or rawjson")
	fs.BoolVar(&o.quiet, "q", false, "print only the image ID (same as --progress=quiet)")
	fs.BoolVar(&o.quiet, "quiet", false, "same as -q")
	fs.StringVar(&o.iidFile, "iidfile", "", "write the image ID to this file")
	fs.StringVar(&o.metadataFile, "metadata-file", "", "write the build result metadata (JSON) to this file")
	fs.StringVar(&o.addr, "addr", "", "builder address, unix:///PATH or tcp://HOST:PORT (default $BUILDKIT_HOST or "+defaultAddr+")")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "CA that signs the builder's certificate (tcp)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "client certificate (tcp)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "client key (tcp)")
	fs.StringVar(&o.tlsName, "tls-server-name", "", "expected server name in the builder's certificate (tcp)")

	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return buildOptions{}, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != 1 {
		fs.Usage()
		return buildOptions{}, exitError{code: 2}
	}
	o.contextDir = positional[0]
	if o.addr == "" {
		o.addr = getenv("BUILDKIT_HOST")
	}
	if o.addr == "" {
		o.addr = defaultAddr
	}
	if o.quiet {
		o.progress = "quiet"
	}
	return o, o.validate()
}

// validate names the first flag that cannot work.
func (o buildOptions) validate() error {
	if o.contextDir == "-" {
		return errors.New("build context from stdin is not supported: give a directory")
	}
	if st, err := os.Stat(o.contextDir); err != nil {
		return fmt.Errorf("build context %q: %w", o.contextDir, err)
	} else if !st.IsDir() {
		return fmt.Errorf("build context %q is not a directory", o.contextDir)
	}
	switch o.progress {
	case "auto", "plain", "tty", "quiet", "rawjson":
	default:
		return fmt.Errorf("--progress must be auto, plain, tty, quiet or rawjson, got %q", o.progress)
	}
	for _, t := range o.tags {
		if t == "" || strings.Contains(t, ",") {
			return fmt.Errorf("-t %q is not an image name", t)
		}
	}
	for _, l := range o.labels {
		if k, _, ok := strings.Cut(l, "="); !ok || k == "" {
			return fmt.Errorf("--label %q: want KEY=VALUE", l)
		}
	}
	for _, a := range o.buildArgs {
		if k, _, _ := strings.Cut(a, "="); k == "" {
			return fmt.Errorf("--build-arg %q: want KEY=VALUE or KEY", a)
		}
	}
	if o.push && len(o.outputs) > 0 {
		return errors.New("--push cannot be combined with --output: use --output type=registry")
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	return nil
}

// printFlags lists fs's flags docker-style: "-t" for one letter, "--name"
// otherwise, with the default when it is not the zero value.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		kind, usage := flag.UnquoteUsage(f)
		if kind != "" {
			kind = " " + kind
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" {
			def = fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(w, "  %s%s%s\n    \t%s%s\n", dash, f.Name, kind, usage, def)
	})
}

// parseCSV splits a docker-style "k=v,k2=v2" flag value into its fields
// (quoted fields may contain commas). A field without '=' has an empty
// value and is reported in bare.
func parseCSV(flagName, value string) (attrs map[string]string, bare []string, err error) {
	r := csv.NewReader(strings.NewReader(value))
	fields, err := r.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("%s %q: %w", flagName, value, err)
	}
	attrs = map[string]string{}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		k = strings.TrimSpace(k)
		if !ok {
			bare = append(bare, k)
			continue
		}
		if k == "" {
			return nil, nil, fmt.Errorf("%s %q: empty key in %q", flagName, value, f)
		}
		attrs[k] = v
	}
	return attrs, bare, nil
}

package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/util/progress/progressui"
	"golang.org/x/sync/errgroup"
)

// runBuild is `slipway build`: it parses args, sends the build to the
// builder with the context and Dockerfile directories as session locals,
// shows BuildKit's progress on stderr, and writes --iidfile and
// --metadata-file. A failed build prints the failing Dockerfile lines and
// the error, and returns exitError{1}.
func runBuild(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parseBuildFlags(args, stderr, os.Getenv)
	if err != nil {
		return err
	}
	contextDir, dockerfileDir, dockerfileName, cleanup, err := localDirs(o, stdin)
	defer cleanup()
	if err != nil {
		return err
	}
	mounts, err := localMounts(contextDir, dockerfileDir)
	if err != nil {
		return err
	}
	exports, err := exportEntries(o, nopCloser{stdout})
	if err != nil {
		return err
	}
	cacheImports, err := cacheEntries("--cache-from", o.cacheFrom, false)
	if err != nil {
		return err
	}
	cacheExports, err := cacheEntries("--cache-to", o.cacheTo, true)
	if err != nil {
		return err
	}
	attachables, err := sessionAttachables(o, stderr)
	if err != nil {
		return err
	}
	solveOpt := client.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: frontendAttrs(o, dockerfileName, os.LookupEnv),
		LocalMounts:   mounts,
		Exports:       exports,
		CacheImports:  cacheImports,
		CacheExports:  cacheExports,
		Session:       attachables,
		Ref:           identity.NewID(),
	}

	c, err := client.New(ctx, o.addr, clientOpts(o)...)
	if err != nil {
		return fmt.Errorf("connecting to the builder at %s: %w", o.addr, err)
	}
	defer c.Close()

	resp, err := solveWithProgress(ctx, c, solveOpt, o.progress, stderr)
	if err != nil {
		printFailure(stderr, err)
		return exitError{code: 1}
	}
	id := imageID(resp.ExporterResponse)
	if o.quiet && id != "" {
		fmt.Fprintln(stdout, id)
	}
	if o.iidFile != "" {
		if id == "" {
			return fmt.Errorf("--iidfile: the build exported no image")
		}
		if err := os.WriteFile(o.iidFile, []byte(id), 0o644); err != nil {
			return fmt.Errorf("writing --iidfile: %w", err)
		}
	}
	if o.metadataFile != "" {
		if err := writeMetadata(o.metadataFile, resp.ExporterResponse); err != nil {
			return fmt.Errorf("writing --metadata-file: %w", err)
		}
	}
	return nil
}

// clientOpts are the BuildKit client options for o's TLS flags.
func clientOpts(o buildOptions) []client.ClientOpt {
	var opts []client.ClientOpt
	if o.tlsCA != "" || o.tlsName != "" {
		opts = append(opts, client.WithServerConfig(o.tlsName, o.tlsCA))
	}
	if o.tlsCert != "" {
		opts = append(opts, client.WithCredentials(o.tlsCert, o.tlsKey))
	}
	return opts
}

// solveWithProgress runs the solve and BuildKit's progress display side by
// side. The display keeps the caller's context so that it can finish
// printing a failure after the solve's context is done.
func solveWithProgress(ctx context.Context, c *client.Client, opt client.SolveOpt, mode string, stderr io.Writer) (*client.SolveResponse, error) {
	display, err := progressui.NewDisplay(stderr, progressui.DisplayMode(mode))
	if err != nil {
		return nil, fmt.Errorf("--progress=%s: %w", mode, err)
	}
	ch := make(chan *client.SolveStatus)
	var resp *client.SolveResponse
	eg, egCtx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		var err error
		resp, err = c.Solve(egCtx, nil, opt, ch)
		return err
	})
	eg.Go(func() error {
		warnings, err := display.UpdateFrom(context.WithoutCancel(ctx), ch)
		printWarnings(stderr, warnings, mode)
		return err
	})
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	return resp, nil
}

// imageID is the built image's ID: its config digest, as docker reports
// it, or the manifest digest when the exporter gave no config digest.
func imageID(resp map[string]string) string {
	if v := resp[exptypes.ExporterImageConfigDigestKey]; v != "" {
		return v
	}
	return resp[exptypes.ExporterImageDigestKey]
}

// writeMetadata writes the exporter response as JSON, with the image
// descriptor decoded, as buildx's --metadata-file does.
func writeMetadata(path string, resp map[string]string) error {
	out := map[string]any{}
	for k, v := range resp {
		out[k] = v
		if k != exptypes.ExporterImageDescriptorKey {
			continue
		}
		if b, err := base64.StdEncoding.DecodeString(v); err == nil {
			var desc map[string]any
			if json.Unmarshal(b, &desc) == nil {
				out[k] = desc
			}
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// printFailure shows a failed build: the Dockerfile lines of the failing
// instruction (when BuildKit maps the error to them), then the error. The
// failing step's output has been shown by the progress display.
func printFailure(w io.Writer, err error) {
	for _, src := range errdefs.Sources(err) {
		_ = src.Print(w)
	}
	fmt.Fprintf(w, "ERROR: %s\n", strings.TrimSpace(err.Error()))
}

// printWarnings lists the build's warnings (lint checks, deprecated
// syntax) after the progress display, unless the output is quiet.
func printWarnings(w io.Writer, warnings []client.VertexWarning, mode string) {
	if len(warnings) == 0 || mode == "quiet" || mode == "rawjson" {
		return
	}
	fmt.Fprintf(w, "%d warning(s):\n", len(warnings))
	for _, warn := range warnings {
		fmt.Fprintf(w, " - %s\n", strings.TrimSpace(string(warn.Short)))
	}
}

// nopCloser keeps an exporter from closing the process's stdout.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/client"
)

// exportEntries turns --output, --push, -t and --keep into BuildKit
// exporters. With no --output the image goes to the builder's image store
// (the node's images) under the -t names, as `docker build` does. stdout is
// where "dest=-" streams go.
func exportEntries(o buildOptions, stdout io.WriteCloser) ([]client.ExportEntry, error) {
	specs := o.outputs
	if len(specs) == 0 {
		if o.push {
			specs = []string{"type=registry"}
		} else {
			specs = []string{"type=image"}
		}
	}
	var entries []client.ExportEntry
	toStdout := 0
	hasImage := false
	for _, spec := range specs {
		e, streams, err := exportEntry(spec, o, stdout)
		if err != nil {
			return nil, err
		}
		if streams {
			toStdout++
		}
		if e.Type == client.ExporterImage {
			hasImage = true
		}
		entries = append(entries, e)
	}
	if toStdout > 1 {
		return nil, fmt.Errorf("--output: only one output may go to stdout (dest=-)")
	}
	if o.keep && !hasImage {
		return nil, fmt.Errorf("--keep needs an image output (type=image or no --output)")
	}
	return entries, nil
}

// exportEntry parses one --output value; toStdout is whether the export
// streams to stdout.
func exportEntry(spec string, o buildOptions, stdout io.WriteCloser) (e client.ExportEntry, toStdout bool, err error) {
	if !strings.Contains(spec, "=") {
		// docker: a bare path is a local directory; "-" is a tar on stdout.
		if spec == "-" {
			spec = "type=tar,dest=-"
		} else {
			spec = "type=local,dest=" + spec
		}
	}
	attrs, bare, err := parseCSV("--output", spec)
	if err != nil {
		return client.ExportEntry{}, false, err
	}
	if len(bare) > 0 {
		return client.ExportEntry{}, false, fmt.Errorf("--output %q: %q is not key=value", spec, bare[0])
	}
	typ := attrs["type"]
	delete(attrs, "type")
	e = client.ExportEntry{Type: typ, Attrs: attrs}
	names := strings.Join(o.tags, ",")
	switch typ {
	case "":
		return client.ExportEntry{}, false, fmt.Errorf("--output %q: type is required", spec)
	case "registry":
		e.Type = client.ExporterImage
		attrs["push"] = "true"
		fallthrough
	case client.ExporterImage:
		if attrs["name"] == "" && names != "" {
			attrs["name"] = names
		}
		if attrs["push"] == "true" && attrs["name"] == "" {
			return client.ExportEntry{}, false, fmt.Errorf("--output %q: pushing needs a name: give -t or name=", spec)
		}
		if o.keep {
			attrs["keep"] = "true"
		}
		if _, ok := attrs["dest"]; ok {
			return client.ExportEntry{}, false, fmt.Errorf("--output %q: type=%s takes no dest", spec, typ)
		}
	case client.ExporterLocal:
		dest := attrs["dest"]
		if dest == "" || dest == "-" {
			return client.ExportEntry{}, false, fmt.Errorf("--output %q: type=local needs dest=DIRECTORY", spec)
		}
		e.OutputDir = dest
		delete(attrs, "dest")
	case client.ExporterTar, client.ExporterOCI, client.ExporterDocker:
		dest := attrs["dest"]
		if dest == "" {
			return client.ExportEntry{}, false, fmt.Errorf("--output %q: type=%s needs dest=FILE (or dest=- for stdout)", spec, typ)
		}
		if typ != client.ExporterTar && attrs["name"] == "" && names != "" {
			attrs["name"] = names
		}
		e.Output = fileOutput(dest, stdout)
		delete(attrs, "dest")
		toStdout = dest == "-"
	default:
		return client.ExportEntry{}, false, fmt.Errorf("--output %q: unknown type %q (want image, registry, oci, docker, local or tar)", spec, typ)
	}
	return e, toStdout, nil
}

// fileOutput opens dest for an exporter's stream when the export starts;
// "-" is stdout.
func fileOutput(dest string, stdout io.WriteCloser) func(map[string]string) (io.WriteCloser, error) {
	return func(map[string]string) (io.WriteCloser, error) {
		if dest == "-" {
			return stdout, nil
		}
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return nil, err
		}
		return os.Create(dest)
	}
}

// cacheEntries parses --cache-from (exporting false) or --cache-to
// (exporting true) values. A bare reference means type=registry,ref=REF.
func cacheEntries(flagName string, values []string, exporting bool) ([]client.CacheOptionsEntry, error) {
	var out []client.CacheOptionsEntry
	for _, v := range values {
		if !strings.Contains(v, "=") {
			v = "type=registry,ref=" + v
		}
		attrs, bare, err := parseCSV(flagName, v)
		if err != nil {
			return nil, err
		}
		if len(bare) > 0 {
			return nil, fmt.Errorf("%s %q: %q is not key=value", flagName, v, bare[0])
		}
		typ := attrs["type"]
		delete(attrs, "type")
		switch typ {
		case "registry":
			if attrs["ref"] == "" {
				return nil, fmt.Errorf("%s %q: type=registry needs ref=", flagName, v)
			}
		case "local":
			key := "src"
			if exporting {
				key = "dest"
			}
			if attrs[key] == "" {
				return nil, fmt.Errorf("%s %q: type=local needs %s=DIRECTORY", flagName, v, key)
			}
		case "inline":
			if !exporting {
				return nil, fmt.Errorf("%s %q: inline cache is imported with type=registry,ref=IMAGE", flagName, v)
			}
		case "":
			return nil, fmt.Errorf("%s %q: type is required", flagName, v)
		default:
			return nil, fmt.Errorf("%s %q: unknown type %q (want registry, local or inline)", flagName, v, typ)
		}
		out = append(out, client.CacheOptionsEntry{Type: typ, Attrs: attrs})
	}
	return out, nil
}

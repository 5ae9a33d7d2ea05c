package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/session/sshforward/sshprovider"
	"github.com/tonistiigi/fsutil"
)

// frontendAttrs are the dockerfile.v0 frontend's options for o: the
// Dockerfile's name inside the "dockerfile" local, build args, labels,
// target, platform, cache switches and the base image resolve mode. getenv supplies build args given
// without a value; one that is unset in the environment is left out, as
// docker build does.
func frontendAttrs(o buildOptions, dockerfileName string, getenv func(string) (string, bool)) map[string]string {
	attrs := map[string]string{"filename": dockerfileName}
	for _, a := range o.buildArgs {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			if v, ok = getenv(k); !ok {
				continue
			}
		}
		attrs["build-arg:"+k] = v
	}
	for _, l := range o.labels {
		k, v, _ := strings.Cut(l, "=")
		attrs["label:"+k] = v
	}
	if o.target != "" {
		attrs["target"] = o.target
	}
	if o.platform != "" {
		attrs["platform"] = o.platform
	}
	if o.noCache {
		attrs["no-cache"] = ""
	}
	// Like docker build, use a base image that is already in the node's
	// image store (pulled by the CRI, or built here) and ask its registry
	// only with --pull.
	attrs["image-resolve-mode"] = "local"
	if o.pull {
		attrs["image-resolve-mode"] = "pull"
	}
	return attrs
}

// localDirs resolves the "context" and "dockerfile" directories the
// frontend reads, and the Dockerfile's name in the latter. A Dockerfile
// from stdin ("-f -") is written to a temporary directory that cleanup
// removes; cleanup is never nil.
func localDirs(o buildOptions, stdin io.Reader) (contextDir, dockerfileDir, name string, cleanup func(), err error) {
	cleanup = func() {}
	contextDir, err = filepath.Abs(o.contextDir)
	if err != nil {
		return "", "", "", cleanup, err
	}
	switch o.file {
	case "":
		return contextDir, contextDir, "Dockerfile", cleanup, nil
	case "-":
		dir, err := os.MkdirTemp("", "slipway-dockerfile-")
		if err != nil {
			return "", "", "", cleanup, err
		}
		cleanup = func() { os.RemoveAll(dir) }
		b, err := io.ReadAll(stdin)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "Dockerfile"), b, 0o600)
		}
		if err != nil {
			return "", "", "", cleanup, fmt.Errorf("reading the Dockerfile from stdin: %w", err)
		}
		return contextDir, dir, "Dockerfile", cleanup, nil
	}
	file, err := filepath.Abs(o.file)
	if err != nil {
		return "", "", "", cleanup, err
	}
	if st, err := os.Stat(file); err != nil {
		return "", "", "", cleanup, fmt.Errorf("-f %s: %w", o.file, err)
	} else if st.IsDir() {
		return "", "", "", cleanup, fmt.Errorf("-f %s is a directory, not a Dockerfile", o.file)
	}
	return contextDir, filepath.Dir(file), filepath.Base(file), cleanup, nil
}

// localMounts opens the context and Dockerfile directories for the
// session. The frontend applies .dockerignore (or NAME.dockerignore next to
// the Dockerfile) when it reads the context.
func localMounts(contextDir, dockerfileDir string) (map[string]fsutil.FS, error) {
	ctxFS, err := fsutil.NewFS(contextDir)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", contextDir, err)
	}
	dfFS, err := fsutil.NewFS(dockerfileDir)
	if err != nil {
		return nil, fmt.Errorf("Dockerfile directory %s: %w", dockerfileDir, err)
	}
	return map[string]fsutil.FS{"context": ctxFS, "dockerfile": dfFS}, nil
}

// sessionAttachables are what the build may ask the client for: registry
// credentials from the docker config file, --secret values and --ssh
// agents or keys.
func sessionAttachables(o buildOptions, stderr io.Writer) ([]session.Attachable, error) {
	dockerConfig := config.LoadDefaultConfigFile(stderr)
	out := []session.Attachable{authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
		AuthConfigProvider: authprovider.LoadAuthConfig(dockerConfig),
	})}
	if len(o.secrets) > 0 {
		sources, err := secretSources(o.secrets)
		if err != nil {
			return nil, err
		}
		store, err := secretsprovider.NewStore(sources)
		if err != nil {
			return nil, fmt.Errorf("--secret: %w", err)
		}
		out = append(out, secretsprovider.NewSecretProvider(store))
	}
	if len(o.ssh) > 0 {
		agents, err := sshAgents(o.ssh)
		if err != nil {
			return nil, err
		}
		p, err := sshprovider.NewSSHAgentProvider(agents)
		if err != nil {
			return nil, fmt.Errorf("--ssh: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// secretSources parses --secret values: id=ID with src=FILE (or
// source=FILE) or env=VAR; type=file|env is accepted as docker does. With
// neither, the environment variable ID is read if set, else the file ID.
func secretSources(values []string) ([]secretsprovider.Source, error) {
	var out []secretsprovider.Source
	for _, v := range values {
		attrs, bare, err := parseCSV("--secret", v)
		if err != nil {
			return nil, err
		}
		if len(bare) > 0 {
			return nil, fmt.Errorf("--secret %q: %q is not key=value", v, bare[0])
		}
		s := secretsprovider.Source{ID: attrs["id"]}
		src := attrs["src"]
		if src == "" {
			src = attrs["source"]
		}
		typ := attrs["type"]
		for k := range attrs {
			switch k {
			case "id", "src", "source", "env", "type":
			default:
				return nil, fmt.Errorf("--secret %q: unknown key %q", v, k)
			}
		}
		switch {
		case s.ID == "":
			return nil, fmt.Errorf("--secret %q: id= is required", v)
		case typ != "" && typ != "file" && typ != "env":
			return nil, fmt.Errorf("--secret %q: type must be file or env, got %q", v, typ)
		case attrs["env"] != "" && src != "":
			return nil, fmt.Errorf("--secret %q: give src= or env=, not both", v)
		case attrs["env"] != "":
			s.Env = attrs["env"]
		case typ == "env":
			s.Env = src
			if s.Env == "" {
				s.Env = s.ID
			}
		default:
			// With neither, BuildKit reads $ID when set, else the file ID.
			s.FilePath = src
		}
		out = append(out, s)
	}
	return out, nil
}

// sshAgents parses --ssh values: "default" (the $SSH_AUTH_SOCK agent),
// "ID" or "ID=PATH[,PATH...]" where each PATH is an agent socket or a key
// file.
func sshAgents(values []string) ([]sshprovider.AgentConfig, error) {
	var out []sshprovider.AgentConfig
	for _, v := range values {
		id, paths, _ := strings.Cut(v, "=")
		if id == "" {
			return nil, fmt.Errorf("--ssh %q: want default or ID[=PATH,...]", v)
		}
		c := sshprovider.AgentConfig{ID: id}
		if paths != "" {
			c.Paths = strings.Split(paths, ",")
		}
		out = append(out, c)
	}
	return out, nil
}

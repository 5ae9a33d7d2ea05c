package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// corpusCase is one build of a corpus context and what its image must hold.
type corpusCase struct {
	// context is the directory under test/dockerfiles.
	context   string
	target    string
	buildArgs map[string]string
	// secret passes the suite's "token" secret to the build.
	secret bool
	check  func(img *builtImage)
}

// corpusBuilder builds c from dir into the image called image.
type corpusBuilder struct {
	name  string
	build func(ctx context.Context, c corpusCase, dir, image string) buildResult
}

// secretValue is what the "token" secret holds in this run; it must never
// show up in an image.
var secretValue = func() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "slipway-e2e-secret-" + hex.EncodeToString(b)
}()

// secretFile writes secretValue to a file for --secret src=.
func secretFile() string {
	p := filepath.Join(GinkgoT().TempDir(), "token")
	Expect(os.WriteFile(p, []byte(secretValue), 0o600)).To(Succeed())
	return p
}

// corpusImage names the image a builder makes of a corpus case.
func corpusImage(name, builder string) string {
	return fmt.Sprintf("docker.io/slipway-e2e/%s:%s", name, builder)
}

var slipwayCorpusBuilder = corpusBuilder{name: "slipway", build: func(ctx context.Context, c corpusCase, dir, image string) buildResult {
	args := []string{"--progress=plain", "-t", image}
	if c.target != "" {
		args = append(args, "--target", c.target)
	}
	for k, v := range c.buildArgs {
		args = append(args, "--build-arg", k+"="+v)
	}
	if c.secret {
		args = append(args, "--secret", "id=token,src="+secretFile())
	}
	return slipwayBuild(ctx, builderAddr(), append(args, dir)...)
}}

var buildctlCorpusBuilder = corpusBuilder{name: "buildctl", build: func(ctx context.Context, c corpusCase, dir, image string) buildResult {
	args := []string{"build", "--progress=plain", "--frontend=dockerfile.v0",
		"--local", "context=" + dir, "--local", "dockerfile=" + dir,
		"--output", "type=image,name=" + image,
		// Base images built on this node are in its image store, not in
		// any registry: resolve them there first.
		"--opt", "image-resolve-mode=local"}
	if c.target != "" {
		args = append(args, "--opt", "target="+c.target)
	}
	for k, v := range c.buildArgs {
		args = append(args, "--opt", "build-arg:"+k+"="+v)
	}
	if c.secret {
		args = append(args, "--secret", "id=token,src="+secretFile())
	}
	return buildctl(ctx, builderAddr(), args...)
}}

var corpus = []corpusCase{
	{context: "multistage", buildArgs: map[string]string{"GREETING": "hi"}, check: func(img *builtImage) {
		Expect(img.text("/greeting")).To(Equal("hi from base"))
		Expect(img.text("/final")).To(Equal("final"))
		Expect(img.has("/tested")).To(BeFalse(), "the test stage is not part of the final stage")
	}},
	{context: "multistage", target: "test", check: func(img *builtImage) {
		Expect(img.text("/greeting")).To(Equal("hello from base"), "GREETING defaults to the ARG before FROM")
		Expect(img.text("/tested")).To(Equal("tested"))
		Expect(img.has("/final")).To(BeFalse(), "--target stops at the test stage")
	}},
	{context: "heredoc", check: func(img *builtImage) {
		Expect(img.text("/out/one")).To(Equal("one"))
		Expect(img.text("/out/two")).To(Equal("two"))
		Expect(img.text("/out/three")).To(Equal("tab-stripped via sh"))
		Expect(img.text("/etc/app.conf")).To(Equal("name=heredoc\nmode=test"))
	}},
	{context: "mounts", secret: true, check: func(img *builtImage) {
		runs, err := strconv.Atoi(img.text("/cache-runs"))
		Expect(err).NotTo(HaveOccurred())
		Expect(runs).To(BeNumerically(">=", 1))
		Expect(img.text("/secret-len")).To(Equal(strconv.Itoa(len(secretValue))), "the secret file was readable")
		Expect(img.text("/secret-env-len")).To(Equal(strconv.Itoa(len(secretValue))), "the secret env was set")
		Expect(img.has("/run/secrets/token")).To(BeFalse())
		Expect(img.contains(secretValue)).To(BeFalse(), "the secret must not be in any layer, the config or the history")
		Expect(img.text("/from-bind.txt")).To(Equal("bound from the context"))
		Expect(img.has("/data/input.txt")).To(BeFalse(), "a bind mount is not copied into the image")
		Expect(img.text("/tmpfs-type")).To(Equal("tmpfs"))
		Expect(img.has("/scratch/x")).To(BeFalse(), "a tmpfs leaves nothing behind")
	}},
	{context: "copy", check: func(img *builtImage) {
		Expect(img.text("/copied/from-stage")).To(Equal("from-stage"))
		owned := img.file("/copied/owned.txt")
		Expect([]int{owned.uid, owned.gid}).To(Equal([]int{1234, 5678}), "COPY --chown")
		Expect(img.file("/copied/script.sh").mode).To(Equal(int64(0o750)), "COPY --chmod")
		Expect(img.text("/copied/linked.txt")).To(Equal("linked"))
		Expect(img.text("/added/a.txt")).To(Equal("from the archive"))
		Expect(img.text("/added/dir/b.txt")).To(Equal("nested in the archive"))
		Expect(img.has("/added/archive.tar")).To(BeFalse(), "ADD extracts a local tar")
	}},
	{context: "config", check: checkConfigImage},
	{context: "dockerignore", check: func(img *builtImage) {
		Expect(img.text("/ctx/keep.txt")).To(Equal("keep"))
		Expect(img.text("/ctx/logs/keep.log")).To(Equal("keep"), "!logs/keep.log re-includes it")
		for _, p := range []string{"/ctx/local.env", "/ctx/logs/drop.log", "/ctx/node_modules", "/ctx/node_modules/module.js", "/ctx/Dockerfile", "/ctx/.dockerignore"} {
			Expect(img.has(p)).To(BeFalse(), "%s is excluded by .dockerignore", p)
		}
	}},
}

// checkConfigImage checks the image of test/dockerfiles/config.
func checkConfigImage(img *builtImage) {
	cfg := img.config.Config
	Expect(cfg.User).To(Equal("app:app"))
	Expect(cfg.WorkingDir).To(Equal("/srv/app"))
	Expect(cfg.Env).To(ContainElements("APP_HOME=/srv/app", "GREETING=hello world"))
	Expect(cfg.Labels).To(HaveKeyWithValue("org.example.team", "builders"))
	Expect(cfg.Labels).To(HaveKeyWithValue("org.example.note", "multi word value"))
	Expect(cfg.ExposedPorts).To(HaveKey("8080/tcp"))
	Expect(cfg.ExposedPorts).To(HaveKey("9090/udp"))
	Expect(cfg.Entrypoint).To(Equal([]string{"/bin/sh", "-c"}))
	Expect(cfg.Cmd).To(Equal([]string{`echo "$GREETING"`}))
	Expect(cfg.StopSignal).To(Equal("SIGQUIT"))
	Expect(cfg.Shell).To(Equal([]string{"/bin/sh", "-euc"}))
	Expect(cfg.OnBuild).To(Equal([]string{"RUN echo built-by-child > /srv/app/onbuild"}))
	Expect(cfg.Healthcheck).NotTo(BeNil())
	Expect(*cfg.Healthcheck).To(Equal(healthcheck{
		Test:        []string{"CMD", "/bin/true"},
		Interval:    int64(5 * time.Second),
		Timeout:     int64(2 * time.Second),
		StartPeriod: int64(time.Second),
		Retries:     3,
	}))
	Expect(img.text("/shell-flags")).To(And(ContainSubstring("e"), ContainSubstring("u")), "RUN used the SHELL")
	Expect(img.text("/srv/app/uid")).To(Equal("1001"), "RUN ran as USER app")
	Expect(img.file("/srv/app/uid").uid).To(Equal(1001))
	Expect(img.text("/srv/app/pwd")).To(Equal("/srv/app"), "RUN ran in WORKDIR")
}

var _ = Describe("Dockerfile corpus", func() {
	for _, b := range []corpusBuilder{slipwayCorpusBuilder, buildctlCorpusBuilder} {
		Context("built with "+b.name, func() {
			for _, c := range corpus {
				name := c.context
				if c.target != "" {
					name += " --target " + c.target
				}
				It("builds "+name+" into an image with the expected config and files", func(ctx SpecContext) {
					image := corpusImage(strings.ReplaceAll(name, " --target ", "-"), b.name)
					b.build(ctx, c, corpusContext(c.context), image).succeeded()
					c.check(inspectImage(ctx, image))
				})
			}

			It("runs a base image's ONBUILD trigger in a child build", func(ctx SpecContext) {
				base := corpusImage("config-base", b.name)
				b.build(ctx, corpusCase{context: "config"}, corpusContext("config"), base).succeeded()
				child := corpusImage("config-child", b.name)
				b.build(ctx, corpusCase{context: "config-child", buildArgs: map[string]string{"BASE": base}},
					corpusContext("config-child"), child).succeeded()
				img := inspectImage(ctx, child)
				Expect(img.text("/srv/app/onbuild")).To(Equal("built-by-child"))
				Expect(img.file("/srv/app/onbuild").uid).To(Equal(1001), "the trigger ran as the base's USER")
				Expect(img.config.Config.OnBuild).To(BeEmpty(), "triggers are not inherited by grandchildren")
				Expect(img.config.Config.Entrypoint).To(Equal([]string{"/bin/sh", "-c"}))
			})
		})
	}
})

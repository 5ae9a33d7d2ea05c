package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/slipway-dev/slipway/test/e2e/harness"
)

// corpusDir holds the Dockerfile corpus, relative to this package.
const corpusDir = "../dockerfiles"

// buildResult is the outcome of one build command.
type buildResult struct {
	stdout  string
	stderr  string
	err     error
	elapsed time.Duration
}

// buildStep is one Dockerfile instruction's vertex in a build's progress.
type buildStep struct {
	name   string
	cached bool
}

// builderAddr is the suite daemon's builder socket as a client address.
func builderAddr() string {
	return "unix://" + filepath.Join(daemon.State, "buildkit.sock")
}

// slipwayBuild runs `slipway build --addr addr args...` ($SLIPWAY_BIN, which
// `make e2e` builds).
func slipwayBuild(ctx context.Context, addr string, args ...string) buildResult {
	bin := os.Getenv("SLIPWAY_BIN")
	if bin == "" {
		Fail("SLIPWAY_BIN is not set: run the suites with `make e2e`")
	}
	return runBuildCommand(ctx, bin, append([]string{"build", "--addr", addr}, args...))
}

// buildctl runs `buildctl --addr addr args...` from PATH (`make deps`
// installs it).
func buildctl(ctx context.Context, addr string, args ...string) buildResult {
	bin, err := exec.LookPath("buildctl")
	if err != nil {
		Fail("buildctl is not installed: run `make deps` (INSTALL_BUILDKIT=1 hack/install-deps.sh)")
	}
	return runBuildCommand(ctx, bin, append([]string{"--addr", addr}, args...))
}

func runBuildCommand(ctx context.Context, bin string, args []string) buildResult {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := buildResult{stdout: stdout.String(), stderr: stderr.String(), err: err, elapsed: time.Since(start)}
	GinkgoWriter.Printf("%s %s (%v, %v)\n", filepath.Base(bin), strings.Join(args, " "), r.elapsed.Round(time.Millisecond), err)
	return r
}

// succeeded asserts the build worked, showing its output when not.
func (r buildResult) succeeded() buildResult {
	ExpectWithOffset(1, r.err).NotTo(HaveOccurred(), "build failed:\n%s", harness.Tail(r.stderr, 60))
	return r
}

// stepPattern matches Dockerfile instruction vertices: "[stage 2/3] RUN ...".
var stepPattern = regexp.MustCompile(`^\[[^\]]*\d+/\d+\] `)

// pinnedDigest is the digest BuildKit appends to a FROM step's image.
var pinnedDigest = regexp.MustCompile(`@sha256:[0-9a-f]{64}`)

// steps parses a --progress=rawjson stream into the Dockerfile steps, in
// the order they first appeared; a FROM step's name is without its digest.
func (r buildResult) steps() []buildStep {
	byDigest := map[string]*buildStep{}
	var order []string
	sc := bufio.NewScanner(strings.NewReader(r.stderr))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var status struct {
			Vertexes []struct {
				Digest string `json:"digest"`
				Name   string `json:"name"`
				Cached bool   `json:"cached"`
			} `json:"vertexes"`
		}
		if json.Unmarshal(sc.Bytes(), &status) != nil {
			continue
		}
		for _, v := range status.Vertexes {
			if !stepPattern.MatchString(v.Name) {
				continue
			}
			s, ok := byDigest[v.Digest]
			if !ok {
				s = &buildStep{name: pinnedDigest.ReplaceAllString(v.Name, "")}
				byDigest[v.Digest] = s
				order = append(order, v.Digest)
			}
			s.cached = s.cached || v.Cached
		}
	}
	steps := make([]buildStep, 0, len(order))
	for _, d := range order {
		steps = append(steps, *byDigest[d])
	}
	return steps
}

// corpusContext copies the corpus context name into a temporary directory
// (removed after the spec) and adds its generated files, so specs may edit
// it. It returns the copy's path.
func corpusContext(name string) string {
	dst := filepath.Join(GinkgoT().TempDir(), name)
	src := filepath.Join(corpusDir, name)
	Expect(os.CopyFS(dst, os.DirFS(src))).To(Succeed())
	if name == "copy" {
		writeArchive(filepath.Join(dst, "archive.tar"), map[string]string{
			"a.txt":     "from the archive\n",
			"dir/b.txt": "nested in the archive\n",
		})
	}
	return dst
}

// writeArchive writes a tar holding files (path → content).
func writeArchive(path string, files map[string]string) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		if dir := filepath.Dir(name); dir != "." {
			Expect(tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755})).To(Succeed())
		}
		Expect(tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))})).To(Succeed())
		_, err := tw.Write([]byte(data))
		Expect(err).NotTo(HaveOccurred())
	}
	Expect(tw.Close()).To(Succeed())
	Expect(os.WriteFile(path, buf.Bytes(), 0o644)).To(Succeed())
}

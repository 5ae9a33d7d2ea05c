package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/slipway-dev/slipway/test/e2e/harness"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/yaml"
)

// chartDir is charts/slipway-builder, relative to this package.
const chartDir = "../../charts/slipway-builder"

// chartPod is what `helm template` of the builder chart makes of the pod:
// the StatefulSet's one container and the ConfigMap's config.toml.
type chartPod struct {
	Image           string
	Command         []string
	Args            []string
	Privileged      bool
	RunAsUser       *int64
	ContainerPort   int32
	VolumeMounts    []chartVolumeMount
	ConfigTOML      string
	TerminationSecs int64
}

type chartVolumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	SubPath   string `json:"subPath"`
	ReadOnly  bool   `json:"readOnly"`
}

// chartObject holds the fields of a rendered StatefulSet or ConfigMap that
// chartPod takes.
type chartObject struct {
	Kind string            `json:"kind"`
	Data map[string]string `json:"data"`
	Spec struct {
		Template struct {
			Spec struct {
				TerminationGracePeriodSeconds int64 `json:"terminationGracePeriodSeconds"`
				Containers                    []struct {
					Name            string   `json:"name"`
					Image           string   `json:"image"`
					Command         []string `json:"command"`
					Args            []string `json:"args"`
					SecurityContext struct {
						Privileged bool   `json:"privileged"`
						RunAsUser  *int64 `json:"runAsUser"`
					} `json:"securityContext"`
					Ports []struct {
						ContainerPort int32 `json:"containerPort"`
					} `json:"ports"`
					VolumeMounts []chartVolumeMount `json:"volumeMounts"`
				} `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

// renderChartPod runs `helm template` on the builder chart with setValues
// (helm --set) and returns its pod. helm is a pinned tool of `make deps`.
func renderChartPod(ctx context.Context, setValues ...string) chartPod {
	GinkgoHelper()
	helm, err := exec.LookPath("helm")
	if err != nil {
		Fail("helm is not installed: run `make deps`")
	}
	args := []string{"template", "e2e", chartDir}
	for _, v := range setValues {
		args = append(args, "--set", v)
	}
	out, err := exec.CommandContext(ctx, helm, args...).Output()
	Expect(err).NotTo(HaveOccurred(), "helm %s", strings.Join(args, " "))

	var pod chartPod
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var obj chartObject
		Expect(yaml.Unmarshal([]byte(doc), &obj)).To(Succeed())
		switch obj.Kind {
		case "ConfigMap":
			pod.ConfigTOML = obj.Data["config.toml"]
		case "StatefulSet":
			spec := obj.Spec.Template.Spec
			Expect(spec.Containers).To(HaveLen(1), "the chart's pod has one container")
			c := spec.Containers[0]
			pod.Image, pod.Command, pod.Args = c.Image, c.Command, c.Args
			pod.Privileged, pod.RunAsUser = c.SecurityContext.Privileged, c.SecurityContext.RunAsUser
			Expect(c.Ports).To(HaveLen(1))
			pod.ContainerPort = c.Ports[0].ContainerPort
			pod.VolumeMounts = c.VolumeMounts
			pod.TerminationSecs = spec.TerminationGracePeriodSeconds
		}
	}
	Expect(pod.ConfigTOML).NotTo(BeEmpty(), "the chart renders a ConfigMap with config.toml")
	Expect(pod.Command).NotTo(BeEmpty(), "the chart renders a StatefulSet")
	return pod
}

// containerConfig is the CRI container kubelet would create for the chart's
// pod on the host network, with each volume mount's volume (by name) at the host path
// volumes[name]; a mount with a subPath mounts that path inside it. A
// volume the map lacks fails the spec: the chart grew a volume this spec
// does not know.
func (p chartPod) containerConfig(volumes map[string]string) *runtimeapi.ContainerConfig {
	GinkgoHelper()
	var mounts []*runtimeapi.Mount
	for _, m := range p.VolumeMounts {
		host, ok := volumes[m.Name]
		Expect(ok).To(BeTrue(), "the chart mounts volume %q at %s, which this spec does not provide", m.Name, m.MountPath)
		if m.SubPath != "" {
			host = filepath.Join(host, m.SubPath)
		}
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: m.MountPath, HostPath: host, Readonly: m.ReadOnly})
	}
	sc := &runtimeapi.LinuxContainerSecurityContext{
		Privileged:       p.Privileged,
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_CONTAINER},
	}
	if p.RunAsUser != nil {
		sc.RunAsUser = &runtimeapi.Int64Value{Value: *p.RunAsUser}
	}
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "slipwayd"},
		Image:    &runtimeapi.ImageSpec{Image: p.Image},
		Command:  p.Command,
		Args:     p.Args,
		Mounts:   mounts,
		LogPath:  "slipwayd.log",
		Linux:    &runtimeapi.LinuxContainerConfig{SecurityContext: sc},
	}
}

// freeLoopbackPort is a TCP port on 127.0.0.1 that nothing listens on now.
func freeLoopbackPort() int {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, each as PEM files.
type testPKI struct {
	caFile                string
	serverCert, serverKey string
	clientCert, clientKey string
}

// writeTestPKI writes a fresh CA, a server certificate for 127.0.0.1 and
// localhost, and a client certificate, all signed by the CA, into dir.
func writeTestPKI(dir string) testPKI {
	GinkgoHelper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "slipway-e2e-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	Expect(err).NotTo(HaveOccurred())
	ca, err := x509.ParseCertificate(caDER)
	Expect(err).NotTo(HaveOccurred())

	Expect(os.MkdirAll(dir, 0o700)).To(Succeed())
	pki := testPKI{caFile: filepath.Join(dir, "ca.crt")}
	writePEM(pki.caFile, "CERTIFICATE", caDER)
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage, ips []net.IP, dns []string) (certFile, keyFile string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: ips, DNSNames: dns,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		Expect(err).NotTo(HaveOccurred())
		keyDER, err := x509.MarshalECPrivateKey(key)
		Expect(err).NotTo(HaveOccurred())
		certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		writePEM(certFile, "CERTIFICATE", der)
		writePEM(keyFile, "EC PRIVATE KEY", keyDER)
		return certFile, keyFile
	}
	pki.serverCert, pki.serverKey = leaf(2, "server", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)}, []string{"localhost"})
	pki.clientCert, pki.clientKey = leaf(3, "client", x509.ExtKeyUsageClientAuth, nil, nil)
	return pki
}

func writePEM(path, typ string, der []byte) {
	GinkgoHelper()
	Expect(os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)).To(Succeed())
}

// tlsVolume lays pki out as the chart's tls Secret volume: tls.crt and
// tls.key (the server's) and ca.crt (the CA of client certificates).
func (pki testPKI) tlsVolume(dir string) string {
	GinkgoHelper()
	Expect(os.MkdirAll(dir, 0o700)).To(Succeed())
	for src, dst := range map[string]string{pki.serverCert: "tls.crt", pki.serverKey: "tls.key", pki.caFile: "ca.crt"} {
		b, err := os.ReadFile(src)
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(filepath.Join(dir, dst), b, 0o600)).To(Succeed())
	}
	return dir
}

// tlsArgs are slipway build's flags for a mutual-TLS connection with pki's
// client certificate.
func (pki testPKI) tlsArgs() []string {
	return []string{"--tls-ca", pki.caFile, "--tls-cert", pki.clientCert, "--tls-key", pki.clientKey}
}

// waitListening waits until something accepts TCP connections on
// 127.0.0.1:port (what the chart's tcpSocket probe checks), failing with
// the container's log as soon as the container is no longer running.
func waitListening(ctx context.Context, port int, containerID string, pod testPod) {
	GinkgoHelper()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	Eventually(func(g Gomega) {
		st := containerStatus(ctx, containerID)
		if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			StopTrying("slipwayd's container is " + st.State.String() + ", exit code " +
				strconv.Itoa(int(st.ExitCode)) + "; log:\n" + harness.Tail(strings.Join(containerLog(pod, "slipwayd"), "\n"), 40)).Now()
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		g.Expect(err).NotTo(HaveOccurred())
		c.Close()
	}).WithTimeout(120 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
}

// Command chart-test checks the output of `helm template` for the
// slipway-builder chart: every object decodes strictly into its Kubernetes
// type (a misspelt field fails), and the pieces agree with each other and
// with slipwayd's config: the container runs slipwayd --builder-only with the
// rendered config file, the Service reaches the port of builder.tcp_address,
// the TLS, hosts, ROOT and STATE paths in the config are where the volumes
// are mounted, and generated certificates verify as server and client.
//
// With -out it writes the rendered config.toml, the hosts directory and the
// generated certificates there, so hack/chart-test.sh can run the real
// slipwayd on them. It is its own module, outside slipway's go.mod.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

type options struct {
	rendered   string
	namespace  string
	appVersion string
	image      string
	port       int
	probe      string
	pvc        bool
	generated  bool
	hosts      string
	tlsNames   string
	scheduling bool
	out        string
}

type objects struct {
	sts        *appsv1.StatefulSet
	configMaps map[string]*corev1.ConfigMap
	services   map[string]*corev1.Service
	secrets    map[string]*corev1.Secret
}

type checker struct {
	passed int
	failed int
}

func (c *checker) check(ok bool, format string, args ...any) bool {
	msg := fmt.Sprintf(format, args...)
	if ok {
		c.passed++
		fmt.Println("  ok  ", msg)
	} else {
		c.failed++
		fmt.Println("  FAIL", msg)
	}
	return ok
}

func main() {
	var o options
	flag.StringVar(&o.rendered, "rendered", "", "helm template output")
	flag.StringVar(&o.namespace, "namespace", "default", "release namespace (for certificate names)")
	flag.StringVar(&o.appVersion, "app-version", "", "slipwayd's version: the app.kubernetes.io/version label")
	flag.StringVar(&o.image, "image", "", "expected container image")
	flag.IntVar(&o.port, "port", 1234, "expected builder port")
	flag.StringVar(&o.probe, "probe", "tcp", "expected probe: tcp or buildctl")
	flag.BoolVar(&o.pvc, "pvc", true, "expect ROOT on a volumeClaimTemplate (else an emptyDir)")
	flag.BoolVar(&o.generated, "generated-tls", true, "expect generated TLS Secrets")
	flag.StringVar(&o.hosts, "hosts", "", "comma-separated registry hosts expected in the hosts directory")
	flag.StringVar(&o.tlsNames, "tls-names", "", "comma-separated extra names the generated server certificate must have")
	flag.BoolVar(&o.scheduling, "scheduling", false, "expect resources, nodeSelector, tolerations and affinity to be set")
	flag.StringVar(&o.out, "out", "", "write config.toml, certs.d/ and the generated certificates here")
	flag.Parse()
	c := &checker{}
	if err := run(c, o); err != nil {
		fmt.Fprintln(os.Stderr, "chart-test:", err)
		os.Exit(1)
	}
	fmt.Printf("chart-test: %d passed, %d failed\n", c.passed, c.failed)
	if c.failed > 0 {
		os.Exit(1)
	}
}

func run(c *checker, o options) error {
	objs, err := decode(o.rendered)
	if err != nil {
		return err
	}
	sts := objs.sts
	if !c.check(sts != nil, "one StatefulSet") {
		return nil
	}
	spec := sts.Spec.Template.Spec
	podLabels := labels.Set(sts.Spec.Template.Labels)
	sel := labels.SelectorFromSet(sts.Spec.Selector.MatchLabels)
	c.check(sel.Matches(podLabels), "the StatefulSet's selector matches its pod labels")
	c.check(o.appVersion == "" || podLabels["app.kubernetes.io/version"] == o.appVersion,
		"app.kubernetes.io/version is slipwayd's version %q (got %q)", o.appVersion, podLabels["app.kubernetes.io/version"])
	if !c.check(len(spec.Containers) == 1, "one container") {
		return nil
	}
	ctr := spec.Containers[0]
	c.check(o.image == "" || ctr.Image == o.image, "image %q (got %q)", o.image, ctr.Image)

	// The command line: slipwayd --config FILE --builder-only.
	argv := append(slices.Clone(ctr.Command), ctr.Args...)
	c.check(len(argv) > 0 && argv[0] == "slipwayd", "the container runs slipwayd (argv %q)", argv)
	c.check(slices.Contains(argv, "--builder-only"), "slipwayd runs with --builder-only")
	configFile := flagValue(argv, "--config")
	c.check(configFile != "", "slipwayd runs with --config FILE")
	c.check(ctr.SecurityContext != nil && ctr.SecurityContext.Privileged != nil && *ctr.SecurityContext.Privileged,
		"the container is privileged")

	if o.scheduling {
		c.check(len(ctr.Resources.Requests) > 0 && len(ctr.Resources.Limits) > 0, "resources are set")
		c.check(len(spec.NodeSelector) > 0 && len(spec.Tolerations) > 0 && spec.Affinity != nil, "nodeSelector, tolerations and affinity are set")
	}

	mounts := map[string]corev1.VolumeMount{}
	for _, m := range ctr.VolumeMounts {
		mounts[m.MountPath] = m
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}

	// The config file is the ConfigMap's config.toml.
	cfgMount, ok := mounts[configFile]
	if !c.check(ok, "%s is mounted", configFile) {
		return nil
	}
	cfgVol := volumes[cfgMount.Name]
	if !c.check(cfgVol.ConfigMap != nil, "%s comes from a ConfigMap", configFile) {
		return nil
	}
	key := cfgMount.SubPath
	cm := objs.configMaps[cfgVol.ConfigMap.Name]
	if !c.check(cm != nil && cm.Data[key] != "", "ConfigMap %s with key %q is rendered", cfgVol.ConfigMap.Name, key) {
		return nil
	}
	rawConfig := cm.Data[key]
	var cfg map[string]any
	if !c.check(toml.Unmarshal([]byte(rawConfig), &cfg) == nil, "config.toml parses as TOML") {
		return nil
	}
	str := func(keys ...string) string {
		var v any = cfg
		for _, k := range keys {
			m, ok := v.(map[string]any)
			if !ok {
				return ""
			}
			v = m[k]
		}
		s, _ := v.(string)
		return s
	}

	// ROOT and STATE are volumes, ROOT on a claim or an emptyDir.
	root, state := str("root"), str("state")
	rootMount, ok := mounts[root]
	c.check(ok, "ROOT %q is a mounted volume", root)
	stateMount, ok := mounts[state]
	c.check(ok && volumes[stateMount.Name].EmptyDir != nil, "STATE %q is an emptyDir", state)
	var claim *corev1.PersistentVolumeClaim
	for i := range sts.Spec.VolumeClaimTemplates {
		if sts.Spec.VolumeClaimTemplates[i].Name == rootMount.Name {
			claim = &sts.Spec.VolumeClaimTemplates[i]
		}
	}
	if o.pvc {
		c.check(claim != nil, "ROOT is on the volumeClaimTemplate %q", rootMount.Name)
		_, shadow := volumes[rootMount.Name]
		c.check(!shadow, "no pod volume shadows the claim %q", rootMount.Name)
		if claim != nil {
			_, sized := claim.Spec.Resources.Requests[corev1.ResourceStorage]
			c.check(sized, "the claim requests storage")
		}
	} else {
		c.check(claim == nil && volumes[rootMount.Name].EmptyDir != nil, "ROOT is an emptyDir")
	}

	// TCP: the config's port is the container's port "buildkit", which both
	// Services target.
	_, portStr, err := net.SplitHostPort(str("builder", "tcp_address"))
	port, _ := strconv.Atoi(portStr)
	c.check(err == nil && port == o.port, "builder.tcp_address %q listens on port %d", str("builder", "tcp_address"), o.port)
	var named *corev1.ContainerPort
	for i := range ctr.Ports {
		if ctr.Ports[i].Name == "buildkit" {
			named = &ctr.Ports[i]
		}
	}
	c.check(named != nil && int(named.ContainerPort) == port, "container port buildkit is the config's port %d", port)
	var svc *corev1.Service
	for _, s := range objs.services {
		c.check(labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels), "Service %s selects the builder pods", s.Name)
		c.check(len(s.Spec.Ports) == 1 && s.Spec.Ports[0].TargetPort == intstr.FromString("buildkit"),
			"Service %s targets port buildkit", s.Name)
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			c.check(s.Name == sts.Spec.ServiceName, "headless Service %s governs the StatefulSet", s.Name)
		} else {
			svc = s
		}
	}
	if c.check(svc != nil && svc.Spec.Type == corev1.ServiceTypeClusterIP, "a ClusterIP Service") {
		c.check(int(svc.Spec.Ports[0].Port) == o.port, "the Service listens on port %d", o.port)
	}

	// Probes.
	for name, p := range map[string]*corev1.Probe{"readiness": ctr.ReadinessProbe, "liveness": ctr.LivenessProbe} {
		if !c.check(p != nil, "%s probe set", name) {
			continue
		}
		switch o.probe {
		case "tcp":
			c.check(p.TCPSocket != nil && p.TCPSocket.Port == intstr.FromString("buildkit"), "%s probe is a TCP connect to port buildkit", name)
		case "buildctl":
			want := []string{"buildctl", "--addr", "unix://" + path.Join(state, "buildkit.sock"), "debug", "workers"}
			c.check(p.Exec != nil && slices.Equal(p.Exec.Command, want), "%s probe runs %q", name, want)
		}
	}

	// TLS: the config's files are the Secret volume's items.
	tlsFiles := map[string]string{"tls_cert": str("builder", "tls_cert"), "tls_key": str("builder", "tls_key"), "tls_ca": str("builder", "tls_ca")}
	dir := filepath.Dir(tlsFiles["tls_cert"])
	tlsMount, ok := mounts[dir]
	c.check(ok, "the TLS files' directory %s is mounted", dir)
	tlsVol := volumes[tlsMount.Name]
	if !c.check(tlsVol.Secret != nil, "%s is a Secret volume", dir) {
		return nil
	}
	items := map[string]string{} // path in the volume -> Secret key
	for _, it := range tlsVol.Secret.Items {
		items[it.Path] = it.Key
	}
	secretKeys := map[string]string{}
	for k, f := range tlsFiles {
		c.check(filepath.Dir(f) == dir, "builder.%s %q is in %s", k, f, dir)
		secretKeys[k] = items[filepath.Base(f)]
		c.check(secretKeys[k] != "", "builder.%s is an item of Secret %s", k, tlsVol.Secret.SecretName)
	}
	secret := objs.secrets[tlsVol.Secret.SecretName]
	if o.generated {
		if c.check(secret != nil, "the generated Secret %s is rendered", tlsVol.Secret.SecretName) {
			checkCerts(c, o, objs, secret, secretKeys, sts.Name, sts.Spec.ServiceName)
		}
	} else {
		c.check(secret == nil && len(objs.secrets) == 0, "no Secret is rendered for existingSecret %s", tlsVol.Secret.SecretName)
	}

	// Registry hosts: config_path is the hosts volume; every item is
	// HOST/hosts.toml from a ConfigMap key that parses as TOML.
	hostsDir := str("registry", "config_path")
	hostsMount, ok := mounts[hostsDir]
	c.check(ok, "registry.config_path %q is mounted", hostsDir)
	hostsVol := volumes[hostsMount.Name]
	hostFiles := map[string]string{}
	if hostsVol.ConfigMap != nil {
		hcm := objs.configMaps[hostsVol.ConfigMap.Name]
		for _, it := range hostsVol.ConfigMap.Items {
			host, file := path.Split(it.Path)
			host = strings.TrimSuffix(host, "/")
			content, present := "", false
			if hcm != nil {
				content, present = hcm.Data[it.Key]
			}
			var m map[string]any
			c.check(file == "hosts.toml" && present && toml.Unmarshal([]byte(content), &m) == nil,
				"%s/%s/hosts.toml is ConfigMap key %s and parses", hostsDir, host, it.Key)
			hostFiles[host] = content
		}
	}
	var want []string
	if o.hosts != "" {
		want = strings.Split(o.hosts, ",")
	}
	got := make([]string, 0, len(hostFiles))
	for h := range hostFiles {
		got = append(got, h)
	}
	slices.Sort(got)
	slices.Sort(want)
	c.check(slices.Equal(got, want), "registry hosts %q (got %q)", want, got)

	if o.out == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(o.out, "certs.d"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "config.toml"), []byte(rawConfig), 0o644); err != nil {
		return err
	}
	for h, content := range hostFiles {
		if err := os.MkdirAll(filepath.Join(o.out, "certs.d", h), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(o.out, "certs.d", h, "hosts.toml"), []byte(content), 0o644); err != nil {
			return err
		}
	}
	if secret == nil {
		return nil
	}
	client := objs.secrets[clientSecretName(sts.Name)]
	for dirName, s := range map[string]*corev1.Secret{"server": secret, "client": client} {
		if s == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Join(o.out, dirName), 0o700); err != nil {
			return err
		}
		for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
			if err := os.WriteFile(filepath.Join(o.out, dirName, k), s.Data[k], 0o600); err != nil {
				return err
			}
		}
	}
	return os.WriteFile(filepath.Join(o.out, "server-name"), []byte(serviceDNS(svc, o.namespace)), 0o644)
}

// errSuffix shows an error after a failed check's message.
func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return ": " + err.Error()
}

func clientSecretName(fullname string) string { return fullname + "-client-tls" }

func serviceDNS(svc *corev1.Service, ns string) string {
	if svc == nil {
		return ""
	}
	return svc.Name + "." + ns + ".svc"
}

// checkCerts verifies the generated server certificate for the Service's
// and the pods' names, and the client certificate against the CA slipwayd
// verifies clients with.
func checkCerts(c *checker, o options, objs objects, server *corev1.Secret, keys map[string]string, fullname, headless string) {
	_, err := tls.X509KeyPair(server.Data[keys["tls_cert"]], server.Data[keys["tls_key"]])
	c.check(err == nil, "server tls.crt and tls.key are a key pair%s", errSuffix(err))
	pool := x509.NewCertPool()
	c.check(pool.AppendCertsFromPEM(server.Data[keys["tls_ca"]]), "ca.crt holds a PEM certificate")
	cert, err := parseCert(server.Data[keys["tls_cert"]])
	if !c.check(err == nil, "server certificate parses%s", errSuffix(err)) {
		return
	}
	var svc *corev1.Service
	for _, s := range objs.services {
		if s.Spec.ClusterIP != corev1.ClusterIPNone {
			svc = s
		}
	}
	names := []string{
		serviceDNS(svc, o.namespace),
		fullname + "." + o.namespace + ".svc.cluster.local",
		fullname + "-0." + headless + "." + o.namespace + ".svc",
		"localhost", "127.0.0.1",
	}
	if o.tlsNames != "" {
		names = append(names, strings.Split(o.tlsNames, ",")...)
	}
	for _, name := range names {
		_, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		c.check(err == nil, "server certificate verifies for %s%s", name, errSuffix(err))
	}
	client := objs.secrets[clientSecretName(fullname)]
	if !c.check(client != nil, "client Secret %s is rendered", clientSecretName(fullname)) {
		return
	}
	_, err = tls.X509KeyPair(client.Data["tls.crt"], client.Data["tls.key"])
	c.check(err == nil, "client tls.crt and tls.key are a key pair%s", errSuffix(err))
	c.check(bytes.Equal(client.Data["ca.crt"], server.Data[keys["tls_ca"]]), "client Secret's ca.crt is the server's client CA")
	ccert, err := parseCert(client.Data["tls.crt"])
	if c.check(err == nil, "client certificate parses%s", errSuffix(err)) {
		_, err = ccert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		c.check(err == nil, "client certificate verifies as a client against ca.crt%s", errSuffix(err))
	}
}

func parseCert(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParseCertificate(block.Bytes)
}

func flagValue(argv []string, name string) string {
	for i, a := range argv {
		if a == name && i+1 < len(argv) {
			return argv[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// decode reads every YAML document and decodes it strictly into its type.
func decode(file string) (objects, error) {
	objs := objects{configMaps: map[string]*corev1.ConfigMap{}, services: map[string]*corev1.Service{}, secrets: map[string]*corev1.Secret{}}
	f, err := os.Open(file)
	if err != nil {
		return objs, err
	}
	defer f.Close()
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return objs, err
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return objs, err
		}
		if meta.Kind == "" {
			continue // an empty document
		}
		var obj any
		switch meta.APIVersion + "/" + meta.Kind {
		case "apps/v1/StatefulSet":
			obj = &appsv1.StatefulSet{}
		case "v1/ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1/Service":
			obj = &corev1.Service{}
		case "v1/Secret":
			obj = &corev1.Secret{}
		default:
			return objs, fmt.Errorf("unexpected object %s %s", meta.APIVersion, meta.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return objs, fmt.Errorf("%s: %w", meta.Kind, err)
		}
		switch obj := obj.(type) {
		case *appsv1.StatefulSet:
			if objs.sts != nil {
				return objs, errors.New("more than one StatefulSet")
			}
			objs.sts = obj
		case *corev1.ConfigMap:
			objs.configMaps[obj.Name] = obj
		case *corev1.Service:
			objs.services[obj.Name] = obj
		case *corev1.Secret:
			objs.secrets[obj.Name] = obj
		}
	}
	return objs, nil
}

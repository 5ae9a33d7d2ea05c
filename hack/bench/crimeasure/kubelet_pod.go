package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// podManifest is static pod i of namespace ns: a web server with an exec
// readiness probe (wget of its own page every second) and a busybox that
// logs a line a second. Both have small requests (a Burstable pod, as most
// are) and stop at once on SIGTERM.
func podManifest(ns string, i int, webImage, logImage string) ([]byte, error) {
	requests := map[string]any{"requests": map[string]string{"cpu": "10m", "memory": "16Mi"}}
	pod := map[string]any{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata":   map[string]any{"name": fmt.Sprintf("web-%d", i), "namespace": ns},
		"spec": map[string]any{
			"dnsPolicy":                     "Default",
			"terminationGracePeriodSeconds": 2,
			"containers": []any{
				map[string]any{
					"name": "web", "image": webImage, "imagePullPolicy": "IfNotPresent",
					"ports":     []any{map[string]any{"containerPort": 80}},
					"resources": requests,
					"readinessProbe": map[string]any{
						"exec":          map[string]any{"command": []string{"wget", "-q", "-O", "/dev/null", "http://127.0.0.1:80/"}},
						"periodSeconds": 1, "timeoutSeconds": 2, "failureThreshold": 3,
					},
				},
				map[string]any{
					"name": "log", "image": logImage, "imagePullPolicy": "IfNotPresent",
					"command":   []string{"sh", "-c", `trap 'exit 0' TERM; i=0; while true; do echo "log line $i"; i=$((i+1)); sleep 1 & wait $!; done`},
					"resources": requests,
				},
			},
		},
	}
	return json.MarshalIndent(pod, "", "  ")
}

// kubeletClient reads kubelet's own server (anonymous, AlwaysAllow, its
// self-signed certificate on loopback).
type kubeletClient struct {
	base string
	http *http.Client
}

func newKubeletClient(base string) *kubeletClient {
	return &kubeletClient{
		base: strings.TrimSuffix(base, "/"),
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // kubelet's self-signed certificate, on loopback
		}},
	}
}

func (k *kubeletClient) get(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kubelet %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("kubelet %s: %s: %s", path, resp.Status, b)
	}
	return resp.Body, nil
}

// histogram is a Prometheus histogram's count and sum.
type histogram struct{ count, sum float64 }

// sli reads kubelet_pod_start_sli_duration_seconds from /metrics.
func (k *kubeletClient) sli(ctx context.Context) (histogram, error) {
	const name = "kubelet_pod_start_sli_duration_seconds"
	var h histogram
	body, err := k.get(ctx, "/metrics")
	if err != nil {
		return h, err
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		metric, _, _ := strings.Cut(f[0], "{")
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch metric {
		case name + "_count":
			h.count += v
		case name + "_sum":
			h.sum += v
		}
	}
	return h, sc.Err()
}

// podList is the part of kubelet's /pods answer read here.
type podList struct {
	Items []struct {
		Metadata struct {
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Status struct {
			Conditions []struct {
				Type   string `json:"type"`
				Status string `json:"status"`
			} `json:"conditions"`
		} `json:"status"`
	} `json:"items"`
}

// waitReady polls kubelet's /pods until n pods of ns are Ready. It checks
// that the readiness probes pass; nothing is timed from it.
func (k *kubeletClient) waitReady(ctx context.Context, ns string, n int) error {
	ready := 0
	for {
		body, err := k.get(ctx, "/pods")
		if err != nil {
			return err
		}
		var pl podList
		err = json.NewDecoder(body).Decode(&pl)
		body.Close()
		if err != nil {
			return fmt.Errorf("kubelet /pods: %w", err)
		}
		ready = 0
		for _, p := range pl.Items {
			if p.Metadata.Namespace != ns {
				continue
			}
			for _, c := range p.Status.Conditions {
				if c.Type == "Ready" && c.Status == "True" {
					ready++
				}
			}
		}
		if ready == n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d pods of %s Ready in kubelet when giving up: %w", ready, n, ns, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

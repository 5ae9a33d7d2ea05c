package kubelet

import (
	"context"
	"encoding/json"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// containerLogs is kubelet's /containerLogs for the pod's container, with
// query (e.g. "previous=true") if not empty.
func (k *kubelet) containerLogs(ctx context.Context, p *staticPod, container, query string) string {
	GinkgoHelper()
	path := fmt.Sprintf("/containerLogs/%s/%s/%s", podNamespace, p.name(), container)
	if query != "" {
		path += "?" + query
	}
	body, err := k.get(ctx, path)
	Expect(err).NotTo(HaveOccurred())
	return body
}

// statsSummary is the part of kubelet's /stats/summary
// (k8s.io/kubelet/pkg/apis/stats/v1alpha1.Summary) the suite checks; the
// suite decodes it itself rather than depend on k8s.io/kubelet.
type statsSummary struct {
	Node struct {
		NodeName string   `json:"nodeName"`
		CPU      *cpu     `json:"cpu"`
		Memory   *memory  `json:"memory"`
		Fs       *fsStats `json:"fs"`
		Runtime  *struct {
			ImageFs     *fsStats `json:"imageFs"`
			ContainerFs *fsStats `json:"containerFs"`
		} `json:"runtime"`
	} `json:"node"`
	Pods []podStats `json:"pods"`
}

type podStats struct {
	PodRef struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
		UID       string `json:"uid"`
	} `json:"podRef"`
	Containers []struct {
		Name   string   `json:"name"`
		CPU    *cpu     `json:"cpu"`
		Memory *memory  `json:"memory"`
		Rootfs *fsStats `json:"rootfs"`
		Logs   *fsStats `json:"logs"`
	} `json:"containers"`
	CPU              *cpu     `json:"cpu"`
	Memory           *memory  `json:"memory"`
	EphemeralStorage *fsStats `json:"ephemeral-storage"`
}

type cpu struct {
	UsageCoreNanoSeconds *uint64 `json:"usageCoreNanoSeconds"`
}

type memory struct {
	WorkingSetBytes *uint64 `json:"workingSetBytes"`
}

type fsStats struct {
	AvailableBytes *uint64 `json:"availableBytes"`
	CapacityBytes  *uint64 `json:"capacityBytes"`
	UsedBytes      *uint64 `json:"usedBytes"`
}

// summary fetches and decodes kubelet's /stats/summary.
func (k *kubelet) summary(ctx context.Context) (*statsSummary, error) {
	body, err := k.get(ctx, "/stats/summary")
	if err != nil {
		return nil, err
	}
	var s statsSummary
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		return nil, err
	}
	return &s, nil
}

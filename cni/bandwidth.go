package cni

import (
	"fmt"
	"math"

	"github.com/containerd/errdefs"
	"k8s.io/apimachinery/pkg/api/resource"
)

// The pod annotations that carry bandwidth limits, in bits per second as a
// Kubernetes quantity ("10M", "1Gi").
const (
	IngressBandwidthAnnotation = "kubernetes.io/ingress-bandwidth"
	EgressBandwidthAnnotation  = "kubernetes.io/egress-bandwidth"
)

// The bounds kubelet puts on the annotations.
var (
	minBandwidth = resource.MustParse("1k")
	maxBandwidth = resource.MustParse("1P")
)

// BandwidthFromAnnotations parses the kubernetes.io/ingress-bandwidth and
// kubernetes.io/egress-bandwidth annotations. It returns nil when neither is
// set, and an InvalidArgument error naming the annotation when one is not a
// quantity between 1k and 1P. Each burst is math.MaxUint32 bits, as
// containerd and CRI-O set it (the annotations carry no burst).
func BandwidthFromAnnotations(a map[string]string) (*Bandwidth, error) {
	ingress, err := bandwidthAnnotation(a, IngressBandwidthAnnotation)
	if err != nil {
		return nil, err
	}
	egress, err := bandwidthAnnotation(a, EgressBandwidthAnnotation)
	if err != nil {
		return nil, err
	}
	if ingress == 0 && egress == 0 {
		return nil, nil
	}
	b := &Bandwidth{}
	if ingress != 0 {
		b.IngressRate, b.IngressBurst = ingress, math.MaxUint32
	}
	if egress != 0 {
		b.EgressRate, b.EgressBurst = egress, math.MaxUint32
	}
	return b, nil
}

// bandwidthAnnotation is the value of annotation key in bits per second, 0
// when it is absent.
func bandwidthAnnotation(a map[string]string, key string) (uint64, error) {
	s, ok := a[key]
	if !ok {
		return 0, nil
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("annotation %s: %q is not a quantity: %w", key, s, errdefs.ErrInvalidArgument)
	}
	if q.Cmp(minBandwidth) < 0 {
		return 0, fmt.Errorf("annotation %s: %q is unreasonably small (< 1kbit): %w", key, s, errdefs.ErrInvalidArgument)
	}
	if q.Cmp(maxBandwidth) > 0 {
		return 0, fmt.Errorf("annotation %s: %q is unreasonably large (> 1Pbit): %w", key, s, errdefs.ErrInvalidArgument)
	}
	return uint64(q.Value()), nil
}

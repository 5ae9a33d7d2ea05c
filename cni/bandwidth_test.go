package cni

import (
	"math"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestBandwidthFromAnnotations(t *testing.T) {
	const burst = math.MaxUint32
	tests := []struct {
		name    string
		a       map[string]string
		want    *Bandwidth
		wantErr string // the annotation the error must name
	}{
		{name: "nil map"},
		{name: "unrelated annotations", a: map[string]string{"kubernetes.io/foo": "1M"}},
		{name: "ingress", a: map[string]string{IngressBandwidthAnnotation: "10M"},
			want: &Bandwidth{IngressRate: 10_000_000, IngressBurst: burst}},
		{name: "egress binary suffix", a: map[string]string{EgressBandwidthAnnotation: "1Gi"},
			want: &Bandwidth{EgressRate: 1 << 30, EgressBurst: burst}},
		{name: "both", a: map[string]string{IngressBandwidthAnnotation: "1k", EgressBandwidthAnnotation: "1P"},
			want: &Bandwidth{IngressRate: 1000, IngressBurst: burst, EgressRate: 1e15, EgressBurst: burst}},
		{name: "fraction rounds up", a: map[string]string{IngressBandwidthAnnotation: "1.5k"},
			want: &Bandwidth{IngressRate: 1500, IngressBurst: burst}},
		{name: "malformed", a: map[string]string{IngressBandwidthAnnotation: "10 Mbit"}, wantErr: IngressBandwidthAnnotation},
		{name: "empty", a: map[string]string{EgressBandwidthAnnotation: ""}, wantErr: EgressBandwidthAnnotation},
		{name: "too small", a: map[string]string{EgressBandwidthAnnotation: "999"}, wantErr: EgressBandwidthAnnotation},
		{name: "too large", a: map[string]string{IngressBandwidthAnnotation: "2P"}, wantErr: IngressBandwidthAnnotation},
		{name: "negative", a: map[string]string{IngressBandwidthAnnotation: "-10M"}, wantErr: IngressBandwidthAnnotation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BandwidthFromAnnotations(tt.a)
			if tt.wantErr != "" {
				if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want InvalidArgument naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if got != nil {
				// What the annotations give must pass Setup's validation.
				p := Pod{Bandwidth: got}
				if err := validateRateAndBurst("Bandwidth.Ingress", p.Bandwidth.IngressRate, p.Bandwidth.IngressBurst); err != nil {
					t.Error(err)
				}
				if err := validateRateAndBurst("Bandwidth.Egress", p.Bandwidth.EgressRate, p.Bandwidth.EgressBurst); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

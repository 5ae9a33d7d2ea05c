package builder

import (
	"strings"
	"testing"

	"github.com/moby/buildkit/cmd/buildkitd/config"
	"github.com/moby/buildkit/util/disk"
)

func TestParseDiskSpace(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    config.DiskSpace
		wantErr string
	}{
		{in: "", want: config.DiskSpace{}},
		{in: "512MB", want: config.DiskSpace{Bytes: 512 << 20}},
		{in: "10GB", want: config.DiskSpace{Bytes: 10 << 30}},
		{in: "10%", want: config.DiskSpace{Percentage: 10}},
		{in: "100%", want: config.DiskSpace{Percentage: 100}},
		{in: "101%", wantErr: "out of range"},
		{in: "-1%", wantErr: "out of range"},
		{in: "lots", wantErr: `"lots" is not a size`},
		{in: "x%", wantErr: `"x%" is not a size`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDiskSpace(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestGCPolicy(t *testing.T) {
	const gb = int64(1e9)
	small := disk.DiskStat{Total: 40 << 30}   // 40GiB: percentages apply
	large := disk.DiskStat{Total: 2000 << 30} // 2000GiB: byte caps apply
	for _, tc := range []struct {
		name                           string
		gc                             GCOptions
		dstat                          disk.DiskStat
		wantReserved, wantMax, wantMin int64
		wantErr                        string
	}{
		// AsBytes rounds percentages up to whole GB: 10% of 40GiB is 5GB.
		{name: "defaults on a small disk", dstat: small, wantReserved: 5 * gb, wantMax: 13 * gb, wantMin: 9 * gb},
		{name: "defaults on a large disk are capped", dstat: large, wantReserved: 10 * gb, wantMax: 50 * gb, wantMin: 401 * gb},
		{name: "overrides", dstat: small, gc: GCOptions{ReservedSpace: "1GB", MaxUsedSpace: "50%", MinFreeSpace: "2GB"},
			wantReserved: 1 << 30, wantMax: 21 * gb, wantMin: 2 << 30},
		{name: "bad size names the knob", dstat: small, gc: GCOptions{MaxUsedSpace: "big"}, wantErr: "gc max used space"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := tc.gc.policy(tc.dstat)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rules) != 4 {
				t.Fatalf("got %d rules, want BuildKit's 4", len(rules))
			}
			// Rule 0 is the fixed "old sources and cache mounts" rule.
			if rules[0].KeepDuration == 0 || len(rules[0].Filter) == 0 {
				t.Errorf("rule 0 = %+v, want the cache mount and local source rule", rules[0])
			}
			for i, r := range rules[1:] {
				if r.ReservedSpace != tc.wantReserved || r.MaxUsedSpace != tc.wantMax || r.MinFreeSpace != tc.wantMin {
					t.Errorf("rule %d = reserved %d max %d min free %d; want %d %d %d", i+1,
						r.ReservedSpace, r.MaxUsedSpace, r.MinFreeSpace, tc.wantReserved, tc.wantMax, tc.wantMin)
				}
			}
			if !rules[3].All {
				t.Error("the last rule should prune everything, shared cache included")
			}
		})
	}
}

func TestGCPolicyDisabled(t *testing.T) {
	rules, err := GCOptions{Disabled: true, MaxUsedSpace: "not even parsed"}.policy(disk.DiskStat{Total: 1 << 40})
	if err != nil || rules != nil {
		t.Fatalf("got %v, %v; want no policy", rules, err)
	}
}

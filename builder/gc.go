package builder

import (
	"fmt"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/cmd/buildkitd/config"
	"github.com/moby/buildkit/util/disk"
)

// GCOptions is the build cache garbage collection policy. Sizes are
// BuildKit disk-space strings: an amount with a unit ("10GB", "512MB") or a
// percentage of the filesystem that holds Root ("10%"). An empty size takes
// its default.
//
// BuildKit prunes unused cache, oldest and most easily rebuilt first, while
// the cache is above MaxUsedSpace or the filesystem has less than
// MinFreeSpace free, but never below ReservedSpace. Images in the node's
// image store are not build cache: their content is never pruned by this
// policy (kubelet's image GC owns them).
type GCOptions struct {
	// Disabled turns automatic GC off; `buildctl prune` still works.
	Disabled bool
	// ReservedSpace is kept however full the disk is.
	// Default: 10% of the filesystem, at most 10GB.
	ReservedSpace string
	// MaxUsedSpace is the most the build cache may use.
	// Default: 30% of the filesystem, at most 50GB. Lower than standalone
	// BuildKit's 80% because the node's images and container layers share
	// the disk and kubelet starts evicting images at 85% usage.
	MaxUsedSpace string
	// MinFreeSpace is the free space GC keeps on the filesystem.
	// Default: 20%.
	MinFreeSpace string
}

// Default GC caps; see GCOptions.
const (
	defaultReservedPercent = 10
	defaultReservedBytes   = 10e9
	defaultMaxUsedPercent  = 30
	defaultMaxUsedBytes    = 50e9
	defaultMinFreePercent  = 20
)

// ParseDiskSpace parses a BuildKit disk-space string ("512MB", "10GB",
// "10%"). The empty string is the zero DiskSpace.
func ParseDiskSpace(s string) (config.DiskSpace, error) {
	var d config.DiskSpace
	if err := d.UnmarshalText([]byte(s)); err != nil {
		return config.DiskSpace{}, fmt.Errorf("%q is not a size (want e.g. 512MB, 10GB or 10%%)", s)
	}
	if d.Bytes < 0 || d.Percentage < 0 || d.Percentage > 100 {
		return config.DiskSpace{}, fmt.Errorf("%q is out of range", s)
	}
	return d, nil
}

// validate names the first size that does not parse.
func (g GCOptions) validate() error {
	for name, v := range map[string]string{
		"reserved space": g.ReservedSpace,
		"max used space": g.MaxUsedSpace,
		"min free space": g.MinFreeSpace,
	} {
		if _, err := ParseDiskSpace(v); err != nil {
			return fmt.Errorf("builder: gc %s: %w", name, err)
		}
	}
	return nil
}

// policy is the worker's prune policy for a filesystem described by dstat:
// BuildKit's default four rules (old local sources and cache mounts first,
// then anything unused for 60 days, then unshared cache, then everything)
// with the caps from g. Disabled GC is a nil policy.
func (g GCOptions) policy(dstat disk.DiskStat) ([]client.PruneInfo, error) {
	if g.Disabled {
		return nil, nil
	}
	if err := g.validate(); err != nil {
		return nil, err
	}
	caps := config.GCConfig{
		GCReservedSpace: capped(defaultReservedPercent, defaultReservedBytes, dstat),
		GCMaxUsedSpace:  capped(defaultMaxUsedPercent, defaultMaxUsedBytes, dstat),
		GCMinFreeSpace:  config.DiskSpace{Percentage: defaultMinFreePercent},
	}
	for _, o := range []struct {
		value string
		dst   *config.DiskSpace
	}{
		{g.ReservedSpace, &caps.GCReservedSpace},
		{g.MaxUsedSpace, &caps.GCMaxUsedSpace},
		{g.MinFreeSpace, &caps.GCMinFreeSpace},
	} {
		if o.value == "" {
			continue
		}
		d, _ := ParseDiskSpace(o.value) // validated above
		*o.dst = d
	}
	rules := config.DefaultGCPolicy(caps, dstat)
	out := make([]client.PruneInfo, 0, len(rules))
	for _, r := range rules {
		out = append(out, client.PruneInfo{
			Filter:        r.Filters,
			All:           r.All,
			KeepDuration:  r.KeepDuration.Duration,
			ReservedSpace: r.ReservedSpace.AsBytes(dstat),
			MaxUsedSpace:  r.MaxUsedSpace.AsBytes(dstat),
			MinFreeSpace:  r.MinFreeSpace.AsBytes(dstat),
		})
	}
	return out, nil
}

// capped is percent of the filesystem, but at most maxBytes.
func capped(percent, maxBytes int64, dstat disk.DiskStat) config.DiskSpace {
	d := config.DiskSpace{Percentage: percent}
	if d.AsBytes(dstat) > maxBytes {
		return config.DiskSpace{Bytes: maxBytes}
	}
	return d
}

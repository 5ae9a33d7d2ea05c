package builder

import (
	"runtime/debug"
	"sync"

	"github.com/moby/buildkit/version"
)

// unknownVersion is BuildKit's version string when its linker flags were
// not set, as in any binary that embeds BuildKit as a library.
const unknownVersion = "v0.0.0+unknown"

var setVersionOnce sync.Once

// setBuildkitVersion reports the embedded BuildKit module's version (from
// the binary's build info) where buildkitd's linker flags would have put
// it, so `buildctl debug workers` and buildx see a real version and enable
// the features it implies. It leaves a version set at link time alone.
func setBuildkitVersion() {
	setVersionOnce.Do(func() {
		if version.Version != unknownVersion {
			return
		}
		info, ok := debug.ReadBuildInfo()
		if !ok {
			return
		}
		if v := moduleVersion(info, version.Package); v != "" {
			version.Version = v
		}
	})
}

// moduleVersion is the version of module path in info, following a
// replace directive; "" when the module is not in the build.
func moduleVersion(info *debug.BuildInfo, path string) string {
	for _, m := range info.Deps {
		if m.Path != path {
			continue
		}
		if m.Replace != nil && m.Replace.Version != "" {
			return m.Replace.Version
		}
		return m.Version
	}
	return ""
}

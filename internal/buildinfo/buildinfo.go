// Package buildinfo says which fridaymorning this is: the version, commit and build date stamped by
// `make build` (-ldflags -X), else what the Go toolchain recorded in the binary (module version, VCS
// revision and time), else "dev".
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped by the linker: go build -ldflags "-X github.com/fridaymorning/fridaymorning/internal/buildinfo.version=v1.2.3 …".
var (
	version string
	commit  string
	date    string
)

// Info is what a build knows about itself.
type Info struct {
	Version, Commit, Date, GoVersion, Platform string
	// Modified says the working tree had changes the commit does not hold.
	Modified bool
}

// Get returns this binary's build information.
func Get() Info {
	in := Info{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if in.Commit == "" {
					in.Commit = s.Value
				}
			case "vcs.time":
				if in.Date == "" {
					in.Date = s.Value
				}
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	if in.Version == "" {
		in.Version = "dev"
	}
	return in
}

// String is one line: "fridaymorning v1.2.3 (commit 0123abc, built 2026-12-01T09:00:00Z, go1.26 linux/amd64)".
func (in Info) String() string {
	c := in.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if c == "" {
		c = "unknown"
	}
	if in.Modified {
		c += "+changes"
	}
	d := in.Date
	if d == "" {
		d = "unknown"
	}
	return fmt.Sprintf("fridaymorning %s (commit %s, built %s, %s %s)", in.Version, c, d, in.GoVersion, in.Platform)
}

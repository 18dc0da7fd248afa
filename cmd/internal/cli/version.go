package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Build is what a glmkit binary knows of its own build, from
// debug.ReadBuildInfo: the module version, the VCS stamp that `go build`,
// `go install` and `go run` record in a git clone, and the Go release.
type Build struct {
	// Version is the main module's version: a release tag, a
	// pseudo-version of the commit (v0.0.0-20261201134200-80fd576abcde,
	// "+dirty" with uncommitted changes), or "(devel)".
	Version string
	// Revision, Time and Modified are the VCS stamp (vcs.revision,
	// vcs.time, vcs.modified); Revision is "" in a binary built without
	// one (a test binary, -buildvcs=false, a git worktree, a source tree
	// that is not a clone).
	Revision, Time string
	Modified       bool
	Go             string            // runtime.Version()
	Deps           map[string]string // module path → version
}

// ReadBuild returns this binary's Build.
func ReadBuild() Build {
	bi, ok := debug.ReadBuildInfo()
	return buildFrom(bi, ok)
}

func buildFrom(bi *debug.BuildInfo, ok bool) Build {
	b := Build{Version: "(devel)", Go: runtime.Version(), Deps: map[string]string{}}
	if !ok || bi == nil {
		return b
	}
	if v := bi.Main.Version; v != "" {
		b.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	for _, d := range bi.Deps {
		v := d.Version
		if d.Replace != nil {
			v = d.Replace.Version
		}
		b.Deps[d.Path] = v
	}
	return b
}

// String is the --version line after the program's name: the version,
// then the commit it was built from (or that there is no VCS stamp), then
// Go's release and the platform.
func (b Build) String() string {
	var s strings.Builder
	s.WriteString(b.Version)
	if b.Revision != "" {
		fmt.Fprintf(&s, " (commit %s", b.Revision)
		if b.Time != "" {
			fmt.Fprintf(&s, " of %s", b.Time)
		}
		if b.Modified {
			s.WriteString(", with uncommitted changes")
		}
		s.WriteString(")")
	} else {
		s.WriteString(" (no VCS stamp: build it with `go install ./cmd/...` in a git clone to record the commit)")
	}
	fmt.Fprintf(&s, ", %s %s/%s", b.Go, runtime.GOOS, runtime.GOARCH)
	return s.String()
}

// Software is what a build's manifest and a checkpoint record of the
// binary that wrote them: "glmkit" (the version), "glmkit.revision",
// "glmkit.time" and "glmkit.modified" when the binary has a VCS stamp,
// "go", and "arrow-go" (the version of the Arrow library, when linked in).
func (b Build) Software() map[string]string {
	s := map[string]string{"go": b.Go, "glmkit": b.Version}
	if b.Revision != "" {
		s["glmkit.revision"] = b.Revision
		if b.Time != "" {
			s["glmkit.time"] = b.Time
		}
		if b.Modified {
			s["glmkit.modified"] = "true"
		}
	}
	if v, ok := b.Deps["github.com/apache/arrow-go/v18"]; ok {
		s["arrow-go"] = v
	}
	return s
}

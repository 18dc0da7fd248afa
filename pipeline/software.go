package pipeline

import "fmt"

// softwareID is what tells two glmkit binaries apart in a software map
// (BuildOptions.Software, as cli records it): the commit, and whether the
// tree had uncommitted changes, or a release version without a commit. It
// is "" for a binary that knows neither (no VCS stamp: a test binary, a
// build in a git worktree or outside a clone), which cannot be told apart
// from another. Two binaries of the same commit with uncommitted changes
// cannot be told apart either.
func softwareID(sw map[string]string) string {
	if rev := sw["glmkit.revision"]; rev != "" {
		if sw["glmkit.modified"] == "true" {
			return rev + "+modified"
		}
		return rev
	}
	if v := sw["glmkit"]; v != "" && v != "(devel)" {
		return v
	}
	return ""
}

// describeSoftware names the binary of a software map for a message.
func describeSoftware(sw map[string]string) string {
	if softwareID(sw) == "" {
		return "a glmkit that did not record its version (older than this one, or built without a VCS stamp)"
	}
	s := "glmkit " + sw["glmkit"]
	if rev := sw["glmkit.revision"]; rev != "" {
		s += fmt.Sprintf(" (commit %.12s", rev)
		if sw["glmkit.modified"] == "true" {
			s += ", with uncommitted changes"
		}
		s += ")"
	}
	return s
}

// sameSoftware refuses to add rows to the build of plan with another
// binary than the one that planned it: a fix to reading, tokenizing or
// masking changes the rows, and a build whose tasks came from two
// versions would mix them, with nothing in the manifest to say so. A
// binary that cannot tell its version (softwareID "") is let through.
func sameSoftware(plan *Plan, dir string, cur map[string]string, how string) error {
	id := softwareID(cur)
	if id == "" || softwareID(plan.Software) == id {
		return nil
	}
	return fmt.Errorf("pipeline: %s: the build was planned by %s; this is %s. Rows written by two versions can differ (a fix to reading, tokenizing or masking changes them), so one build is not made of both: %s with the binary that planned it, or start the build over with --force",
		dir, describeSoftware(plan.Software), describeSoftware(cur), how)
}

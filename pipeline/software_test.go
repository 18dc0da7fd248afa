package pipeline

import (
	"context"
	"strings"
	"testing"
)

// A build planned by one glmkit is not continued, nor its tasks run, by
// another: the rows of two versions would mix in one build. A binary that
// cannot tell its version is let through, and the manifest names the
// binary that planned (and so wrote) the rows.
func TestResumeRefusesAnotherVersion(t *testing.T) {
	in := "../testdata/demo/shakespeare.txt"
	a := map[string]string{"glmkit": "v0.0.0-20261201-aaaaaaaaaaaa", "glmkit.revision": "aaaaaaaaaaaa1111", "go": "go1.26"}
	b := map[string]string{"glmkit": "v0.0.0-20261202-bbbbbbbbbbbb", "glmkit.revision": "bbbbbbbbbbbb2222", "go": "go1.26"}
	dirty := map[string]string{"glmkit": a["glmkit"] + "+dirty", "glmkit.revision": a["glmkit.revision"], "glmkit.modified": "true", "go": "go1.26"}
	devel := map[string]string{"glmkit": "(devel)", "go": "go1.26"}
	dir := t.TempDir()
	o := options(t, "gpt2", dir, in)
	o.Software = a
	plan, env := preparedEnv(t, &o)
	for _, sw := range []map[string]string{b, dirty} {
		env.Software = sw
		_, err := RunTaskOnce(context.Background(), plan, env, plan.Tasks[0])
		if err == nil || !strings.Contains(err.Error(), "commit aaaaaaaaaaaa)") || !strings.Contains(err.Error(), "--force") {
			t.Errorf("run-task by %v of a plan by %v: %v", sw, a, err)
		}
	}
	env.Software = devel
	if _, err := RunTaskOnce(context.Background(), plan, env, plan.Tasks[0]); err != nil {
		t.Fatalf("run-task by a binary without a version: %v", err)
	}

	resume := func(sw map[string]string) error {
		o := options(t, "gpt2", dir, in)
		o.Resume, o.Software = true, sw
		_, err := Build(context.Background(), o)
		return err
	}
	if err := resume(b); err == nil || !strings.Contains(err.Error(), "planned by glmkit "+a["glmkit"]) || !strings.Contains(err.Error(), "this is glmkit "+b["glmkit"]) {
		t.Errorf("--resume by another commit: %v", err)
	}
	if err := resume(devel); err != nil {
		t.Fatalf("--resume by a binary without a version: %v", err)
	}
	if err := resume(a); err != nil {
		t.Fatalf("--resume by the same binary: %v", err)
	}
	mf, _, err := Merge(dir, mustReadPlan(t, dir), b)
	if err != nil {
		t.Fatal(err)
	}
	if mf.Software["glmkit.revision"] != a["glmkit.revision"] {
		t.Errorf("the manifest names %v; the rows were written by %v", mf.Software, a)
	}

	// A plan from before plans named their binary (or by one without a
	// stamp) is from another binary than one that knows its version.
	old := t.TempDir()
	o = options(t, "gpt2", old, in)
	if _, err := Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if err := func() error {
		o := options(t, "gpt2", old, in)
		o.Resume, o.Software = true, a
		_, err := Build(context.Background(), o)
		return err
	}(); err == nil || !strings.Contains(err.Error(), "did not record its version") {
		t.Errorf("--resume of a plan without its binary: %v", err)
	}
}

func mustReadPlan(t *testing.T, dir string) *Plan {
	t.Helper()
	p, err := ReadPlan(dir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

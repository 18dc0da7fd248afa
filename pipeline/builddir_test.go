package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/atomicfile"
	"github.com/glmkit/glmkit/sharding"
)

// Classes 3, 5 and 6 of issue 11: glmprep removes only what it can prove it
// wrote; every build file it reads back is checked before use; an input
// that changed since it was planned is an error naming it.

// userFiles puts files a user might keep in dir and returns their
// contents by name.
func userFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{
		"manifest.json":      []byte(`{"mine": true}`),
		"plan.json":          []byte("my plans for the weekend\n"),
		"tasks/todo.txt":     []byte("buy milk\n"),
		"shard-notes.arrow":  []byte("not a shard"),
		"notes.tmp":          []byte("scratch"),
		".hidden.tmp":        []byte("hidden scratch"),
		".shard-123-abc.tmp": []byte("looks like an old glmkit temporary, but is not one"),
		".glmkit-deadbeef-1-0011223344556677.x.tmp": []byte("a glmkit-like name with a pid that runs (init)"),
	}
	for n, b := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, n)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func checkUserFiles(t *testing.T, dir string, files map[string][]byte, skip ...string) {
	t.Helper()
	for n, want := range files {
		if contains(skip, n) {
			continue
		}
		got, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("the user's %s was removed or changed (%v)", n, err)
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestForceRefusesForeignDirectories(t *testing.T) {
	in := writeFile(t, t.TempDir(), "in.txt", testLines(200))
	for _, force := range []bool{true, false} {
		dir := t.TempDir()
		files := userFiles(t, dir)
		o := options(t, "gpt2", dir, in)
		o.Force = force
		_, err := Build(context.Background(), o)
		if err == nil {
			t.Fatalf("force %v: a build into a directory of someone else's files succeeded", force)
		}
		t.Logf("force %v: %v", force, err)
		checkUserFiles(t, dir, files)
	}
	// Without a plan.json but with one of the names a build writes.
	for _, name := range []string{"manifest.json", "shard-000000-0000.arrow", "tasks"} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
		if name == "tasks" {
			os.Mkdir(filepath.Join(dir, name), 0o755)
		} else {
			os.WriteFile(filepath.Join(dir, name), []byte("user data"), 0o644)
		}
		o := options(t, "gpt2", dir, in)
		if _, err := Build(context.Background(), o); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("a build beside the user's %s: %v", name, err)
		}
	}
	// A plain build into a directory of other files keeps every one.
	dir := t.TempDir()
	files := map[string][]byte{"notes.tmp": []byte("a"), ".hidden.tmp": []byte("b"), ".shard-1-2.tmp": []byte("c"), "data.csv": []byte("d")}
	for n, b := range files {
		os.WriteFile(filepath.Join(dir, n), b, 0o644)
	}
	if _, err := Build(context.Background(), options(t, "gpt2", dir, in)); err != nil {
		t.Fatal(err)
	}
	checkUserFiles(t, dir, files)
}

func TestForceReplacesOnlyItsBuild(t *testing.T) {
	src := t.TempDir()
	in := writeFile(t, src, "in.txt", testLines(3000))
	dir := t.TempDir()
	o := options(t, "gpt2", dir, in)
	o.Config.ShardRows = 10
	if _, err := Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	old, _ := ReadPlan(dir)
	oldShards := 0
	for _, task := range old.Tasks {
		rec, _ := ReadTaskRecord(dir, task.Index)
		oldShards += len(rec.Shards)
	}
	files := map[string][]byte{"notes.txt": []byte("mine"), ".x.tmp": []byte("mine"), "shard-notes.arrow": []byte("mine"), "tasks/todo.txt": []byte("mine")}
	for n, b := range files {
		os.WriteFile(filepath.Join(dir, n), b, 0o644)
	}
	// A record that names a file outside the build is refused, and --force
	// removes nothing outside.
	outside := writeFile(t, src, "precious.txt", []byte("keep me"))
	b, _ := os.ReadFile(recordPath(dir, 0))
	var rec map[string]any
	json.Unmarshal(b, &rec)
	rel, _ := filepath.Rel(dir, outside)
	rec["shards"].([]any)[0].(map[string]any)["name"] = rel
	b, _ = json.Marshal(rec)
	os.WriteFile(recordPath(dir, 0), b, 0o644)
	if _, _, err := Merge(dir, old, nil); err == nil || !strings.Contains(err.Error(), rel) {
		t.Errorf("merge of a record naming %s: %v", rel, err)
	}
	o.Config.ShardRows = 1000 // fewer, bigger shards
	o.Force = true
	if _, err := Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	checkUserFiles(t, dir, files)
	if b, err := os.ReadFile(outside); err != nil || string(b) != "keep me" {
		t.Fatalf("--force removed %s, named by a tampered record", outside)
	}
	ents, _ := os.ReadDir(dir)
	shards := 0
	for _, e := range ents {
		if isShardName(e.Name()) {
			shards++
		}
	}
	m, _ := sharding.ReadManifest(dir)
	if shards != m.Totals.Shards || shards >= oldShards {
		t.Errorf("%d shard files after --force, the new build has %d (the old one %d): old shards left behind", shards, m.Totals.Shards, oldShards)
	}
}

// A temporary left by a killed process (its pid gone, its lock free) is
// removed when the build resumes; one whose writer may still run is not.
func TestStaleTemporaries(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, t.TempDir(), "in.txt", testLines(500))
	o := options(t, "gpt2", dir, in)
	if _, err := Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, sharding.ManifestName))
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip("no true(1) to get a pid that is gone")
	}
	deadPid := dead.Process.Pid
	mine := atomicfile.Name("shard") // this process: alive
	staleName := strings.Replace(atomicfile.Name("shard"), "-"+itoa(os.Getpid())+"-", "-"+itoa(deadPid)+"-", 1)
	staleTask := strings.Replace(atomicfile.Name("000000.progress.json"), "-"+itoa(os.Getpid())+"-", "-"+itoa(deadPid)+"-", 1)
	for _, p := range []string{filepath.Join(dir, mine), filepath.Join(dir, staleName), filepath.Join(dir, tasksDir, staleTask)} {
		os.WriteFile(p, []byte("half a shard"), 0o644)
	}
	// One held by another writer (on another host, say): locked.
	f, held, err := atomicfile.Create(dir, "shard")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	defer held.Release()
	otherHost := filepath.Join(dir, strings.Replace(filepath.Base(held.Path), TempTag(), "00000000", 1))
	os.Rename(held.Path, otherHost)
	o.Resume = true
	if _, err := Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, staleName), filepath.Join(dir, tasksDir, staleTask)} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("stale temporary %s was kept", p)
		}
	}
	for _, p := range []string{filepath.Join(dir, mine), otherHost} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("a temporary whose writer may run (%s) was removed", p)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TempTag is this host's tag in temporary names.
func TempTag() string {
	n := atomicfile.Name("x")
	return strings.SplitN(strings.TrimPrefix(n, atomicfile.Prefix), "-", 2)[0]
}

// Every file read back is checked: an edited plan or task record is an
// error that names it, never a panic, and never acted on.
func TestEditedBuildFiles(t *testing.T) {
	src := t.TempDir()
	in := writeFile(t, src, "in.txt", testLines(3000))
	dir := t.TempDir()
	o := options(t, "gpt2", dir, in)
	o.Config.ShardRows = 30
	o.Config.TaskBytes = 60 << 10 // a few byte-range tasks
	if _, err := Prepare(context.Background(), &o); err != nil {
		t.Fatal(err)
	}
	planBytes, _ := os.ReadFile(filepath.Join(dir, PlanName))
	editedPlans(t, dir, planBytes)
	editedTaskRecords(t, src, dir, planBytes, o)
}

// editJSON returns the JSON object b as f edited it.
func editJSON(b []byte, f func(map[string]any)) []byte {
	var m map[string]any
	json.Unmarshal(b, &m)
	f(m)
	out, _ := json.Marshal(m)
	return out
}

// editedPlans writes damaged copies of a plan into dir, each of which
// ReadPlan must refuse, naming plan.json.
func editedPlans(t *testing.T, dir string, planBytes []byte) {
	edit := func(f func(p map[string]any)) []byte { return editJSON(planBytes, f) }
	task := func(p map[string]any, i int) map[string]any { return p["tasks"].([]any)[i].(map[string]any) }
	input := func(p map[string]any) map[string]any { return p["inputs"].([]any)[0].(map[string]any) }
	meta := func(p map[string]any) map[string]any { return p["meta"].(map[string]any) }
	for name, b := range map[string][]byte{
		"input index out of range": edit(func(p map[string]any) { task(p, 1)["input"] = 7 }),
		"negative input index":     edit(func(p map[string]any) { task(p, 0)["input"] = -1 }),
		"seq_len 0":                edit(func(p map[string]any) { meta(p)["seq_len"] = 0 }),
		"negative seq_len":         edit(func(p map[string]any) { meta(p)["seq_len"] = -5 }),
		"negative mask_epochs":     edit(func(p map[string]any) { meta(p)["mask_epochs"] = -1 }),
		"no inputs":                edit(func(p map[string]any) { p["inputs"] = []any{} }),
		"no tasks for an input":    edit(func(p map[string]any) { p["tasks"] = []any{} }),
		"overlapping ranges":       edit(func(p map[string]any) { task(p, 1)["start"] = 10 }),
		"range past the end":       edit(func(p map[string]any) { task(p, 0)["end"] = 1 << 40 }),
		"task index":               edit(func(p map[string]any) { task(p, 1)["index"] = 5 }),
		"vocab 2^40":               edit(func(p map[string]any) { meta(p)["vocab_size"] = 1 << 40 }),
		"special id out of vocab":  edit(func(p map[string]any) { meta(p)["special_ids"].(map[string]any)["eos"] = 1 << 30 }),
		"bad max_doc_bytes":        edit(func(p map[string]any) { p["config"].(map[string]any)["max_doc_bytes"] = -1 }),
		"unknown format":           edit(func(p map[string]any) { input(p)["format"] = "xml" }),
		"unknown compression":      edit(func(p map[string]any) { input(p)["compression"] = "rar" }),
		"negative size":            edit(func(p map[string]any) { input(p)["size"] = -7 }),
		"bad sha256":               edit(func(p map[string]any) { input(p)["sha256"] = "xyz" }),
		"unknown field":            edit(func(p map[string]any) { p["extra"] = 1 }),
		"truncated":                planBytes[:len(planBytes)/2],
		"not json":                 []byte("\x00\x01binary"),
		"format version":           edit(func(p map[string]any) { p["format_version"] = 99 }),
	} {
		os.WriteFile(filepath.Join(dir, PlanName), b, 0o644)
		_, err := ReadPlan(dir)
		if err == nil || !strings.Contains(err.Error(), PlanName) {
			t.Errorf("%s: ReadPlan gave %v, want an error naming plan.json", name, err)
		}
	}
}

// editedTaskRecords runs task 0 of the plan, then damages its record,
// which readTaskRecord and Merge must refuse, naming the record.
func editedTaskRecords(t *testing.T, src, dir string, planBytes []byte, o BuildOptions) {
	os.WriteFile(filepath.Join(dir, PlanName), planBytes, 0o644)
	plan, err := ReadPlan(dir)
	if err != nil {
		t.Fatal(err)
	}
	env, err := NewEnv(plan, dir, o.SentenceEnd, o.NewEncoder, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RunTaskOnce(context.Background(), plan, env, plan.Tasks[0]); err != nil {
		t.Fatal(err)
	}
	recBytes, _ := os.ReadFile(recordPath(dir, 0))
	editRec := func(f func(r map[string]any)) []byte { return editJSON(recBytes, f) }
	shard := func(r map[string]any) map[string]any { return r["shards"].([]any)[0].(map[string]any) }
	for name, b := range map[string][]byte{
		"shard outside the build":    editRec(func(r map[string]any) { shard(r)["name"] = "../../../../etc/passwd" }),
		"absolute shard name":        editRec(func(r map[string]any) { shard(r)["name"] = "/etc/passwd" }),
		"another task's shard":       editRec(func(r map[string]any) { shard(r)["name"] = shardName(1, 0) }),
		"negative rows":              editRec(func(r map[string]any) { shard(r)["rows"] = -1 }),
		"rows that do not add up":    editRec(func(r map[string]any) { shard(r)["rows"] = shard(r)["rows"].(float64) + 1 }),
		"another task":               editRec(func(r map[string]any) { r["task"] = 3 }),
		"bad sha256":                 editRec(func(r map[string]any) { shard(r)["sha256"] = strings.Repeat("g", 64) }),
		"negative count":             editRec(func(r map[string]any) { r["stats"].(map[string]any)["records"] = -3 }),
		"resume point in a complete": editRec(func(r map[string]any) { r["resume"].(map[string]any)["record"] = 4 }),
		"truncated":                  recBytes[:len(recBytes)/3],
	} {
		os.WriteFile(recordPath(dir, 0), b, 0o644)
		_, err := readTaskRecord(dir, plan, 0)
		if err == nil || !strings.Contains(err.Error(), recordPath(dir, 0)) {
			t.Errorf("%s: the record was accepted (%v)", name, err)
		}
		if _, _, err := Merge(dir, plan, nil); err == nil {
			t.Errorf("%s: merge accepted the record", name)
		}
	}
	// A record that is a link is not followed.
	os.Remove(recordPath(dir, 0))
	os.WriteFile(filepath.Join(src, "elsewhere.json"), recBytes, 0o644)
	os.Symlink(filepath.Join(src, "elsewhere.json"), recordPath(dir, 0))
	if _, err := readTaskRecord(dir, plan, 0); err == nil {
		t.Error("a task record that is a symbolic link was read")
	}
}

// An input edited after it was planned: run-task refuses it (size or
// time), or the hash of what the task read does not match and nothing is
// recorded complete; merge checks the hashes the records hold.
func TestInputChangedAfterPlan(t *testing.T) {
	src := t.TempDir()
	text := testLines(2000)
	in := writeFile(t, src, "in.txt", text)
	for _, how := range []string{"size", "time", "same size and time"} {
		dir := t.TempDir()
		o := options(t, "gpt2", dir, in)
		os.WriteFile(in, text, 0o644)
		plan, err := Prepare(context.Background(), &o)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(in)
		switch how {
		case "size":
			os.WriteFile(in, append(bytes.Clone(text), "one more line\n"...), 0o644)
		case "time":
			os.Chtimes(in, time.Now(), st.ModTime().Add(time.Second))
		default:
			edited := bytes.Clone(text)
			copy(edited[100:], "EDITED")
			os.WriteFile(in, edited, 0o644)
			os.Chtimes(in, st.ModTime(), st.ModTime())
		}
		env, _ := NewEnv(plan, dir, o.SentenceEnd, o.NewEncoder, 2)
		_, err = RunTaskOnce(context.Background(), plan, env, plan.Tasks[0])
		if err == nil || !strings.Contains(err.Error(), in) || !strings.Contains(err.Error(), "changed") {
			t.Errorf("%s: run-task on an edited input: %v", how, err)
		}
		if rec, _ := ReadTaskRecord(dir, 0); rec != nil && rec.Complete {
			t.Errorf("%s: the task was recorded complete", how)
		}
	}
	// Merge checks what each task read against the plan.
	os.WriteFile(in, text, 0o644)
	dir := t.TempDir()
	o := options(t, "gpt2", dir, in)
	if _, err := Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	plan, _ := ReadPlan(dir)
	b, _ := os.ReadFile(recordPath(dir, 0))
	b = bytes.Replace(b, []byte(plan.Inputs[0].SHA256), []byte(strings.Repeat("0", 64)), 1)
	os.WriteFile(recordPath(dir, 0), b, 0o644)
	if _, _, err := Merge(dir, plan, nil); err == nil || !strings.Contains(err.Error(), in) {
		t.Errorf("merge of a task that read other bytes: %v", err)
	}
}

// A merge killed while it wrote the manifest leaves its temporary; the
// next merge removes it (run-task and --resume did, merge did not, so the
// temporary stayed beside the finished build).
func TestMergeRemovesStaleTemporaries(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, t.TempDir(), "in.txt", testLines(200))
	if _, err := Build(context.Background(), options(t, "gpt2", dir, in)); err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip("no true(1) to get a pid that is gone")
	}
	stale := filepath.Join(dir, strings.Replace(atomicfile.Name(sharding.ManifestName), "-"+itoa(os.Getpid())+"-", "-"+itoa(dead.Process.Pid)+"-", 1))
	if err := os.WriteFile(stale, []byte(`{"format_version": 2, "half a manif`), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := ReadPlan(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Merge(dir, plan, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Errorf("merge kept the stale temporary %s", filepath.Base(stale))
	}
}

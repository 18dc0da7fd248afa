package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/pipeline"
	"github.com/glmkit/glmkit/sharding"
)

// readmeBlock returns the fenced code block that follows <!-- test: name -->
// in the README.
func readmeBlock(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- test: " + name + " -->\\s*```[a-z]*\\n(.*?)```")
	m := re.FindSubmatch(b)
	if m == nil {
		t.Fatalf("README.md has no code block marked <!-- test: %s -->", name)
	}
	return string(m[1])
}

// shims puts glmprep (built with the test hooks) and a stand-in srun in a
// folder, and returns it and a PATH that starts with it.
func shims(t *testing.T) (string, string) {
	t.Helper()
	glmprep, err := hookedGlmprep.Path()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	os.WriteFile(filepath.Join(bin, "glmprep"), []byte("#!/bin/sh\nexec "+glmprep+" \"$@\"\n"), 0o755)
	os.WriteFile(filepath.Join(bin, "srun"), []byte("#!/bin/sh\nexec \"$@\"\n"), 0o755)
	return bin, bin + string(os.PathListSeparator) + os.Getenv("PATH")
}

func TestSlurmScript(t *testing.T) {
	script := readmeBlock(t, "slurm")
	path := filepath.Join(t.TempDir(), "glmprep-array.sbatch")
	os.WriteFile(path, []byte(script), 0o755)
	if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	// Every #SBATCH line is a real sbatch option.
	known := []string{"--job-name", "--cpus-per-task", "--mem", "--time", "--output", "--error", "--requeue", "--array",
		"--ntasks", "--nodes", "--partition", "--account", "--gres", "--mem-per-cpu", "--open-mode"}
	for _, line := range strings.Split(script, "\n") {
		if !strings.HasPrefix(line, "#SBATCH") {
			continue
		}
		opt, _, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(line, "#SBATCH")), "=")
		if !slices.Contains(known, opt) {
			t.Errorf("unknown sbatch option in %q", line)
		}
	}
	// Run it as one array task would.
	dir := t.TempDir()
	mustGlmprep(t, "plan", "--out", dir, "--quiet", "--input", "../../testdata/demo")
	_, pathEnv := shims(t)
	cmd := exec.Command("bash", path)
	cmd.Env = append(os.Environ(), "PATH="+pathEnv, "BUILD="+dir, "SLURM_ARRAY_TASK_ID=1", "SLURM_CPUS_PER_TASK=2")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the batch script: %v\n%s", err, out)
	}
	if rec, err := pipeline.ReadTaskRecord(dir, 1); err != nil || rec == nil || !rec.Complete {
		t.Fatalf("task 1 after the batch script ran: %+v %v", rec, err)
	}
}

// field is the part of the Kubernetes API schema that the README's Job
// uses: each object's known fields and their kinds.
type field struct {
	kind   string // "string", "int", "bool", "object", "array", "map", "quantity"
	fields map[string]field
	elem   *field
}

func obj(f map[string]field) field { return field{kind: "object", fields: f} }
func arr(e field) field            { return field{kind: "array", elem: &e} }

var (
	str, num  = field{kind: "string"}, field{kind: "int"}
	quantity  = field{kind: "quantity"}
	labels    = field{kind: "map"}
	meta      = obj(map[string]field{"name": str, "namespace": str, "labels": labels, "annotations": labels, "generateName": str})
	envVar    = obj(map[string]field{"name": str, "value": str})
	resList   = obj(map[string]field{"cpu": quantity, "memory": quantity, "ephemeral-storage": quantity, "nvidia.com/gpu": quantity})
	container = obj(map[string]field{"name": str, "image": str, "imagePullPolicy": str, "command": arr(str), "args": arr(str),
		"workingDir": str, "env": arr(envVar),
		"resources":    obj(map[string]field{"requests": resList, "limits": resList}),
		"volumeMounts": arr(obj(map[string]field{"name": str, "mountPath": str, "readOnly": {kind: "bool"}, "subPath": str}))})
	volume = obj(map[string]field{"name": str,
		"persistentVolumeClaim": obj(map[string]field{"claimName": str, "readOnly": {kind: "bool"}}),
		"hostPath":              obj(map[string]field{"path": str, "type": str}),
		"emptyDir":              obj(map[string]field{"medium": str, "sizeLimit": quantity})})
	podSpec = obj(map[string]field{"restartPolicy": str, "containers": arr(container), "initContainers": arr(container),
		"volumes": arr(volume), "nodeSelector": labels, "serviceAccountName": str})
	jobSchema = obj(map[string]field{"apiVersion": str, "kind": str, "metadata": meta,
		"spec": obj(map[string]field{"completionMode": str, "completions": num, "parallelism": num,
			"backoffLimit": num, "backoffLimitPerIndex": num, "maxFailedIndexes": num, "activeDeadlineSeconds": num,
			"ttlSecondsAfterFinished": num,
			"template":                obj(map[string]field{"metadata": meta, "spec": podSpec})})})
)

func checkSchema(path string, v any, f field) []string {
	var errs []string
	switch f.kind {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an object, have %T", path, v)}
		}
		for k, sub := range m {
			sf, ok := f.fields[k]
			if !ok {
				errs = append(errs, fmt.Sprintf("%s.%s: not a field of this object", path, k))
				continue
			}
			errs = append(errs, checkSchema(path+"."+k, sub, sf)...)
		}
	case "array":
		l, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want a list, have %T", path, v)}
		}
		for i, e := range l {
			errs = append(errs, checkSchema(fmt.Sprintf("%s[%d]", path, i), e, *f.elem)...)
		}
	case "map":
		if _, ok := v.(map[string]any); !ok {
			errs = append(errs, fmt.Sprintf("%s: want a map of strings", path))
		}
	case "string":
		if _, ok := v.(string); !ok {
			errs = append(errs, fmt.Sprintf("%s: want a string, have %T", path, v))
		}
	case "int":
		if _, ok := v.(int); !ok {
			errs = append(errs, fmt.Sprintf("%s: want an integer, have %T", path, v))
		}
	case "bool":
		if _, ok := v.(bool); !ok {
			errs = append(errs, fmt.Sprintf("%s: want a boolean, have %T", path, v))
		}
	case "quantity":
		s := fmt.Sprint(v)
		if !regexp.MustCompile(`^[0-9.]+(m|k|M|G|T|Ki|Mi|Gi|Ti)?$`).MatchString(s) {
			errs = append(errs, fmt.Sprintf("%s: %q is not a quantity", path, s))
		}
	}
	return errs
}

func TestKubernetesJob(t *testing.T) {
	doc := readmeBlock(t, "kubernetes")
	var job map[string]any
	if err := yaml.Unmarshal([]byte(doc), &job); err != nil {
		t.Fatalf("the Job does not parse as YAML: %v", err)
	}
	for _, e := range checkSchema("job", job, jobSchema) {
		t.Error(e)
	}
	spec := job["spec"].(map[string]any)
	pod := spec["template"].(map[string]any)["spec"].(map[string]any)
	switch {
	case job["apiVersion"] != "batch/v1" || job["kind"] != "Job":
		t.Errorf("apiVersion %v kind %v", job["apiVersion"], job["kind"])
	case spec["completionMode"] != "Indexed":
		t.Errorf("completionMode %v: glmprep takes the task from JOB_COMPLETION_INDEX, set only in Indexed mode", spec["completionMode"])
	case spec["backoffLimitPerIndex"] != nil && pod["restartPolicy"] != "Never":
		t.Errorf("backoffLimitPerIndex needs restartPolicy Never, have %v", pod["restartPolicy"])
	case spec["completions"].(int) < 1 || spec["parallelism"].(int) < 1:
		t.Errorf("completions %v parallelism %v", spec["completions"], spec["parallelism"])
	}
	c := pod["containers"].([]any)[0].(map[string]any)
	var command []string
	for _, a := range c["command"].([]any) {
		command = append(command, a.(string))
	}
	if len(command) != 3 || command[0] != "glmprep" || command[1] != "run-task" {
		t.Fatalf("container command %q", command)
	}
	mounts := c["volumeMounts"].([]any)
	if !strings.HasPrefix(command[2], mounts[0].(map[string]any)["mountPath"].(string)) {
		t.Errorf("the build directory %s is not on the mounted volume", command[2])
	}
	// Run the container's command as index 2 of the Job would.
	dir := t.TempDir()
	mustGlmprep(t, "plan", "--out", dir, "--quiet", "--input", "../../testdata/demo")
	bin, pathEnv := shims(t)
	cmd := exec.Command(filepath.Join(bin, command[0]), append(command[1:2], dir)...)
	cmd.Env = append(os.Environ(), "PATH="+pathEnv, "JOB_COMPLETION_INDEX=2")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	if rec, err := pipeline.ReadTaskRecord(dir, 2); err != nil || rec == nil || !rec.Complete {
		t.Fatalf("task 2 after the Job's command ran: %+v %v", rec, err)
	}
}

// The README's Arrow JS and nodejs-polars snippets run as written, from a
// directory that holds the Quick start's out/demo, and print shard 0's
// first row and objective counts as the Go reader reads them.
func TestReadmeJSSnippets(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed (.ci/run installs it)")
	}
	modules, _ := filepath.Abs("../../testdata/js/node_modules")
	if _, err := os.Stat(filepath.Join(modules, "nodejs-polars-linux-x64-gnu")); err != nil {
		t.Skip("testdata/js/node_modules is not installed (.ci/run runs npm ci)")
	}
	work := t.TempDir()
	mustGlmprep(t, "build", "--input", "../../testdata/demo", "--out", filepath.Join(work, "out", "demo"), "--quiet")
	r, err := sharding.Open(filepath.Join(work, "out", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var s masking.Sample
	if err := r.Sample(0, &s); err != nil {
		t.Fatal(err)
	}
	s0 := s.Objective
	var first []string
	for _, id := range s.Input[:10] {
		first = append(first, strconv.Itoa(int(id)))
	}
	counts := map[string]int{}
	rows := r.Manifest().Shards[0].Rows
	for i := range rows {
		if err := r.Sample(i, &s); err != nil {
			t.Fatal(err)
		}
		counts[s.Objective.String()]++
	}
	numbers := regexp.MustCompile(`\d+`)
	for _, name := range []string{"arrow-js", "polars-js"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(work, name+".js")
			os.WriteFile(path, []byte(readmeBlock(t, name)), 0o644)
			cmd := exec.Command("node", path)
			cmd.Dir = work
			cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("node: %v\n%s", err, out)
			}
			_, ids, ok := strings.Cut(string(out), "row 0 starts")
			if _, after, found := strings.Cut(ids, "["); found { // Uint16Array(10) [ 101, … ]
				ids = after
			}
			if got := numbers.FindAllString(ids, -1); !ok || strings.Join(got, " ") != strings.Join(first, " ") {
				t.Errorf("the snippet printed\n%s\nwant row 0 to start %v", out, first)
			}
			if name == "arrow-js" && !strings.HasPrefix(string(out), fmt.Sprintf("%d rows; %s row 0", rows, s0)) {
				t.Errorf("arrow-js printed %q, want %d rows", out, rows)
			}
			if name == "polars-js" {
				for o, n := range counts {
					if !regexp.MustCompile(`│ ` + o + ` +┆ ` + strconv.Itoa(n) + ` +│`).Match(out) {
						t.Errorf("polars-js printed\n%s\nwant %s with %d rows", out, o, n)
					}
				}
			}
		})
	}
}

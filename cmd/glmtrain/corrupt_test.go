package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/sharding"
)

func copyBuild(t *testing.T, src string) string { return glmtest.CopyFiles(t, src, t.TempDir()) }

// glmtrain train and eval read through the checked loader: a damaged shard
// or an edited manifest stops them with an error naming the file, before
// a step is trained or scored on it.
func TestTrainAndEvalRefuseCorruptShards(t *testing.T) {
	data := t.TempDir()
	buildShards(t, data, 64, [3]float64{0.4, 0.3, 0.3}, "../../testdata/demo/shakespeare.txt")
	m, err := sharding.ReadManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	ckpt := t.TempDir()
	common := []string{"--preset", "tiny", "--batch", "4", "--quiet", "--backend", "cpu"}
	if _, err := glmtrain(t, append([]string{"train", "--data", data, "--steps", "1", "--out", ckpt}, common...)...); err != nil {
		t.Fatal(err)
	}
	name := m.Shards[0].Name
	for _, d := range []struct {
		what   string
		damage func(dir string)
		want   string
	}{
		{"bit flip", func(dir string) {
			p := filepath.Join(dir, name)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o644)
		}, name},
		{"truncation", func(dir string) {
			p := filepath.Join(dir, name)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-8], 0o644)
		}, name},
		{"edited manifest", func(dir string) {
			p := filepath.Join(dir, sharding.ManifestName)
			var j map[string]any
			b, _ := os.ReadFile(p)
			json.Unmarshal(b, &j)
			j["shards"].([]any)[0].(map[string]any)["sha256"] = strings.Repeat("1", 64)
			b, _ = json.Marshal(j)
			os.WriteFile(p, b, 0o644)
		}, sharding.ManifestName},
	} {
		t.Run(d.what, func(t *testing.T) {
			dir := copyBuild(t, data)
			d.damage(dir)
			_, err := glmtrain(t, append([]string{"train", "--data", dir, "--steps", "40", "--out", t.TempDir()}, common...)...)
			if err == nil || !strings.Contains(err.Error(), d.want) {
				t.Errorf("train on a build with a %s: %v; want an error naming %s", d.what, err, d.want)
			}
			_, err = glmtrain(t, "eval", "--ckpt", ckpt, "--data", dir, "--backend", "cpu")
			if err == nil || !strings.Contains(err.Error(), d.want) {
				t.Errorf("eval on a build with a %s: %v; want an error naming %s", d.what, err, d.want)
			}
		})
	}
}

// The committed format 1 build (made by glmkit before format 2) still
// trains and evaluates, alone and mixed with a format 2 build.
func TestTrainOnFormat1Build(t *testing.T) {
	v1 := filepath.Join("..", "..", "testdata", "v1-build")
	out := t.TempDir()
	if _, err := glmtrain(t, "train", "--data", v1, "--preset", "tiny", "--steps", "3", "--batch", "4", "--quiet", "--backend", "cpu", "--out", out); err != nil {
		t.Fatal(err)
	}
	ms := readMetrics(t, out)
	if len(ms) != 3 {
		t.Fatalf("%d metric lines; want 3", len(ms))
	}
	if _, err := glmtrain(t, "eval", "--ckpt", out, "--data", v1, "--backend", "cpu"); err != nil {
		t.Fatal(err)
	}
	v2 := t.TempDir()
	buildShards(t, v2, 128, [3]float64{1, 1, 1}, "../../testdata/demo/c4-sample.jsonl.gz")
	if _, err := glmtrain(t, "train", "--data", v1+"=0.5,"+v2+"=0.5", "--preset", "tiny", "--steps", "2", "--batch", "4", "--quiet", "--backend", "cpu", "--out", t.TempDir()); err != nil {
		t.Fatalf("a mixture of a format 1 and a format 2 build: %v", err)
	}
}

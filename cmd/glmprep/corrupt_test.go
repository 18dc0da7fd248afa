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

// damage is one way a build directory goes bad after glmprep wrote it.
type damage struct {
	name  string
	apply func(t *testing.T, dir, other string, m *sharding.Manifest)
	want  string // a fragment every error must contain (a file name)
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// flipAt flips one bit of the second shard at a fraction of its length.
func flipAt(frac float64) func(t *testing.T, dir, other string, m *sharding.Manifest) {
	return flipByte(func(n int) int { return int(frac * float64(n-1)) })
}

// flipByte flips one bit of the second shard at the offset at(size) gives.
func flipByte(at func(n int) int) func(t *testing.T, dir, other string, m *sharding.Manifest) {
	return func(t *testing.T, dir, other string, m *sharding.Manifest) {
		p := filepath.Join(dir, m.Shards[1].Name)
		b := glmtest.ReadFile(t, p)
		b[at(len(b))] ^= 0x08
		writeFile(t, p, b)
	}
}

// editManifest edits the manifest's JSON as a person with a text editor
// would: the checksum is left as it was.
func editManifest(edit func(m map[string]any)) func(t *testing.T, dir, other string, m *sharding.Manifest) {
	return func(t *testing.T, dir, other string, _ *sharding.Manifest) {
		p := filepath.Join(dir, sharding.ManifestName)
		var m map[string]any
		if err := json.Unmarshal(glmtest.ReadFile(t, p), &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, b)
	}
}

func shardEntry(m map[string]any, i int) map[string]any {
	return m["shards"].([]any)[i].(map[string]any)
}

// damages are the classes of corrupt shards and edited manifests that every
// read path must catch: truncated, bit-flipped, swapped and replaced
// shards, and manifests edited by hand.
func damages() []damage {
	shard1 := "shard-000001-0000.arrow"
	return []damage{
		{"truncated by one byte", func(t *testing.T, dir, other string, m *sharding.Manifest) {
			p := filepath.Join(dir, m.Shards[1].Name)
			writeFile(t, p, glmtest.ReadFile(t, p)[:m.Shards[1].Bytes-1])
		}, shard1},
		{"truncated to half", func(t *testing.T, dir, other string, m *sharding.Manifest) {
			p := filepath.Join(dir, m.Shards[1].Name)
			writeFile(t, p, glmtest.ReadFile(t, p)[:m.Shards[1].Bytes/2])
		}, shard1},
		{"emptied", func(t *testing.T, dir, other string, m *sharding.Manifest) {
			writeFile(t, filepath.Join(dir, m.Shards[1].Name), nil)
		}, shard1},
		{"bit flip in the schema", flipByte(func(int) int { return 300 }), shard1},
		{"bit flip in the schema metadata", flipByte(func(int) int { return 900 }), shard1},
		{"bit flip in a token", flipAt(0.3), shard1},
		{"bit flip in the positions", flipAt(0.7), shard1},
		{"bit flip in the footer", flipByte(func(n int) int { return n - 100 }), shard1},
		{"bit flip in the last byte", flipByte(func(n int) int { return n - 1 }), shard1},
		{"shards swapped", func(t *testing.T, dir, other string, m *sharding.Manifest) {
			a, b := filepath.Join(dir, m.Shards[0].Name), filepath.Join(dir, m.Shards[1].Name)
			ba, bb := glmtest.ReadFile(t, a), glmtest.ReadFile(t, b)
			writeFile(t, a, bb)
			writeFile(t, b, ba)
		}, "shard-00000"},
		{"replaced by another build's shard", func(t *testing.T, dir, other string, m *sharding.Manifest) {
			writeFile(t, filepath.Join(dir, m.Shards[1].Name), glmtest.ReadFile(t, filepath.Join(other, m.Shards[1].Name)))
		}, shard1},
		{"replaced by another build's shard of the same size", func(t *testing.T, dir, other string, m *sharding.Manifest) {
			b := glmtest.ReadFile(t, filepath.Join(other, m.Shards[1].Name))
			n := int(m.Shards[1].Bytes)
			if len(b) >= n {
				b = b[:n]
			} else {
				b = append(b, make([]byte, n-len(b))...)
			}
			writeFile(t, filepath.Join(dir, m.Shards[1].Name), b)
		}, shard1},
		{"manifest: wrong sha256", editManifest(func(m map[string]any) {
			shardEntry(m, 1)["sha256"] = strings.Repeat("0", 64)
		}), sharding.ManifestName},
		{"manifest: wrong row count", editManifest(func(m map[string]any) {
			e := shardEntry(m, 1)
			e["rows"] = e["rows"].(float64) + 1
			tot := m["totals"].(map[string]any)
			tot["rows"] = tot["rows"].(float64) + 1
		}), sharding.ManifestName},
		{"manifest: wrong token count", editManifest(func(m map[string]any) {
			shardEntry(m, 0)["tokens"] = shardEntry(m, 0)["tokens"].(float64) - 5
		}), sharding.ManifestName},
		{"manifest: wrong totals", editManifest(func(m map[string]any) {
			tot := m["totals"].(map[string]any)
			tot["loss_tokens"] = tot["loss_tokens"].(float64) * 2
		}), sharding.ManifestName},
		{"manifest: checksum removed", editManifest(func(m map[string]any) {
			delete(m, "checksum")
		}), sharding.ManifestName},
		{"manifest: a shard outside the directory", editManifest(func(m map[string]any) {
			shardEntry(m, 1)["name"] = "../" + shard1
		}), sharding.ManifestName},
		{"shard: a link out of the directory", func(t *testing.T, dir, other string, m *sharding.Manifest) {
			p := filepath.Join(dir, m.Shards[1].Name)
			outside := filepath.Join(t.TempDir(), "elsewhere.arrow")
			writeFile(t, outside, glmtest.ReadFile(t, p))
			os.Remove(p)
			if err := os.Symlink(outside, p); err != nil {
				t.Fatal(err)
			}
		}, shard1},
	}
}

// buildPair builds the demo corpus twice, with two seeds, into fresh
// directories: the build to damage and another to take shards from.
func buildPair(t *testing.T) (build, other string) {
	t.Helper()
	build, other = t.TempDir(), t.TempDir()
	mustGlmprep(t, "build", "--out", build, "--quiet", "--input", "../../testdata/demo", "--seq-len", "128")
	mustGlmprep(t, "build", "--out", other, "--quiet", "--input", "../../testdata/demo", "--seq-len", "128", "--seed", "7")
	return build, other
}

// copyDir copies a build directory's files (not its tasks/).
func copyDir(t *testing.T, src string) string { return glmtest.CopyFiles(t, src, t.TempDir()) }

// Every read-side command of glmprep catches every kind of damage, with an
// error that names the damaged file.
func TestCorruptBuildsAreCaught(t *testing.T) {
	build, other := buildPair(t)
	m, err := sharding.ReadManifest(build)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Shards) < 2 {
		t.Fatalf("the demo build has %d shards; the test damages the second", len(m.Shards))
	}
	for _, cmd := range [][]string{{"verify"}, {"inspect"}, {"stats"}, {"stats", "--json"}, {"bench-load", "--seconds", "0.3"}} {
		if _, _, err := glmprep(t, append(cmd, build)...); err != nil {
			t.Fatalf("glmprep %v on the intact build: %v", cmd, err)
		}
	}
	for _, d := range damages() {
		t.Run(d.name, func(t *testing.T) {
			dir := copyDir(t, build)
			d.apply(t, dir, other, m)
			for _, cmd := range [][]string{{"verify"}, {"inspect"}, {"stats"}, {"bench-load", "--seconds", "0.3"}} {
				_, _, err := glmprep(t, append(cmd, dir)...)
				if err == nil {
					t.Errorf("glmprep %v succeeded on a build with %s", cmd, d.name)
					continue
				}
				if !strings.Contains(err.Error(), d.want) {
					t.Errorf("glmprep %v: error %q does not name %s", cmd, err, d.want)
				}
			}
		})
	}
}

// inspect --check shown reads only the shards of the rows it shows; a
// damaged shard elsewhere is left to verify, stats and the loader.
func TestInspectCheckShown(t *testing.T) {
	build, _ := buildPair(t)
	m, err := sharding.ReadManifest(build)
	if err != nil {
		t.Fatal(err)
	}
	flipAt(0.3)(t, build, "", m)
	if _, _, err := glmprep(t, "inspect", build, "--rows", "1", "--check", "shown"); err != nil {
		t.Errorf("inspect --check shown of row 0 with shard 1 damaged: %v", err)
	}
	if _, _, err := glmprep(t, "inspect", build, "--rows", "1", "--start", "200", "--check", "shown"); err == nil {
		t.Errorf("inspect --check shown of a row of the damaged shard succeeded")
	}
	if _, _, err := glmprep(t, "inspect", build, "--rows", "1"); err == nil || !strings.Contains(err.Error(), m.Shards[1].Name) {
		t.Errorf("inspect of a damaged build: %v", err)
	}
}

// A build of zero rows does not verify unless it was meant to be empty.
func TestVerifyEmptyBuild(t *testing.T) {
	in := filepath.Join(t.TempDir(), "blank.txt")
	writeFile(t, in, []byte("\n\n\n"))
	dir := t.TempDir()
	// glmprep build itself may refuse a build of no rows unless
	// --allow-empty is given; either way it leaves a manifest to verify.
	if _, _, err := glmprep(t, "build", "--input", in, "--out", dir, "--quiet"); err != nil {
		dir = t.TempDir()
		if _, _, err := glmprep(t, "build", "--input", in, "--out", dir, "--quiet", "--allow-empty"); err != nil {
			t.Fatalf("glmprep build --allow-empty of blank input: %v", err)
		}
	}
	setAllowEmpty := func(allow bool) {
		resealed(t, dir, func(m *sharding.Manifest) *json.RawMessage { return &m.Config }, func(cfg map[string]any) { cfg["allow_empty"] = allow })
	}
	setAllowEmpty(false)
	_, _, err := glmprep(t, "verify", dir)
	if err == nil || !strings.Contains(err.Error(), "no rows") || !strings.Contains(err.Error(), "blank") {
		t.Errorf("verify of an empty build: %v; want an error saying it has no rows, all records blank", err)
	}
	setAllowEmpty(true)
	if out, _, err := glmprep(t, "verify", dir); err != nil || !strings.Contains(out, "OK") {
		t.Errorf("verify of an empty build marked allow_empty: %v %s", err, out)
	}
}

// The committed format 1 build (made by glmkit before format 2) still
// opens, verifies, inspects and loads, and a mixture combines it with a
// format 2 build.
func TestFormat1BuildStillReads(t *testing.T) {
	v1 := filepath.Join("..", "..", "testdata", "v1-build")
	for _, cmd := range [][]string{{"verify"}, {"inspect", "--rows", "2"}, {"stats"}, {"bench-load", "--seconds", "0.2"}} {
		out, _, err := glmprep(t, append(cmd, v1)...)
		if err != nil {
			t.Fatalf("glmprep %v on the format 1 build: %v", cmd, err)
		}
		if cmd[0] == "verify" && !strings.Contains(out, "format 1") {
			t.Errorf("verify: %s", out)
		}
	}
	// A damaged format 1 shard is caught by its sha256 on first read.
	dir := copyDir(t, v1)
	m, err := sharding.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	flipAt(0.5)(t, dir, "", m)
	for _, cmd := range [][]string{{"verify"}, {"inspect"}, {"stats"}, {"bench-load", "--seconds", "0.2"}} {
		if _, _, err := glmprep(t, append(cmd, dir)...); err == nil || !strings.Contains(err.Error(), m.Shards[1].Name) {
			t.Errorf("glmprep %v on a damaged format 1 build: %v", cmd, err)
		}
	}
}

// verify checks the stats' counts as stats does: a manifest whose
// per-objective rows were edited (and sealed again) does not verify.
func TestVerifyChecksStatsCounts(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := glmprep(t, "build", "--input", "../../testdata/demo/shakespeare.txt", "--out", dir, "--quiet", "--seq-len", "64"); err != nil {
		t.Fatal(err)
	}
	resealed(t, dir, func(m *sharding.Manifest) *json.RawMessage { return &m.Stats }, func(stats map[string]any) {
		objs := stats["objectives"].(map[string]any)
		tok, doc := objs["token"].(map[string]any), objs["document"].(map[string]any)
		tok["rows"], doc["rows"] = tok["rows"].(float64)-1, doc["rows"].(float64)+1
	})
	if _, _, err := glmprep(t, "verify", dir); err == nil || !strings.Contains(err.Error(), "token rows; the manifest says") {
		t.Errorf("verify of a manifest with edited objective rows: %v", err)
	}
	// The masked tokens of an objective (stats' "masked %") are counted
	// from the rows too.
	resealed(t, dir, func(m *sharding.Manifest) *json.RawMessage { return &m.Stats }, func(stats map[string]any) {
		objs := stats["objectives"].(map[string]any)
		tok, doc := objs["token"].(map[string]any), objs["document"].(map[string]any)
		tok["rows"], doc["rows"] = tok["rows"].(float64)+1, doc["rows"].(float64)-1
		tok["masked_tokens"] = tok["masked_tokens"].(float64) + 3
	})
	for _, cmd := range []string{"verify", "stats"} {
		if _, _, err := glmprep(t, cmd, dir); err == nil || !strings.Contains(err.Error(), "token masked tokens; the manifest says") {
			t.Errorf("%s of a manifest with edited masked tokens: %v", cmd, err)
		}
	}
}

// resealed edits a JSON object of dir's manifest (which picks, edited by
// edit) and writes the manifest again with a checksum that fits: an edit
// only the shards' sha256 and counts can catch.
func resealed(t *testing.T, dir string, which func(*sharding.Manifest) *json.RawMessage, edit func(map[string]any)) {
	t.Helper()
	m, err := sharding.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(*which(m), &obj); err != nil {
		t.Fatal(err)
	}
	edit(obj)
	if *which(m), err = json.Marshal(obj); err != nil {
		t.Fatal(err)
	}
	if err := sharding.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
}

package sharding

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/internal/glmtest"
)

var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false, "rewrite testdata/fuzz/FuzzOpen and FuzzManifest from fresh small builds")

// smallShard writes a 5-row shard in record batches of 2 rows and returns
// its bytes and manifest.
func smallShard(t testing.TB) ([]byte, *Manifest) {
	t.Helper()
	dir := t.TempDir()
	m := writeBuild(t, dir, glmtest.Rows(t, 5), 5, Options{BatchRows: 2})
	data, err := os.ReadFile(filepath.Join(dir, m.Shards[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	return data, m
}

// damaged returns truncated and bit-flipped copies of data.
func damaged(data []byte) map[string][]byte {
	out := map[string][]byte{"original": data}
	for _, n := range []int{0, 7, 64, len(data) / 2, len(data) - 10, len(data) - 1} {
		out[fmt.Sprintf("truncated-%d", n)] = data[:n]
	}
	for _, at := range []int{9, 100, len(data) / 2, len(data) * 2 / 3, len(data) - 40, len(data) - 8} {
		b := bytes.Clone(data)
		b[at] ^= 0x40
		out[fmt.Sprintf("flipped-%d", at)] = b
	}
	return out
}

// FuzzOpen opens a build whose one shard holds the fuzzed bytes, with a
// manifest describing the real shard (but the fuzzed size): every error
// must name the file, nothing may panic, and since the checksums cover
// every byte, Open, Row or Check must fail unless the bytes are the real
// shard's, as Open with VerifyHashes must.
func FuzzOpen(f *testing.F) {
	orig, m := smallShard(f)
	for _, b := range damaged(orig) {
		f.Add(b)
	}
	name := m.Shards[0].Name
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		man := *m
		man.Shards = []ShardFile{m.Shards[0]}
		man.Shards[0].Bytes = max(int64(len(data)), 16) // let the parser see every length
		man.Sum()
		writeJSON(t, filepath.Join(dir, ManifestName), &man)

		same := bytes.Equal(data, orig)
		failed := false
		named := func(what string, err error) {
			t.Helper()
			if err == nil {
				return
			}
			failed = true
			if same {
				t.Fatalf("%s of the real shard: %v", what, err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("%s error does not name %s: %v", what, path, err)
			}
		}
		r, err := Open(dir)
		named("Open", err)
		if err == nil {
			for i := range r.Len() {
				v, err := r.Row(i)
				named(fmt.Sprintf("Row(%d)", i), err)
				if err == nil && (v.Target.Len() != v.Len() || v.LossMask.Len() != v.Len() || v.Pos.Len() != v.Len() || v.BlockPos.Len() != v.Len()) {
					t.Fatalf("Row(%d): column lengths differ", i)
				}
			}
			_, err := r.Check(context.Background())
			named("Check", err)
			_, err = r.Verify(context.Background())
			named("Verify", err)
			r.Close()
		}
		if !same && !failed {
			t.Fatalf("%d bytes that differ from the real shard's %d were read without an error", len(data), len(orig))
		}

		man.Shards[0].Bytes = m.Shards[0].Bytes
		man.Sum()
		writeJSON(t, filepath.Join(dir, ManifestName), &man)
		r, err = Open(dir, VerifyHashes())
		if err == nil {
			r.Close()
		}
		if same != (err == nil) {
			t.Fatalf("Open with VerifyHashes = %v for bytes that are the real shard: %v", err, same)
		}
		if err != nil && !strings.Contains(err.Error(), path) {
			t.Fatalf("Open error does not name %s: %v", path, err)
		}
	})
}

// editedManifests returns the JSON of m edited in the ways a person or a
// damaged disk might: each must be refused.
func editedManifests(t testing.TB, m *Manifest) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	add := func(name string, edit func(m *Manifest), reseal bool) {
		c := *m
		c.Shards = append([]ShardFile(nil), m.Shards...)
		for i := range c.Shards {
			if cs := c.Shards[i].Checksums; cs != nil {
				cc := *cs
				cc.Batches = append([]string(nil), cs.Batches...)
				c.Shards[i].Checksums = &cc
			}
		}
		edit(&c)
		if reseal {
			sum, err := c.seal()
			if err != nil {
				t.Fatal(err)
			}
			c.Checksum = sum
		}
		b, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	for _, reseal := range []bool{false, true} {
		suffix := ""
		if reseal {
			suffix = "-resealed"
		}
		add("sha256"+suffix, func(m *Manifest) { m.Shards[0].SHA256 = strings.Repeat("ab", 32) }, reseal)
		add("rows"+suffix, func(m *Manifest) { m.Shards[0].Rows++; m.Sum() }, reseal)
		add("tokens"+suffix, func(m *Manifest) { m.Shards[0].Tokens--; m.Sum() }, reseal)
		add("totals"+suffix, func(m *Manifest) { m.Totals.LossTokens++ }, reseal)
		add("dotdot"+suffix, func(m *Manifest) { m.Shards[0].Name = "../shard-000000-0000.arrow" }, reseal)
		add("absolute"+suffix, func(m *Manifest) { m.Shards[0].Name = "/etc/passwd" }, reseal)
		add("subdir"+suffix, func(m *Manifest) { m.Shards[0].Name = "tasks/x.arrow" }, reseal)
		add("negative"+suffix, func(m *Manifest) { m.Shards[0].Rows = -5; m.Sum() }, reseal)
		add("huge"+suffix, func(m *Manifest) { m.Shards[0].Tokens = 1 << 62; m.Sum() }, reseal)
		add("vocab"+suffix, func(m *Manifest) { m.Meta.VocabSize = -1 }, reseal)
		add("special"+suffix, func(m *Manifest) { m.Meta.Special.SOP = 1 << 30 }, reseal)
		add("epochs"+suffix, func(m *Manifest) { m.Meta.MaskEpochs = 0 }, reseal)
		add("format"+suffix, func(m *Manifest) { m.FormatVersion = 9; m.Meta.FormatVersion = 9 }, reseal)
		add("checksum"+suffix, func(m *Manifest) { m.Shards[0].Checksums.Batches[0] = "0123456789abcdef" }, reseal)
		add("no-checksums"+suffix, func(m *Manifest) { m.Shards[0].Checksums = nil }, reseal)
	}
	add("unsealed", func(m *Manifest) { m.Checksum = "" }, false)
	return out
}

// FuzzManifest parses fuzzed manifest bytes, resealed so that the checks
// past the checksum are reached too, and opens a build with them: nothing
// may panic, every error must name the manifest or a shard, and a manifest
// that is accepted names its shards inside the directory and sums to its
// totals.
func FuzzManifest(f *testing.F) {
	dir := f.TempDir()
	m := writeBuild(f, dir, glmtest.Rows(f, 12), 5, Options{BatchRows: 2})
	orig, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(orig, false)
	for _, b := range editedManifests(f, m) {
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, reseal bool) {
		if reseal {
			var c Manifest
			if json.Unmarshal(data, &c) != nil {
				return
			}
			sum, err := c.seal()
			if err != nil {
				return
			}
			c.Checksum = sum
			if data, err = json.Marshal(&c); err != nil {
				t.Fatal(err)
			}
		}
		pm, err := ParseManifest(data)
		if err != nil {
			return
		}
		for _, s := range pm.Shards {
			if !filepath.IsLocal(s.Name) || strings.ContainsAny(s.Name, `/\`) || s.Rows < 1 || s.Tokens < s.Rows {
				t.Fatalf("accepted shard entry %+v", s)
			}
		}
		if sumShards(pm.Shards) != pm.Totals {
			t.Fatalf("accepted totals %+v for shards summing to %+v", pm.Totals, sumShards(pm.Shards))
		}
		// Open it against the real shards.
		d := t.TempDir()
		for _, s := range m.Shards {
			if err := os.Symlink(filepath.Join(dir, s.Name), filepath.Join(d, s.Name)); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(d, ManifestName), data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(d)
		if err != nil {
			if !strings.Contains(err.Error(), d) {
				t.Fatalf("Open error does not name the build: %v", err)
			}
			return
		}
		defer r.Close()
		if _, err := r.Check(context.Background()); err != nil && !strings.Contains(err.Error(), d) {
			t.Fatalf("Check error does not name the build: %v", err)
		}
	})
}

// writeJSON writes a manifest with its checksum, without WriteManifest's
// fsyncs, which would dominate a fuzzing run.
func writeJSON(t testing.TB, path string, m *Manifest) {
	t.Helper()
	sum, err := m.seal()
	if err != nil {
		t.Fatal(err)
	}
	m.Checksum = sum
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWriteFuzzSeeds rewrites the committed seed corpora of FuzzOpen and
// FuzzManifest when run with -write-fuzz-seeds.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeFuzzSeeds {
		t.Skip("run with -write-fuzz-seeds to rewrite testdata/fuzz/FuzzOpen")
	}
	orig, _ := smallShard(t)
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range damaged(orig) {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// FuzzManifest's seeds are the edits of a real manifest, as written,
	// and resealed.
	mdir := t.TempDir()
	m := writeBuild(t, mdir, glmtest.Rows(t, 12), 5, Options{BatchRows: 2})
	dir = filepath.Join("testdata", "fuzz", "FuzzManifest")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range editedManifests(t, m) {
		for _, reseal := range []bool{false, true} {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\nbool(%v)\n", strconv.Quote(string(b)), reseal)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%v", name, reseal)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

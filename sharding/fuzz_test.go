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
)

var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false, "rewrite testdata/fuzz/FuzzOpen from a fresh small shard")

// smallShard writes a 5-row shard in record batches of 2 rows and returns
// its bytes and manifest.
func smallShard(t testing.TB) ([]byte, *Manifest) {
	t.Helper()
	dir := t.TempDir()
	m := writeBuild(t, dir, testRows(t, 5), 5, Options{BatchRows: 2})
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
// manifest describing the real shard: Open must fail with an error naming
// the file, or succeed and serve rows without panicking; with
// VerifyHashes it must fail unless the bytes are the real shard's.
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
		man.Shards[0].Bytes = 0 // unknown: let the parser see every length
		writeJSON(t, filepath.Join(dir, ManifestName), &man)

		same := bytes.Equal(data, orig)
		r, err := Open(dir)
		switch {
		case err != nil && same:
			t.Fatalf("Open of the real shard: %v", err)
		case err != nil:
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("Open error does not name %s: %v", path, err)
			}
		default:
			for i := range r.Len() {
				v, err := r.Row(i)
				if err != nil {
					t.Fatalf("Row(%d): %v", i, err)
				}
				if len(v.Target) != len(v.Input) || len(v.LossMask) != len(v.Input) || len(v.Pos) != len(v.Input) || len(v.BlockPos) != len(v.Input) {
					t.Fatalf("Row(%d): column lengths differ", i)
				}
			}
			err := r.Verify(context.Background())
			if same && err != nil {
				t.Fatalf("Verify of the real shard: %v", err)
			}
			if err != nil && !strings.Contains(err.Error(), path) {
				t.Fatalf("Verify error does not name %s: %v", path, err)
			}
			r.Close()
		}

		man.Shards[0].Bytes = m.Shards[0].Bytes
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

// writeJSON writes a manifest without WriteManifest's fsyncs, which would
// dominate a fuzzing run.
func writeJSON(t *testing.T, path string, m *Manifest) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWriteFuzzSeeds rewrites the committed seed corpus of FuzzOpen when
// run with -write-fuzz-seeds.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeFuzzSeeds {
		t.Skip("run with -write-fuzz-seeds to rewrite testdata/fuzz/FuzzOpen")
	}
	orig, _ := smallShard(t)
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range damaged(orig) {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

package sharding

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/masking"
)

// writeBuild writes rows as a build directory: shards of perShard rows
// (record batches of batchRows) and a manifest. Row i gets doc id i<<3.
func writeBuild(t testing.TB, dir string, rows []masking.Sample, perShard int, opts Options) *Manifest {
	t.Helper()
	if opts.Meta.FormatVersion == 0 {
		opts.Meta = testMeta()
	}
	w, err := Create(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	m := &Manifest{FormatVersion: opts.Meta.FormatVersion, Meta: opts.Meta, Config: []byte("{}"), Stats: []byte("{}"),
		Shards: glmtest.WriteShards(t, w, rows, perShard, func(i int) uint64 { return uint64(i) << 3 })}
	m.Sum()
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustOpen(t testing.TB, dir string, opts ...OpenOption) *Reader {
	t.Helper()
	r, err := Open(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func equalRow(v RowView, s *masking.Sample, docID uint64) error {
	var got masking.Sample
	v.sample(&got)
	if v.DocID != docID {
		return fmt.Errorf("doc_id %d, want %d", v.DocID, docID)
	}
	return equalSample(&got, s)
}

func equalSample(got, s *masking.Sample) error {
	switch {
	case !slices.Equal(got.Input, s.Input):
		return errors.New("input differs")
	case !slices.Equal(got.Target, s.Target):
		return errors.New("target differs")
	case !slices.Equal(got.LossMask, s.LossMask):
		return errors.New("loss mask differs")
	case !slices.Equal(got.Pos, s.Pos):
		return errors.New("positions differ")
	case !slices.Equal(got.BlockPos, s.BlockPos):
		return errors.New("block positions differ")
	case got.Sep != s.Sep:
		return fmt.Errorf("sep %d, want %d", got.Sep, s.Sep)
	case got.Objective != s.Objective:
		return fmt.Errorf("objective %v, want %v", got.Objective, s.Objective)
	case got.NSource != s.NSource:
		return fmt.Errorf("n_source %d, want %d", got.NSource, s.NSource)
	}
	return nil
}

func TestReaderRoundTrip(t *testing.T) {
	rows := glmtest.Rows(t, 900)
	var seen [masking.NumObjectives]int
	for _, s := range rows {
		seen[s.Objective]++
	}
	for o, n := range seen {
		if n == 0 {
			t.Fatalf("no %v rows in the test data", masking.Objective(o))
		}
	}
	for _, comp := range []string{"none", "zstd", "lz4"} {
		t.Run(comp, func(t *testing.T) {
			dir := t.TempDir()
			writeBuild(t, dir, rows, 350, Options{Compression: comp, BatchRows: 128})
			r := mustOpen(t, dir, VerifyHashes())
			if r.Len() != int64(len(rows)) {
				t.Fatalf("Len() = %d; want %d", r.Len(), len(rows))
			}
			if got, want := r.Mapped(), comp == "none"; got != want {
				t.Errorf("Mapped() = %v; want %v", got, want)
			}
			for i := range rows {
				v, err := r.Row(int64(i))
				if err != nil {
					t.Fatal(err)
				}
				if err := equalRow(v, &rows[i], uint64(i)<<3); err != nil {
					t.Fatalf("Row(%d): %v", i, err)
				}
			}
			var s masking.Sample
			for _, i := range []int64{0, 349, 350, 899} {
				if err := r.Sample(i, &s); err != nil {
					t.Fatal(err)
				}
				if err := equalSample(&s, &rows[i]); err != nil {
					t.Fatalf("Sample(%d): %v", i, err)
				}
			}
			if _, err := r.Verify(context.Background()); err != nil {
				t.Fatal(err)
			}
			if name, local, err := r.Locate(700); err != nil || name != "shard-000002-0000.arrow" || local != 0 {
				t.Errorf("Locate(700) = %q, %d, %v; want shard-000002-0000.arrow, 0, nil", name, local, err)
			}
			if _, err := r.Row(int64(len(rows))); err == nil {
				t.Error("Row(Len()) did not fail")
			}
			if _, err := r.Row(-1); err == nil {
				t.Error("Row(-1) did not fail")
			}
		})
	}
}

// TestRowAliasesMapping checks that Row's views point into the shard's
// mapping and that Row allocates nothing.
func TestRowAliasesMapping(t *testing.T) {
	rows := glmtest.Rows(t, 300)
	for _, format := range []int{1, 2} {
		dir := t.TempDir()
		opts := Options{BatchRows: 64, Meta: testMeta()}
		opts.Meta.FormatVersion = format
		writeBuild(t, dir, rows, 100, opts)
		r := mustOpen(t, dir)
		if !r.Mapped() {
			t.Fatal("Mapped() = false for uncompressed shards")
		}
		for i := int64(0); i < r.Len(); i++ {
			v, err := r.Row(i)
			if err != nil {
				t.Fatal(err)
			}
			_, local, _ := r.Locate(i)
			data := r.shards[r.shardOf(i)].data
			lo := uintptr(unsafe.Pointer(&data[0]))
			hi := lo + uintptr(len(data))
			width := uintptr(2)
			if format == 1 {
				width = 4
			}
			loss := unsafe.Pointer(unsafe.SliceData(v.LossMask.u8))
			lossEnd := uintptr(loss) + uintptr(v.Len())
			if format == 2 {
				loss = unsafe.Pointer(unsafe.SliceData(v.LossMask.bits))
				lossEnd = uintptr(loss) + uintptr(len(v.LossMask.bits))
			}
			for name, c := range map[string]Ints{"input": v.Input, "target": v.Target, "pos": v.Pos, "block": v.BlockPos} {
				p := uintptr(c.ptr())
				if end := p + uintptr(c.Len())*width; p < lo || end > hi {
					t.Fatalf("format %d row %d (shard row %d) %s at %#x..%#x, outside the mapping %#x..%#x", format, i, local, name, p, end, lo, hi)
				}
			}
			if uintptr(loss) < lo || lossEnd > hi {
				t.Fatalf("format %d row %d: loss mask outside the mapping", format, i)
			}
			// What Prefetch hints at is the row's own loss mask bytes.
			sp := v.LossMask.bytes()
			if p := uintptr(unsafe.Pointer(unsafe.SliceData(sp))); len(sp) > 0 && (p < lo || p+uintptr(len(sp)) > hi) {
				t.Fatalf("format %d row %d: loss mask span outside the mapping", format, i)
			}
			want := v.Len()
			if format == 2 {
				want = (v.LossMask.off+v.Len()+7)/8 - v.LossMask.off/8
			}
			if len(sp) != want {
				t.Fatalf("format %d row %d: loss mask span of %d bytes, want %d", format, i, len(sp), want)
			}
			r.Prefetch(i)
			v.Prefetch()
			if in, ok := v.Input.Uint16(); ok && cap(in) != len(in) || format == 1 && cap(v.Input.i32) != len(v.Input.i32) {
				t.Fatalf("row %d: capacity past the row: append would write into the mapping", i)
			}
		}
		var sink int
		i := int64(0)
		allocs := testing.AllocsPerRun(1000, func() {
			r.Prefetch(i % r.Len())
			v, _ := r.Row(i % r.Len())
			v.Prefetch()
			sink += v.Len()
			i += 7919
		})
		r.Prefetch(-1) // out of range: nothing
		r.Prefetch(r.Len())
		if allocs != 0 {
			t.Errorf("format %d: Row allocates %v times per call; want 0", format, allocs)
		}
	}
}

func TestReaderClose(t *testing.T) {
	dir := t.TempDir()
	writeBuild(t, dir, glmtest.Rows(t, 20), 10, Options{})
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Row(0); !errors.Is(err, ErrClosed) {
		t.Errorf("Row after Close = %v; want ErrClosed", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// openErrorCase damages a fresh build and wants an error of Open (with
// opts) that mentions every fragment of want.
type openErrorCase struct {
	name   string
	damage func(t *testing.T, dir string, m *Manifest)
	opts   []OpenOption
	want   []string
}

func TestOpenErrors(t *testing.T) {
	rows := glmtest.Rows(t, 60)
	for _, c := range openErrorCases() {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			m := writeBuild(t, dir, rows, 20, Options{})
			c.damage(t, dir, m)
			r, err := Open(dir, c.opts...)
			if err == nil {
				r.Close()
				t.Fatal("Open succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func openErrorCases() []openErrorCase {
	return []openErrorCase{
		{"no manifest", func(t *testing.T, dir string, m *Manifest) {
			os.Remove(filepath.Join(dir, ManifestName))
		}, nil, []string{"no manifest.json"}},
		{"missing shard", func(t *testing.T, dir string, m *Manifest) {
			os.Remove(filepath.Join(dir, m.Shards[1].Name))
		}, nil, []string{"shard-000001-0000.arrow", "no such file"}},
		{"truncated", func(t *testing.T, dir string, m *Manifest) {
			truncate(t, filepath.Join(dir, m.Shards[1].Name), 100)
		}, nil, []string{"shard-000001-0000.arrow", "bytes; the manifest says"}},
		{"truncated, size edited to match", func(t *testing.T, dir string, m *Manifest) {
			truncate(t, filepath.Join(dir, m.Shards[1].Name), 100)
			m.Shards[1].Bytes = 100
			m.Sum()
			rewrite(t, dir, m)
		}, nil, []string{"shard-000001-0000.arrow", "magic"}},
		{"bit flip, hashed", func(t *testing.T, dir string, m *Manifest) {
			flip(t, filepath.Join(dir, m.Shards[0].Name), 3000)
		}, []OpenOption{VerifyHashes()}, []string{"shard-000000-0000.arrow", "sha256"}},
		{"row count", func(t *testing.T, dir string, m *Manifest) {
			m.Shards[2].Rows++
			m.Sum()
			rewrite(t, dir, m)
		}, nil, []string{"shard-000002-0000.arrow", "20 rows; the manifest says 21"}},
		{"totals", func(t *testing.T, dir string, m *Manifest) {
			m.Totals.Rows++
			rewrite(t, dir, m)
		}, nil, []string{ManifestName, "totals"}},
		{"tokenizer", func(t *testing.T, dir string, m *Manifest) {
			m.Meta.TokenizerSHA256 = "ff"
			rewrite(t, dir, m)
		}, nil, []string{"shard-000000-0000.arrow", "tokenizer_sha256", `"00" in the shard`}},
		{"format", func(t *testing.T, dir string, m *Manifest) {
			m.Meta.FormatVersion++
			rewrite(t, dir, m)
		}, nil, []string{ManifestName, "format version"}},
		{"swapped shards", func(t *testing.T, dir string, m *Manifest) {
			a, b := filepath.Join(dir, m.Shards[0].Name), filepath.Join(dir, m.Shards[1].Name)
			os.Rename(a, a+".x")
			os.Rename(b, a)
			os.Rename(a+".x", b)
		}, nil, []string{"shard-000000-0000.arrow", "replaced", "1 more"}},
		{"foreign file", func(t *testing.T, dir string, m *Manifest) {
			path := filepath.Join(dir, m.Shards[0].Name)
			if err := os.WriteFile(path, []byte(strings.Repeat("not arrow ", 100)), 0o644); err != nil {
				t.Fatal(err)
			}
			m.Shards[0].Bytes = 1000
			m.Sum()
			rewrite(t, dir, m)
		}, nil, []string{"shard-000000-0000.arrow", "not an arrow ipc file"}},
		{"escaping name", func(t *testing.T, dir string, m *Manifest) {
			m.Shards[0].Name = "../x.arrow"
			rewrite(t, dir, m)
		}, nil, []string{ManifestName, "not a file name"}},
	}
}

func TestVerifyFindsBadRow(t *testing.T) {
	rows := glmtest.Rows(t, 40)
	rows[25].Input = slices.Clone(rows[25].Input)
	rows[25].Input[0] = 7 // not [CLS]
	dir := t.TempDir()
	writeBuild(t, dir, rows, 20, Options{})
	r := mustOpen(t, dir)
	_, err := r.Verify(context.Background())
	if err == nil || !strings.Contains(err.Error(), "shard-000001-0000.arrow: row 5 (global row 25)") {
		t.Fatalf("Verify() = %v; want an error naming shard-000001-0000.arrow row 5", err)
	}
}

func truncate(t *testing.T, path string, n int64) {
	t.Helper()
	if err := os.Truncate(path, n); err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, at int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at%len(b)] ^= 0x10
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func rewrite(t *testing.T, dir string, m *Manifest) {
	t.Helper()
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
}

// TokenizerDiff tells builds whose ids mean the same text (the same
// tokenizer file, wherever it lies, loaded the same way) from builds whose
// ids do not, naming the field and its two values.
func TestTokenizerDiff(t *testing.T) {
	a := testMeta()
	a.TokenizerSHA256, a.TokenizerFamily = "ab", "wordpiece"
	same := a
	same.Tokenizer = "/elsewhere/vocab.txt"
	same.SeqLen, same.Masking.Seed = a.SeqLen*2, a.Masking.Seed+1
	same.TokenizerOptions = `{"lowercase":"true"}` // what the default decided anyway
	if d := TokenizerDiff(a, same); d != "" {
		t.Errorf("the same tokenization with another path, length, seed and options: %q", d)
	}
	older := a
	older.FormatVersion, older.TokenizerFamily = 1, "" // format 1 did not record it
	if d := TokenizerDiff(older, a); d != "" {
		t.Errorf("a format 1 build's tokenization against the same in format 2: %q", d)
	}
	for _, c := range []struct {
		edit func(*Meta)
		want string
	}{
		{func(m *Meta) { m.TokenizerSHA256 = "00" }, "tokenizer_sha256 "},
		{func(m *Meta) { m.TokenizerFamily = "bpe" }, `tokenizer_family "wordpiece" and "bpe"`},
		{func(m *Meta) {
			m.TokenizerFamily = "wordpiece/lowercase=false,strip_accents=false,tokenize_chinese_chars=true"
		}, `tokenizer_family "wordpiece" and "wordpiece/lowercase=false`},
		{func(m *Meta) { m.VocabSize += 128 }, "vocab_size "},
		{func(m *Meta) { m.Special.SOP++ }, "special_ids "},
	} {
		b := a
		c.edit(&b)
		if d := TokenizerDiff(a, b); !strings.HasPrefix(d, c.want) {
			t.Errorf("TokenizerDiff = %q; want it to start %q", d, c.want)
		}
	}
}

package sharding

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/masking"
)

func testMeta() Meta {
	c := masking.DefaultConfig()
	c.IDs = glmtest.IDs()
	return Meta{FormatVersion: FormatVersion, Tokenizer: "test", TokenizerSHA256: "00", VocabSize: 30592, Special: glmtest.IDs(), SeqLen: 512, MaskEpochs: 1, Masking: c}
}

func writeShard(t *testing.T, dir string, rows []masking.Sample, opts Options) ShardFile {
	t.Helper()
	opts.Meta = testMeta()
	w, err := Create(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range rows {
		if err := w.Write(&rows[i], uint64(i)<<3); err != nil {
			t.Fatal(err)
		}
	}
	sf, err := w.Commit("shard-000000-0000.arrow")
	if err != nil {
		t.Fatal(err)
	}
	return sf
}

func TestWriterRoundTrip(t *testing.T) {
	rows := glmtest.Rows(t, 700)
	for _, comp := range []string{"none", "zstd", "lz4"} {
		t.Run(comp, func(t *testing.T) {
			dir := t.TempDir()
			sf := writeShard(t, dir, rows, Options{Compression: comp, BatchRows: 256})
			if sf.Rows != int64(len(rows)) {
				t.Fatalf("rows %d, want %d", sf.Rows, len(rows))
			}
			f, err := os.Open(filepath.Join(dir, sf.Name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r, err := ipc.NewFileReader(f)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			meta, err := MetaFromSchema(r.Schema())
			if err != nil {
				t.Fatal(err)
			}
			if meta.SeqLen != 512 || meta.Special != glmtest.IDs() {
				t.Errorf("meta = %+v", meta)
			}
			if r.NumRecords() != 3 {
				t.Errorf("%d record batches, want 3", r.NumRecords())
			}
			i := 0
			for b := 0; b < r.NumRecords(); b++ {
				rec, err := r.RecordBatch(b)
				if err != nil {
					t.Fatal(err)
				}
				in := rec.Column(0).(*array.List)
				tg := rec.Column(1).(*array.List)
				obj := rec.Column(6).(*array.Dictionary)
				dict := obj.Dictionary().(*array.String)
				for j := 0; j < int(rec.NumRows()); j, i = j+1, i+1 {
					if got := listRow(t, in, j); !slices.Equal(got, rows[i].Input) {
						t.Fatalf("row %d input differs", i)
					}
					if got := listRow(t, tg, j); !slices.Equal(got, rows[i].Target) {
						t.Fatalf("row %d target differs", i)
					}
					if got := listRow(t, rec.Column(3).(*array.List), j); !slices.Equal(got, rows[i].Pos) {
						t.Fatalf("row %d positions differ", i)
					}
					if got := listRow(t, rec.Column(4).(*array.List), j); !slices.Equal(got, rows[i].BlockPos) {
						t.Fatalf("row %d block positions differ", i)
					}
					lm := rec.Column(2).(*array.List)
					lo, hi := lm.ValueOffsets(j)
					bools := lm.ListValues().(*array.Boolean)
					for x := lo; x < hi; x++ {
						if want := rows[i].LossMask[x-lo] == 1; bools.Value(int(x)) != want {
							t.Fatalf("row %d loss mask %d differs", i, x-lo)
						}
					}
					if got := dict.Value(obj.GetValueIndex(j)); got != rows[i].Objective.String() {
						t.Fatalf("row %d objective %q, want %v", i, got, rows[i].Objective)
					}
					if got := rec.Column(5).(*array.Int32).Value(j); got != rows[i].Sep {
						t.Fatalf("row %d sep %d, want %d", i, got, rows[i].Sep)
					}
					if got := rec.Column(7).(*array.Uint64).Value(j); got != uint64(i)<<3 {
						t.Fatalf("row %d doc_id %d", i, got)
					}
				}
			}
			if i != len(rows) {
				t.Fatalf("read %d rows, want %d", i, len(rows))
			}
		})
	}
}

// listRow returns row j of a list<uint16> or list<int32> column as int32.
func listRow(t *testing.T, l *array.List, j int) []int32 {
	t.Helper()
	lo, hi := l.ValueOffsets(j)
	var out []int32
	switch v := l.ListValues().(type) {
	case *array.Uint16:
		for _, x := range v.Uint16Values()[lo:hi] {
			out = append(out, int32(x))
		}
	case *array.Int32:
		out = v.Int32Values()[lo:hi]
	default:
		t.Fatalf("list of %T", v)
	}
	return out
}

func TestWriterDeterministic(t *testing.T) {
	rows := glmtest.Rows(t, 300)
	a, b := t.TempDir(), t.TempDir()
	sa := writeShard(t, a, rows, Options{})
	sb := writeShard(t, b, rows, Options{})
	ba, _ := os.ReadFile(filepath.Join(a, sa.Name))
	bb, _ := os.ReadFile(filepath.Join(b, sb.Name))
	if !bytes.Equal(ba, bb) || !reflect.DeepEqual(sa, sb) {
		t.Fatalf("two writes of the same rows differ: %+v vs %+v", sa, sb)
	}
	if ents, _ := os.ReadDir(a); len(ents) != 1 {
		t.Errorf("directory holds %d entries after commit, want the shard alone", len(ents))
	}
}

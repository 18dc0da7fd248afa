package sharding

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/masking"
)

// longRows masks n samples of about srcLen source tokens each.
func longRows(tb testing.TB, n, srcLen int) []masking.Sample {
	tb.Helper()
	c := masking.DefaultConfig()
	c.IDs = testIDs
	m, err := masking.New(c)
	if err != nil {
		tb.Fatal(err)
	}
	rows := make([]masking.Sample, n)
	src := make([]int32, 0, srcLen+64)
	for i := range rows {
		src = append(src[:0], 101)
		for j := range srcLen - 2 + i%64 {
			src = append(src, int32(2000+(i*7+j*13)%20000))
		}
		src = append(src, 0)
		if rows[i], err = m.Mask(uint64(i), 0, src); err != nil {
			tb.Fatal(err)
		}
	}
	return rows
}

// benchBuild writes n rows of about srcLen tokens in shards of 500 rows.
func benchBuild(tb testing.TB, n, srcLen int) string {
	tb.Helper()
	dir := tb.TempDir()
	opts := Options{Meta: testMeta()}
	opts.Meta.SeqLen = srcLen + 64
	writeBuild(tb, dir, longRows(tb, n, srcLen), 500, opts)
	return dir
}

// manyShards writes a build of n copies of one small shard (64 rows of
// about 200 tokens), without fsyncs.
func manyShards(tb testing.TB, n int) string {
	tb.Helper()
	src := tb.TempDir()
	m := writeBuild(tb, src, longRows(tb, 64, 200), 64, Options{})
	data, err := os.ReadFile(filepath.Join(src, m.Shards[0].Name))
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	sf := m.Shards[0]
	m.Shards = m.Shards[:0]
	for i := range n {
		sf.Name = fmt.Sprintf("shard-%06d-0000.arrow", i)
		if err := os.WriteFile(filepath.Join(dir, sf.Name), data, 0o644); err != nil {
			tb.Fatal(err)
		}
		m.Shards = append(m.Shards, sf)
	}
	m.Sum()
	writeJSON(tb, filepath.Join(dir, ManifestName), m)
	return dir
}

// firstBatch opens dir and returns the time to the first batch.
func firstBatch(tb testing.TB, dir string) time.Duration {
	tb.Helper()
	t0 := time.Now()
	r, err := Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	l, err := NewLoader(context.Background(), []Source{{Reader: r}}, LoaderOptions{Batch: 32})
	if err != nil {
		tb.Fatal(err)
	}
	var b Batch
	if err := l.Next(&b); err != nil {
		tb.Fatal(err)
	}
	d := time.Since(t0)
	l.Close()
	r.Close()
	return d
}

func TestFirstBatchManyShards(t *testing.T) {
	dir := manyShards(t, 1000)
	firstBatch(t, dir) // warm the page cache
	d := firstBatch(t, dir)
	t.Logf("first batch over 1,000 shards: %v", d)
	if d > 5*time.Second { // the aim is < 1 s; this machine may be shared
		t.Errorf("first batch over 1,000 shards took %v", d)
	}
}

func TestBenchLoad(t *testing.T) {
	dir := t.TempDir()
	writeBuild(t, dir, testRows(t, 300), 100, Options{})
	res, err := BenchLoad(dir, BenchOptions{Batch: 8, Seconds: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	if res.RowsPerS <= 0 || res.TokensPerS <= res.RowsPerS || res.BytesPerS <= res.TokensPerS || res.MemcpyBytesPerS <= 0 ||
		res.FirstBatchMS < res.OpenMS || res.Shards != 3 || res.Rows != 300 || !res.Mapped {
		t.Errorf("BenchLoad = %+v", res)
	}
	b, _ := json.Marshal(res)
	for _, k := range []string{"rows_per_s", "tokens_per_s", "bytes_per_s", "memcpy_bytes_per_s", "first_batch_ms", "open_ms"} {
		if !strings.Contains(string(b), `"`+k+`":`) {
			t.Errorf("BenchLoad JSON %s has no %q", b, k)
		}
	}
}

// BenchmarkRowRandom reads rows in a random order on one core, with Row's
// checks, copying their five columns out (widened to int32) as a batch
// gather does, and compares the rate with a plain copy of as many bytes as
// it delivered.
func BenchmarkRowRandom(b *testing.B) {
	r := mustOpen(b, benchBuild(b, 4000, 1024))
	n := uint64(r.Len())
	p := NewPerm(n, 1)
	L := r.MaxRowLen()
	in, tg, ps, bp := make([]int32, L), make([]int32, L), make([]int32, L), make([]int32, L)
	lm := make([]uint8, L)
	var rows, tokens, bytes int64
	var k uint64
	for b.Loop() {
		v, err := r.Row(int64(p.At(k % n)))
		if err != nil {
			b.Fatal(err)
		}
		k++
		n := v.Len()
		gather(in[:n], v.Input, false)
		gather(tg[:n], v.Target, false)
		v.LossMask.AppendTo(lm[:0])
		gather(ps[:n], v.Pos, false)
		gather(bp[:n], v.BlockPos, false)
		rows++
		tokens += int64(n)
		bytes += BatchBytes(n)
	}
	el := b.Elapsed().Seconds()
	b.ReportMetric(float64(rows)/el, "rows/s")
	b.ReportMetric(float64(tokens)/el, "tokens/s")
	b.ReportMetric(float64(bytes)/el/1e6, "MB/s")
	mc, err := memcpyRate(r, int(bytes/rows), bytes)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(mc/1e6, "memcpy_MB/s")
	b.ReportMetric(100*float64(bytes)/el/mc, "%memcpy")
}

// BenchmarkMemcpy copies shard bytes in chunks of one average row.
func BenchmarkMemcpy(b *testing.B) {
	r := mustOpen(b, benchBuild(b, 4000, 1024))
	chunk := int(BatchBytes(int(r.Manifest().Totals.Tokens / r.Len())))
	dst := make([]byte, chunk)
	b.SetBytes(int64(chunk))
	si, off := 0, 0
	for b.Loop() {
		src := r.shards[si].data
		n := copy(dst, src[off:])
		if off += n; off >= len(src) {
			si, off = (si+1)%len(r.shards), 0
		}
	}
}

// BenchmarkLoader measures Next with a background prefetcher (B = 32).
func BenchmarkLoader(b *testing.B) {
	r := mustOpen(b, benchBuild(b, 4000, 1024))
	l := newLoader(b, []Source{{Reader: r}}, LoaderOptions{Batch: 32, Seed: 1})
	var batch Batch
	var rows, tokens, bytes int64
	batches := 0
	for b.Loop() {
		if err := l.Next(&batch); err != nil {
			b.Fatal(err)
		}
		rows += int64(batch.B)
		batches++
		for _, n := range batch.Lens {
			tokens += int64(n)
			bytes += BatchBytes(int(n))
		}
	}
	el := b.Elapsed().Seconds()
	b.ReportMetric(float64(rows)/el, "rows/s")
	b.ReportMetric(float64(tokens)/el, "tokens/s")
	mc, err := memcpyRate(r, int(bytes)/batches, bytes)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(100*float64(bytes)/el/mc, "%memcpy")
}

// BenchmarkFirstBatch1000Shards times Open, NewLoader and the first Next
// over 1,000 small shards, from the page cache.
func BenchmarkFirstBatch1000Shards(b *testing.B) {
	dir := manyShards(b, 1000)
	firstBatch(b, dir)
	var total time.Duration
	for b.Loop() {
		total += firstBatch(b, dir)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/first-batch")
}

// BenchmarkWrite writes rows of about 560 positions into one shard, in
// format 1 and 2, and reports row positions per second (the shard commit's
// fsync included).
func BenchmarkWrite(b *testing.B) {
	rows := longRows(b, 512, 500)
	for _, format := range []int{1, 2} {
		b.Run(fmt.Sprintf("format=%d", format), func(b *testing.B) {
			opts := Options{Meta: testMeta()}
			opts.Meta.FormatVersion = format
			var positions int64
			for b.Loop() {
				w, err := Create(b.TempDir(), opts)
				if err != nil {
					b.Fatal(err)
				}
				for i := range rows {
					if err := w.Write(&rows[i], uint64(i)); err != nil {
						b.Fatal(err)
					}
					positions += int64(rows[i].Len())
				}
				if _, err := w.Commit("shard-000000-0000.arrow"); err != nil {
					b.Fatal(err)
				}
				w.Close()
			}
			b.ReportMetric(float64(positions)/b.Elapsed().Seconds()/1e6, "Mpositions/s")
		})
	}
}

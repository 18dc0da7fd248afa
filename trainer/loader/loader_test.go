package loader

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/internal/sysmem"
	"github.com/glmkit/glmkit/sharding"
)

// The trainer consumes the loader through this interface.
var _ interface {
	Next(*Batch) error
	State() ([]byte, error)
	Restore([]byte) error
} = (*Loader)(nil)

// testBuild writes n test rows as a build of shards of 37 rows (batches of
// 16) and opens it.
func testBuild(t testing.TB, n int, meta func(*sharding.Meta)) *sharding.Reader {
	t.Helper()
	dir := t.TempDir()
	opts := sharding.Options{BatchRows: 16, Meta: testMeta()}
	if meta != nil {
		meta(&opts.Meta)
	}
	writeBuild(t, dir, glmtest.Rows(t, n), 37, opts)
	return mustOpen(t, dir)
}

func newLoader(t testing.TB, srcs []Source, o Options) *Loader {
	t.Helper()
	l, err := New(context.Background(), srcs, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// take reads up to k batches (k < 0: until io.EOF) and returns their rows.
func take(t testing.TB, l *Loader, k int) []int64 {
	t.Helper()
	var rows []int64
	var b Batch
	for i := 0; k < 0 || i < k; i++ {
		err := l.Next(&b)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, b.Rows[:b.B]...)
	}
	return rows
}

// exactlyOnce fails unless rows holds each of 0..n-1 exactly times times.
func exactlyOnce(t *testing.T, rows []int64, n int64, times int) {
	t.Helper()
	count := make([]int, n)
	for _, r := range rows {
		if r < 0 || r >= n {
			t.Fatalf("row %d out of range", r)
		}
		count[r]++
	}
	for r, c := range count {
		if c != times {
			t.Fatalf("row %d read %d times; want %d (%d rows read in all)", r, c, times, len(rows))
		}
	}
}

func TestLoaderEpochCoversAll(t *testing.T) {
	r := testBuild(t, 301, nil)
	for _, world := range []int{1, 2, 3, 8} {
		for _, epochs := range []int{1, 2} {
			var all []int64
			for rank := range world {
				l := newLoader(t, []Source{{Reader: r}}, Options{Batch: 7, Rank: rank, World: world, Seed: 5, Epochs: epochs})
				all = append(all, take(t, l, -1)...)
			}
			exactlyOnce(t, all, r.Len(), epochs)
			if epochs == 1 && slices.IsSorted(all) {
				t.Errorf("world %d: rows come in file order", world)
			}
		}
	}
}

func TestLoaderDropLast(t *testing.T) {
	r := testBuild(t, 100, nil)
	counts := make([]int, 3)
	for rank := range 3 {
		l := newLoader(t, []Source{{Reader: r}}, Options{Batch: 8, Rank: rank, World: 3, Epochs: 1, DropLast: true})
		var b Batch
		for l.Next(&b) == nil {
			if b.B != 8 {
				t.Fatalf("rank %d: batch of %d rows with DropLast", rank, b.B)
			}
			counts[rank]++
		}
	}
	if want := []int{4, 4, 4}; !slices.Equal(counts, want) { // 100/24 = 4 full global batches
		t.Errorf("batches per rank %v; want %v", counts, want)
	}
}

// TestLoaderBatchContents checks every batch row against Row, and the
// padding rules.
func TestLoaderBatchContents(t *testing.T) {
	const pad = 77
	r := testBuild(t, 120, func(m *sharding.Meta) { m.Special.Pad = pad })
	l := newLoader(t, []Source{{Reader: r}}, Options{Batch: 9, Epochs: 1, Seed: 1})
	var b Batch
	batches := 0
	for {
		err := l.Next(&b)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		batches++
		T := 0
		for j := range b.B {
			v, err := r.Row(b.Rows[j])
			if err != nil {
				t.Fatal(err)
			}
			T = max(T, v.Len())
			L, row := v.Len(), b.Input[j*b.T:(j+1)*b.T]
			switch {
			case !slices.Equal(row[:L], v.Input.AppendTo(nil)),
				!slices.Equal(b.Target[j*b.T:][:L], v.Target.AppendTo(nil)),
				!slices.Equal(b.LossMask[j*b.T:][:L], v.LossMask.AppendTo(nil)),
				!slices.Equal(b.Pos[j*b.T:][:L], v.Pos.AppendTo(nil)),
				!slices.Equal(b.BlockPos[j*b.T:][:L], v.BlockPos.AppendTo(nil)):
				t.Fatalf("batch %d row %d (row %d) differs from Row", batches, j, b.Rows[j])
			case b.Sep[j] != v.Sep || b.Objective[j] != v.Objective:
				t.Fatalf("batch %d row %d: sep %d objective %v; want %d %v", batches, j, b.Sep[j], b.Objective[j], v.Sep, v.Objective)
			}
			for k := L; k < b.T; k++ {
				i := j*b.T + k
				if b.Input[i] != pad || b.Target[i] != pad || b.LossMask[i] != 0 || b.Pos[i] != 0 || b.BlockPos[i] != 0 {
					t.Fatalf("batch %d row %d position %d: padding (%d %d %d %d %d); want (%d %d 0 0 0)",
						batches, j, k, b.Input[i], b.Target[i], b.LossMask[i], b.Pos[i], b.BlockPos[i], pad, pad)
				}
			}
		}
		if b.T != T || len(b.Input) != b.B*b.T {
			t.Fatalf("batch %d: T %d, len %d; want T %d, len %d", batches, b.T, len(b.Input), T, b.B*T)
		}
	}
	if batches != 14 { // ⌈120/9⌉
		t.Errorf("%d batches; want 14", batches)
	}
}

func TestLoaderResume(t *testing.T) {
	r := testBuild(t, 250, nil)
	opts := Options{Batch: 16, Seed: 11}
	full := take(t, newLoader(t, []Source{{Reader: r}}, opts), 60) // about 4 epochs
	for _, k := range []int{0, 1, 13, 15, 16, 47} {
		a := newLoader(t, []Source{{Reader: r}}, opts)
		head := take(t, a, k)
		st, err := a.State()
		if err != nil {
			t.Fatal(err)
		}
		// Read ahead, then seek back in the same loader.
		take(t, a, 3)
		if err := a.Restore(st); err != nil {
			t.Fatal(err)
		}
		again := take(t, a, 60-k)
		// And in a fresh loader.
		c := newLoader(t, []Source{{Reader: r}}, opts)
		if err := c.Restore(st); err != nil {
			t.Fatal(err)
		}
		tail := take(t, c, 60-k)
		if got := append(slices.Clone(head), tail...); !slices.Equal(got, full) {
			t.Fatalf("resume after %d batches differs from the uninterrupted order", k)
		}
		if !slices.Equal(again, tail) {
			t.Fatalf("restore into the same loader after %d batches differs from a fresh loader", k)
		}
	}
}

// TestLoaderElastic stops 4 ranks mid-epoch and resumes on 2: the epoch is
// covered exactly once.
func TestLoaderElastic(t *testing.T) {
	r := testBuild(t, 333, nil)
	for _, c := range []struct{ from, to, k int }{{4, 2, 5}, {4, 2, 0}, {2, 3, 7}, {1, 8, 3}} {
		var all []int64
		var states [][]byte
		for rank := range c.from {
			l := newLoader(t, []Source{{Reader: r}}, Options{Batch: 8, Rank: rank, World: c.from, Seed: 2, Epochs: 1})
			all = append(all, take(t, l, c.k)...)
			st, err := l.State()
			if err != nil {
				t.Fatal(err)
			}
			states = append(states, st)
		}
		for _, st := range states[1:] {
			if string(st) != string(states[0]) {
				t.Fatalf("ranks disagree on the state: %s vs %s", st, states[0])
			}
		}
		for rank := range c.to {
			l := newLoader(t, []Source{{Reader: r}}, Options{Batch: 8, Rank: rank, World: c.to, Seed: 2, Epochs: 1})
			if err := l.Restore(states[0]); err != nil {
				t.Fatal(err)
			}
			all = append(all, take(t, l, -1)...)
		}
		exactlyOnce(t, all, r.Len(), 1)
	}
}

func TestLoaderMaskEpochs(t *testing.T) {
	// 200 rows read as 100 samples × 2 mask epochs (rows 2i, 2i+1).
	r := testBuild(t, 200, func(m *sharding.Meta) { m.MaskEpochs = 2 })
	l := newLoader(t, []Source{{Reader: r}}, Options{Batch: 10, Seed: 4, Epochs: 4})
	if l.EpochLen() != 100 {
		t.Fatalf("EpochLen() = %d; want 100 samples", l.EpochLen())
	}
	for e := range 4 {
		rows := take(t, l, 10)
		seen := make(map[int64]bool)
		for _, row := range rows {
			if int(row%2) != e%2 || seen[row/2] {
				t.Fatalf("epoch %d read row %d (copy %d; sample seen before: %v)", e, row, row%2, seen[row/2])
			}
			seen[row/2] = true
		}
		if len(seen) != 100 {
			t.Fatalf("epoch %d read %d samples; want 100", e, len(seen))
		}
	}
	all := newLoader(t, []Source{{Reader: r}}, Options{Batch: 10, Seed: 4, Epochs: 1, AllMaskEpochs: true})
	exactlyOnce(t, take(t, all, -1), 200, 1)
}

func TestLoaderMix(t *testing.T) {
	a := testBuild(t, 300, nil)
	b := testBuild(t, 100, nil)
	srcs := []Source{{Reader: a, Weight: 0.7}, {Reader: b, Weight: 0.3}}
	l := newLoader(t, srcs, Options{Batch: 100, Seed: 8})
	// Proportions over 100k positions (1000 batches of 100), through the
	// loader's own order.
	var n [2]int
	c := l.ord.mix.newCache()
	for g := range uint64(100_000) {
		d, row := l.ord.at(g, c)
		n[d]++
		if row < 0 || row >= srcs[d].Reader.Len() {
			t.Fatalf("position %d: row %d of dataset %d out of range", g, row, d)
		}
	}
	for d, want := range []float64{0.7, 0.3} {
		if f := float64(n[d]) / 100_000; math.Abs(f-want) > 0.01 {
			t.Errorf("dataset %d has %.4f of the rows; want %.2f ± 0.01", d, f, want)
		}
	}
	// Each dataset's draws run through whole epochs: dataset b's first 300
	// draws are 3 epochs of its 100 rows.
	var draws []int64
	for g := uint64(0); len(draws) < 300; g++ {
		if d, row := l.ord.at(g, c); d == 1 {
			draws = append(draws, row)
		}
	}
	for e := range 3 {
		seen := make(map[int64]bool)
		for _, row := range draws[e*100 : (e+1)*100] {
			seen[row] = true
		}
		if len(seen) != 100 {
			t.Errorf("dataset b epoch %d visits %d distinct rows; want 100", e, len(seen))
		}
	}
	// The batches carry those rows.
	var batch Batch
	if err := l.Next(&batch); err != nil {
		t.Fatal(err)
	}
	for j := range batch.B {
		d, row := l.ord.at(uint64(j), c)
		v, _ := srcs[d].Reader.Row(row)
		if batch.Rows[j] != row || !slices.Equal(batch.Input[j*batch.T:][:v.Len()], v.Input.AppendTo(nil)) {
			t.Fatalf("batch row %d is not dataset %d row %d", j, d, row)
		}
	}
	// A state does not restore with other weights.
	st, _ := l.State()
	other := newLoader(t, []Source{{Reader: a, Weight: 0.6}, {Reader: b, Weight: 0.4}}, Options{Batch: 100, Seed: 8})
	if err := other.Restore(st); err == nil || !strings.Contains(err.Error(), "weight") {
		t.Errorf("Restore with other weights = %v; want an error about the weight", err)
	}
}

func TestLoaderAllocs(t *testing.T) {
	r := testBuild(t, 500, nil)
	l := newLoader(t, []Source{{Reader: r}}, Options{Batch: 32, Seed: 1, Prefetch: 3})
	var b Batch
	take(t, l, 5)
	for range 5 {
		if err := l.Next(&b); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	allocs := testing.AllocsPerRun(200, func() {
		if e := l.Next(&b); e != nil {
			err = e
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Errorf("Next allocates %v times per batch in steady state; want 0", allocs)
	}
}

func TestLoaderRestoreErrors(t *testing.T) {
	r := testBuild(t, 50, nil)
	r2 := testBuild(t, 51, nil)
	l := newLoader(t, []Source{{Reader: r}}, Options{Batch: 4, Seed: 1})
	take(t, l, 3)
	st, _ := l.State()
	for _, c := range []struct {
		name  string
		srcs  []Source
		opts  Options
		state string
		want  string
	}{
		{"seed", []Source{{Reader: r}}, Options{Batch: 4, Seed: 2}, string(st), "seed"},
		{"data", []Source{{Reader: r2}}, Options{Batch: 4, Seed: 1}, string(st), "fingerprint"},
		{"mode", []Source{{Reader: r}}, Options{Batch: 4, Seed: 1, AllMaskEpochs: true}, string(st), "all_mask_epochs"},
		{"garbage", []Source{{Reader: r}}, Options{Batch: 4, Seed: 1}, "{", "restore"},
		{"position", []Source{{Reader: r}}, Options{Batch: 4, Seed: 1}, strings.Replace(string(st), `"pos":12`, `"pos":50`, 1), "position"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLoader(t, c.srcs, c.opts)
			if err := l.Restore([]byte(c.state)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Restore = %v; want an error mentioning %q", err, c.want)
			}
		})
	}
	// Another batch size and world restore fine.
	l2 := newLoader(t, []Source{{Reader: r}}, Options{Batch: 5, World: 2, Rank: 1, Seed: 1})
	if err := l2.Restore(st); err != nil {
		t.Errorf("Restore with another batch and world size: %v", err)
	}
}

func TestLoaderContextAndClose(t *testing.T) {
	r := testBuild(t, 50, nil)
	ctx, cancel := context.WithCancel(context.Background())
	l, err := New(ctx, []Source{{Reader: r}}, Options{Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	var b Batch
	if err := l.Next(&b); err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := l.Next(&b)
		if errors.Is(err, context.Canceled) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("Next after cancel = %v; want context.Canceled", err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Next(&b); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close = %v; want ErrClosed", err)
	}
}

func TestOptionsErrors(t *testing.T) {
	r := testBuild(t, 20, nil)
	other := testBuild(t, 20, func(m *sharding.Meta) { m.TokenizerSHA256 = "11" })
	// The same vocab.txt lower-cased in one build and not in the other.
	uncased := testBuild(t, 20, func(m *sharding.Meta) { m.TokenizerFamily = "wordpiece" })
	cased := testBuild(t, 20, func(m *sharding.Meta) {
		m.TokenizerFamily = "wordpiece/lowercase=false,strip_accents=false,tokenize_chinese_chars=true"
	})
	for _, c := range []struct {
		srcs []Source
		opts Options
		want string
	}{
		{nil, Options{Batch: 1}, "no datasets"},
		{[]Source{{Reader: r}}, Options{}, "batch size"},
		{[]Source{{Reader: r}}, Options{Batch: 1, Rank: 2, World: 2}, "rank"},
		{[]Source{{Reader: r, Weight: 1}, {Reader: other, Weight: 1}}, Options{Batch: 1}, "different tokenizers"},
		{[]Source{{Reader: uncased, Weight: 1}, {Reader: cased, Weight: 1}}, Options{Batch: 1}, `different tokenizers (tokenizer_family "wordpiece" and "wordpiece/lowercase=false`},
		{[]Source{{Reader: r, Weight: 1}, {Reader: r, Weight: 0}}, Options{Batch: 1}, "weight"},
		// 2^40 rows: over any machine's memory (the error, not an OOM kill).
		{[]Source{{Reader: r}}, Options{Batch: 1 << 40}, "lower the batch size"},
	} {
		if c.opts.Batch == 1<<40 {
			if n, _ := sysmem.Total(); n == 0 {
				t.Log("the machine's memory is not known here: no bound to pass")
				continue
			}
		}
		if l, err := New(context.Background(), c.srcs, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			if l != nil {
				l.Close()
			}
			t.Errorf("New(%+v) = %v; want an error mentioning %q", c.opts, err, c.want)
		}
	}
}

func TestParseMix(t *testing.T) {
	got, err := ParseMix("a=0.7, b/c=0.3")
	if want := []MixEntry{{"a", 0.7}, {"b/c", 0.3}}; err != nil || !slices.Equal(got, want) {
		t.Errorf("ParseMix = %v, %v; want %v", got, err, want)
	}
	if got, err := ParseMix("x"); err != nil || !slices.Equal(got, []MixEntry{{"x", 1}}) {
		t.Errorf("ParseMix(x) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "a=", "a=0", "a=-1,b=1", "=1", "a=1,,b=2", "a=x"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) did not fail", bad)
		}
	}
}

func TestOpen(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	rows := glmtest.Rows(t, 40)
	writeBuild(t, dirA, rows, 20, sharding.Options{})
	writeBuild(t, dirB, rows[:10], 20, sharding.Options{})
	l, err := Open(context.Background(), dirA+"=3,"+dirB+"=1", Options{Batch: 4, Epochs: 1}, sharding.VerifyHashes())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(take(t, l, -1)); n != 50 {
		t.Errorf("one epoch of the mixture read %d rows; want 50 (its length)", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), filepath.Join(dirA, "nope")+"=1", Options{Batch: 4}); !errors.Is(err, sharding.ErrNoManifest) {
		t.Errorf("OpenLoader of a missing build = %v; want ErrNoManifest", err)
	}
}

// What the reader refuses to serve stops the loader with the reader's
// error: a flipped byte inside a record batch (its checksum) and a row
// that breaks an invariant (checked in the pass that widens it).
func TestLoaderRefusesDamage(t *testing.T) {
	rows := glmtest.Rows(t, 60)
	dir := t.TempDir()
	m := writeBuild(t, dir, rows, 60, sharding.Options{BatchRows: 16})
	path := filepath.Join(dir, m.Shards[0].Name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The first byte from the middle on whose flip Open passes: a value
	// inside a record batch, which only the batch's checksum catches.
	var r *sharding.Reader
	for at := len(data) / 2; r == nil && at < len(data); at++ {
		data[at] ^= 8
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if r, err = sharding.Open(dir); err != nil {
			data[at] ^= 8
		}
	}
	if r == nil {
		t.Fatal("no flipped byte passes Open")
	}
	t.Cleanup(func() { r.Close() }) // after the loader's Close
	if err := readAll(newLoader(t, []Source{{Reader: r}}, Options{Batch: 8, Epochs: 1})); err == nil ||
		!strings.Contains(err.Error(), m.Shards[0].Name) || !strings.Contains(err.Error(), "record batch") {
		t.Errorf("Next over a flipped byte = %v; want an error naming the shard and the record batch", err)
	}

	bad := slices.Clone(rows)
	bad[21].Pos = slices.Clone(bad[21].Pos)
	bad[21].Pos[len(bad[21].Pos)-1] = bad[21].Sep + 3
	dir = t.TempDir()
	writeBuild(t, dir, bad, 30, sharding.Options{BatchRows: 8})
	if err := readAll(newLoader(t, []Source{{Reader: mustOpen(t, dir)}}, Options{Batch: 30, Epochs: 1})); err == nil ||
		!strings.Contains(err.Error(), "global row 21") || !strings.Contains(err.Error(), "outside Part A") {
		t.Errorf("Next over a row with a position past Part A = %v", err)
	}
	if err := readAll(newLoader(t, []Source{{Reader: mustOpen(t, dir, sharding.Unchecked())}}, Options{Batch: 30, Epochs: 1})); err != nil {
		t.Errorf("unchecked, the row is served as it is: %v", err)
	}
}

// readAll reads batches until the end of the stream; nil at io.EOF.
func readAll(l *Loader) error {
	var b Batch
	for {
		if err := l.Next(&b); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// A mixture may combine format 1 and format 2 builds (of one tokenizer).
func TestLoaderMixesFormats(t *testing.T) {
	v1 := testBuild(t, 80, func(m *sharding.Meta) { m.FormatVersion = 1 })
	v2 := testBuild(t, 80, nil)
	if _, ok := mustView(t, v1, 0).Input.Int32(); !ok {
		t.Fatal("the format 1 build's ids are not int32")
	}
	l := newLoader(t, []Source{{Reader: v1, Weight: 1}, {Reader: v2, Weight: 1}}, Options{Batch: 6, Seed: 3})
	var b Batch
	for range 20 {
		if err := l.Next(&b); err != nil {
			t.Fatal(err)
		}
		for j := range b.B {
			v := mustView(t, v2, b.Rows[j]) // both datasets hold the same rows
			if got := b.Input[j*b.T : j*b.T+v.Len()]; !slices.Equal(got, v.Input.AppendTo(nil)) {
				t.Fatalf("mixture batch row %d differs from the row", j)
			}
		}
	}
}

func mustView(t *testing.T, r *sharding.Reader, i int64) sharding.RowView {
	t.Helper()
	v, err := r.Row(i)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A shard file cut short while the loader maps it (rewritten in place, or
// truncated by another program) makes the read fault: that is an error of
// Next naming the shard and the row, not a SIGBUS that kills the process.
func TestLoaderShardTruncatedWhileMapped(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("shards are read into memory, not mapped, on " + runtime.GOOS)
	}
	rows := glmtest.Rows(t, 400)
	dir := t.TempDir()
	m := writeBuild(t, dir, rows, 400, sharding.Options{BatchRows: 64})
	r := mustOpen(t, dir)
	path := filepath.Join(dir, m.Shards[0].Name)
	if fi, err := os.Stat(path); err != nil || fi.Size() < 64<<10 {
		t.Fatalf("the shard is %v bytes (%v); the test wants one of many pages", fi.Size(), err)
	}
	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}
	err := readAll(newLoader(t, []Source{{Reader: r}}, Options{Batch: 8, Epochs: 1, Workers: 2}))
	if err == nil || !strings.Contains(err.Error(), m.Shards[0].Name) || !strings.Contains(err.Error(), "changed while it was mapped") ||
		!strings.Contains(err.Error(), "reading row ") {
		t.Errorf("Next over a truncated shard = %v; want an error naming the shard, the row and what happened", err)
	}
	t.Log(err)
}

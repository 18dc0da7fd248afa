package sharding

import (
	"context"
	"errors"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The trainer consumes the loader through this interface.
var _ interface {
	Next(*Batch) error
	State() ([]byte, error)
	Restore([]byte) error
} = (*Loader)(nil)

// testBuild writes n test rows as a build of shards of 37 rows (batches of
// 16) and opens it.
func testBuild(t testing.TB, n int, meta func(*Meta)) *Reader {
	t.Helper()
	dir := t.TempDir()
	opts := Options{BatchRows: 16, Meta: testMeta()}
	if meta != nil {
		meta(&opts.Meta)
	}
	writeBuild(t, dir, testRows(t, n), 37, opts)
	return mustOpen(t, dir)
}

func newLoader(t testing.TB, srcs []Source, o LoaderOptions) *Loader {
	t.Helper()
	l, err := NewLoader(context.Background(), srcs, o)
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
				l := newLoader(t, []Source{{Reader: r}}, LoaderOptions{Batch: 7, Rank: rank, World: world, Seed: 5, Epochs: epochs})
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
		l := newLoader(t, []Source{{Reader: r}}, LoaderOptions{Batch: 8, Rank: rank, World: 3, Epochs: 1, DropLast: true})
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
	r := testBuild(t, 120, func(m *Meta) { m.Special.Pad = pad })
	l := newLoader(t, []Source{{Reader: r}}, LoaderOptions{Batch: 9, Epochs: 1, Seed: 1})
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
	opts := LoaderOptions{Batch: 16, Seed: 11}
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
			l := newLoader(t, []Source{{Reader: r}}, LoaderOptions{Batch: 8, Rank: rank, World: c.from, Seed: 2, Epochs: 1})
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
			l := newLoader(t, []Source{{Reader: r}}, LoaderOptions{Batch: 8, Rank: rank, World: c.to, Seed: 2, Epochs: 1})
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
	r := testBuild(t, 200, func(m *Meta) { m.MaskEpochs = 2 })
	l := newLoader(t, []Source{{Reader: r}}, LoaderOptions{Batch: 10, Seed: 4, Epochs: 4})
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
	all := newLoader(t, []Source{{Reader: r}}, LoaderOptions{Batch: 10, Seed: 4, Epochs: 1, AllMaskEpochs: true})
	exactlyOnce(t, take(t, all, -1), 200, 1)
}

func TestLoaderMix(t *testing.T) {
	a := testBuild(t, 300, nil)
	b := testBuild(t, 100, nil)
	srcs := []Source{{Reader: a, Weight: 0.7}, {Reader: b, Weight: 0.3}}
	l := newLoader(t, srcs, LoaderOptions{Batch: 100, Seed: 8})
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
	other := newLoader(t, []Source{{Reader: a, Weight: 0.6}, {Reader: b, Weight: 0.4}}, LoaderOptions{Batch: 100, Seed: 8})
	if err := other.Restore(st); err == nil || !strings.Contains(err.Error(), "weight") {
		t.Errorf("Restore with other weights = %v; want an error about the weight", err)
	}
}

func TestLoaderAllocs(t *testing.T) {
	r := testBuild(t, 500, nil)
	l := newLoader(t, []Source{{Reader: r}}, LoaderOptions{Batch: 32, Seed: 1, Prefetch: 3})
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
	l := newLoader(t, []Source{{Reader: r}}, LoaderOptions{Batch: 4, Seed: 1})
	take(t, l, 3)
	st, _ := l.State()
	for _, c := range []struct {
		name  string
		srcs  []Source
		opts  LoaderOptions
		state string
		want  string
	}{
		{"seed", []Source{{Reader: r}}, LoaderOptions{Batch: 4, Seed: 2}, string(st), "seed"},
		{"data", []Source{{Reader: r2}}, LoaderOptions{Batch: 4, Seed: 1}, string(st), "fingerprint"},
		{"mode", []Source{{Reader: r}}, LoaderOptions{Batch: 4, Seed: 1, AllMaskEpochs: true}, string(st), "all_mask_epochs"},
		{"garbage", []Source{{Reader: r}}, LoaderOptions{Batch: 4, Seed: 1}, "{", "restore"},
		{"position", []Source{{Reader: r}}, LoaderOptions{Batch: 4, Seed: 1}, strings.Replace(string(st), `"pos":12`, `"pos":50`, 1), "position"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLoader(t, c.srcs, c.opts)
			if err := l.Restore([]byte(c.state)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Restore = %v; want an error mentioning %q", err, c.want)
			}
		})
	}
	// Another batch size and world restore fine.
	l2 := newLoader(t, []Source{{Reader: r}}, LoaderOptions{Batch: 5, World: 2, Rank: 1, Seed: 1})
	if err := l2.Restore(st); err != nil {
		t.Errorf("Restore with another batch and world size: %v", err)
	}
}

func TestLoaderContextAndClose(t *testing.T) {
	r := testBuild(t, 50, nil)
	ctx, cancel := context.WithCancel(context.Background())
	l, err := NewLoader(ctx, []Source{{Reader: r}}, LoaderOptions{Batch: 4})
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

func TestLoaderOptionsErrors(t *testing.T) {
	r := testBuild(t, 20, nil)
	other := testBuild(t, 20, func(m *Meta) { m.TokenizerSHA256 = "11" })
	for _, c := range []struct {
		srcs []Source
		opts LoaderOptions
		want string
	}{
		{nil, LoaderOptions{Batch: 1}, "no datasets"},
		{[]Source{{Reader: r}}, LoaderOptions{}, "batch size"},
		{[]Source{{Reader: r}}, LoaderOptions{Batch: 1, Rank: 2, World: 2}, "rank"},
		{[]Source{{Reader: r, Weight: 1}, {Reader: other, Weight: 1}}, LoaderOptions{Batch: 1}, "different tokenizers"},
		{[]Source{{Reader: r, Weight: 1}, {Reader: r, Weight: 0}}, LoaderOptions{Batch: 1}, "weight"},
	} {
		if l, err := NewLoader(context.Background(), c.srcs, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			if l != nil {
				l.Close()
			}
			t.Errorf("NewLoader(%+v) = %v; want an error mentioning %q", c.opts, err, c.want)
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

func TestOpenLoader(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	rows := testRows(t, 40)
	writeBuild(t, dirA, rows, 20, Options{})
	writeBuild(t, dirB, rows[:10], 20, Options{})
	l, err := OpenLoader(context.Background(), dirA+"=3,"+dirB+"=1", LoaderOptions{Batch: 4, Epochs: 1}, VerifyHashes())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(take(t, l, -1)); n != 50 {
		t.Errorf("one epoch of the mixture read %d rows; want 50 (its length)", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLoader(context.Background(), filepath.Join(dirA, "nope")+"=1", LoaderOptions{Batch: 4}); !errors.Is(err, ErrNoManifest) {
		t.Errorf("OpenLoader of a missing build = %v; want ErrNoManifest", err)
	}
}

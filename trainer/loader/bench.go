package loader

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/glmkit/glmkit/sharding"
)

// BenchOptions configures Bench and BenchCompare.
type BenchOptions struct {
	// Batch is the loader's batch size. Default 32.
	Batch int
	// Seconds is how long to read batches after the first. Default 5.
	Seconds float64
	// Seed selects the order. Default 0.
	Seed uint64
	// VerifyHashes makes Open hash every shard (and counts in open_ms).
	VerifyHashes bool
	// NoVerify opens the build Unchecked: no record batch checksums, no row
	// checks, to measure what they cost.
	NoVerify bool
	// Workers is the loader's number of filling goroutines. Default
	// GOMAXPROCS.
	Workers int
}

// BatchBytes is what a row of n positions occupies in a Batch: four int32
// columns and the loss mask byte per position, and the row's sep, length,
// objective and row index. Loading rates count these bytes (padding
// excluded), the bytes a trainer receives.
func BatchBytes(n int) int64 { return int64(17*n + 4 + 4 + 1 + 8) }

// BenchResult is what Bench measured. Rates count what the rows hold:
// tokens are row positions (padding excluded), bytes are BatchBytes per
// row and shard bytes what the same rows occupy in the shards.
type BenchResult struct {
	RowsPerS       float64 `json:"rows_per_s"`
	TokensPerS     float64 `json:"tokens_per_s"`
	BytesPerS      float64 `json:"bytes_per_s"`
	ShardBytesPerS float64 `json:"shard_bytes_per_s"`
	// MemcpyBytesPerS is the rate of a plain copy, on one goroutine, of as
	// many bytes as the batches delivered, from the shards' mappings, in
	// chunks of the average batch's size: the physical baseline.
	MemcpyBytesPerS float64 `json:"memcpy_bytes_per_s"`
	// FirstBatchMS runs from the start of Open to the first batch in hand;
	// OpenMS is Open's part of it.
	FirstBatchMS float64 `json:"first_batch_ms"`
	OpenMS       float64 `json:"open_ms"`
	// AllocsPerBatch is the mean number of heap allocations of the whole
	// process per batch after the first (0 once warm).
	AllocsPerBatch float64 `json:"allocs_per_batch"`
	// ShardBytesPerPosition is the build's bytes of shards per row
	// position, from the manifest.
	ShardBytesPerPosition float64 `json:"shard_bytes_per_position"`

	Batch   int     `json:"batch"`
	Workers int     `json:"workers"`
	Checked bool    `json:"checked"` // checksums and row checks on
	Seconds float64 `json:"seconds"` // measured, after the first batch
	Batches int64   `json:"batches"`
	Shards  int     `json:"shards"`
	Rows    int64   `json:"rows"`   // rows of the build
	Mapped  bool    `json:"mapped"` // false when compressed shards were decoded into memory
}

// Bench opens the build in dir and reads batches from a Loader on one
// rank for opts.Seconds, then times a plain copy of as many bytes. The
// page cache is what it is: run it twice to measure a warm cache.
func Bench(dir string, opts BenchOptions) (BenchResult, error) {
	if err := opts.defaults(); err != nil {
		return BenchResult{}, err
	}
	start := time.Now()
	r, err := sharding.Open(dir, opts.openOptions(opts.NoVerify)...)
	if err != nil {
		return BenchResult{}, err
	}
	defer r.Close()
	res := opts.result(r, time.Since(start))
	lr, err := newBenchLoader(r, opts)
	if err != nil {
		return res, err
	}
	defer lr.l.Close()
	res.FirstBatchMS = ms(time.Since(start))
	if err := lr.run(time.Duration(opts.Seconds * float64(time.Second))); err != nil {
		return res, err
	}
	return res, lr.finish(&res)
}

// BenchCompare measures the checked and the unchecked loader on the same
// build in one process, alternating between them every Slice (default
// 250 ms) until each has read for opts.Seconds, so that whatever else the
// machine does weighs on both alike. It returns the checked result and the
// unchecked one.
func BenchCompare(dir string, opts BenchOptions, slice time.Duration) (checked, unchecked BenchResult, err error) {
	if err := opts.defaults(); err != nil {
		return checked, unchecked, err
	}
	if slice <= 0 {
		slice = 250 * time.Millisecond
	}
	var lrs [2]*benchLoader
	res := [2]*BenchResult{&checked, &unchecked}
	for i := range lrs {
		start := time.Now()
		r, err := sharding.Open(dir, opts.openOptions(i == 1)...)
		if err != nil {
			return checked, unchecked, err
		}
		defer r.Close()
		*res[i] = opts.result(r, time.Since(start))
		if lrs[i], err = newBenchLoader(r, opts); err != nil {
			return checked, unchecked, err
		}
		defer lrs[i].l.Close()
		res[i].FirstBatchMS = ms(time.Since(start))
	}
	total := time.Duration(opts.Seconds * float64(time.Second))
	for lrs[0].elapsed < total || lrs[1].elapsed < total {
		for i := range lrs {
			if err := lrs[i].run(min(slice, total-lrs[i].elapsed)); err != nil {
				return checked, unchecked, err
			}
		}
	}
	for i := range lrs {
		if err := lrs[i].finish(res[i]); err != nil {
			return checked, unchecked, err
		}
	}
	return checked, unchecked, nil
}

// ErrNoBatch is Bench's error when Seconds ran out before it read a batch
// after the first: there is no rate to report.
var ErrNoBatch = errors.New("loader: bench: no batch read after the first")

// maxSeconds is the longest Seconds a time.Duration holds (+Inf became a
// negative duration, which read no batch).
const maxSeconds = float64(math.MaxInt64 / int64(time.Second))

func (opts *BenchOptions) defaults() error {
	if opts.Batch == 0 {
		opts.Batch = 32
	}
	if opts.Seconds == 0 {
		opts.Seconds = 5
	}
	if opts.Workers == 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Batch < 0 || !(opts.Seconds > 0 && opts.Seconds < maxSeconds) || opts.Workers < 0 {
		return fmt.Errorf("loader: bench: batch %d, seconds %v, workers %d; want all > 0 (and seconds finite, a time.Duration)", opts.Batch, opts.Seconds, opts.Workers)
	}
	return nil
}

func (opts *BenchOptions) openOptions(unchecked bool) []sharding.OpenOption {
	var open []sharding.OpenOption
	if opts.VerifyHashes {
		open = append(open, sharding.VerifyHashes())
	}
	if unchecked {
		open = append(open, sharding.Unchecked())
	}
	return open
}

func (opts *BenchOptions) result(r *sharding.Reader, open time.Duration) BenchResult {
	m := r.Manifest()
	return BenchResult{OpenMS: ms(open), Batch: opts.Batch, Workers: opts.Workers, Checked: r.Checked(),
		Shards: len(m.Shards), Rows: r.Len(), Mapped: r.Mapped(),
		ShardBytesPerPosition: float64(m.Totals.Bytes) / float64(max(m.Totals.Tokens, 1))}
}

// benchLoader is a loader being measured, in one or several stretches.
type benchLoader struct {
	r                   *sharding.Reader
	l                   *Loader
	b                   Batch
	elapsed             time.Duration
	batches, mallocs    uint64
	rows, tokens, bytes int64
}

// newBenchLoader starts a loader and takes its first batch.
func newBenchLoader(r *sharding.Reader, opts BenchOptions) (*benchLoader, error) {
	l, err := New(context.Background(), []Source{{Reader: r}}, Options{Batch: opts.Batch, Seed: opts.Seed, Workers: opts.Workers, Prefetch: 2 * opts.Workers})
	if err != nil {
		return nil, err
	}
	lr := &benchLoader{r: r, l: l}
	if err := l.Next(&lr.b); err != nil {
		l.Close()
		return nil, err
	}
	return lr, nil
}

// run reads batches for d.
func (lr *benchLoader) run(d time.Duration) error {
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	t0 := time.Now()
	deadline := t0.Add(d)
	for time.Now().Before(deadline) {
		if err := lr.l.Next(&lr.b); err != nil {
			return err
		}
		lr.batches++
		for _, n := range lr.b.Lens[:lr.b.B] {
			lr.tokens += int64(n)
			lr.bytes += BatchBytes(int(n))
		}
		lr.rows += int64(lr.b.B)
	}
	lr.elapsed += time.Since(t0)
	runtime.ReadMemStats(&ms1)
	lr.mallocs += ms1.Mallocs - ms0.Mallocs
	return nil
}

// finish computes the rates and times the memcpy baseline.
func (lr *benchLoader) finish(res *BenchResult) error {
	if lr.batches == 0 { // the rates would be 0 rows/s and a NaN ratio to memcpy
		return fmt.Errorf("%w in %v", ErrNoBatch, lr.elapsed)
	}
	el := lr.elapsed.Seconds()
	res.Seconds = el
	res.Batches = int64(lr.batches)
	res.AllocsPerBatch = float64(lr.mallocs) / float64(max(lr.batches, 1))
	res.RowsPerS = float64(lr.rows) / el
	res.TokensPerS = float64(lr.tokens) / el
	res.BytesPerS = float64(lr.bytes) / el
	res.ShardBytesPerS = float64(lr.tokens) * lr.r.Meta().BytesPerPosition() / el
	var err error
	res.MemcpyBytesPerS, err = memcpyRate(lr.r, int(lr.bytes/int64(lr.batches)), lr.bytes)
	return err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// memcpyRate copies r's shard bytes, chunk bytes at a time and cycling
// through the shards, into one buffer: total bytes, or for 2 seconds if
// that is sooner, but for at least half a second. It returns the rate.
func memcpyRate(r *sharding.Reader, chunk int, total int64) (float64, error) {
	shards := len(r.Manifest().Shards)
	if chunk <= 0 || shards == 0 {
		return 0, errors.New("loader: bench: nothing to copy")
	}
	dst := make([]byte, chunk)
	var copied int64
	si, off := 0, 0
	t0 := time.Now()
	for {
		el := time.Since(t0)
		if el >= time.Second/2 && (copied >= total || el >= 2*time.Second) {
			return float64(copied) / el.Seconds(), nil
		}
		src := r.ShardData(si)
		n := copy(dst, src[off:])
		copied += int64(n)
		if off += n; off >= len(src) {
			si, off = (si+1)%shards, 0
		}
	}
}

package sharding

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// BenchOptions configures BenchLoad.
type BenchOptions struct {
	// Batch is the loader's batch size. Default 32.
	Batch int
	// Seconds is how long to read batches after the first. Default 5.
	Seconds float64
	// Seed selects the order. Default 0.
	Seed uint64
	// VerifyHashes makes Open hash every shard (and counts in open_ms).
	VerifyHashes bool
}

// BenchResult is what BenchLoad measured. Rates count what the rows hold
// in the shards: tokens are row positions (padding excluded) and bytes are
// RowBytes per row, 17 per position plus the scalar columns.
type BenchResult struct {
	RowsPerS   float64 `json:"rows_per_s"`
	TokensPerS float64 `json:"tokens_per_s"`
	BytesPerS  float64 `json:"bytes_per_s"`
	// MemcpyBytesPerS is the rate of a plain copy, on one goroutine, of the
	// same shard bytes in chunks of the average batch's size: the physical
	// baseline.
	MemcpyBytesPerS float64 `json:"memcpy_bytes_per_s"`
	// FirstBatchMS runs from the start of Open to the first batch in hand;
	// OpenMS is Open's part of it.
	FirstBatchMS float64 `json:"first_batch_ms"`
	OpenMS       float64 `json:"open_ms"`

	Batch   int     `json:"batch"`
	Seconds float64 `json:"seconds"` // measured, after the first batch
	Batches int64   `json:"batches"`
	Shards  int     `json:"shards"`
	Rows    int64   `json:"rows"`   // rows of the build
	Mapped  bool    `json:"mapped"` // false when compressed shards were decoded into memory
}

// BenchLoad opens the build in dir and reads batches from a Loader on one
// rank for opts.Seconds, then times a plain copy of as many shard bytes.
// The page cache is what it is: run it twice to measure a warm cache.
func BenchLoad(dir string, opts BenchOptions) (BenchResult, error) {
	if opts.Batch == 0 {
		opts.Batch = 32
	}
	if opts.Seconds == 0 {
		opts.Seconds = 5
	}
	if opts.Batch < 0 || !(opts.Seconds > 0) {
		return BenchResult{}, fmt.Errorf("sharding: bench: batch %d, seconds %v; want both > 0", opts.Batch, opts.Seconds)
	}
	var open []OpenOption
	if opts.VerifyHashes {
		open = append(open, VerifyHashes())
	}
	start := time.Now()
	r, err := Open(dir, open...)
	if err != nil {
		return BenchResult{}, err
	}
	defer r.Close()
	res := BenchResult{OpenMS: ms(time.Since(start)), Batch: opts.Batch, Shards: len(r.shards), Rows: r.Len(), Mapped: r.Mapped()}
	l, err := NewLoader(context.Background(), []Source{{Reader: r}}, LoaderOptions{Batch: opts.Batch, Seed: opts.Seed})
	if err != nil {
		return res, err
	}
	defer l.Close()
	var b Batch
	if err := l.Next(&b); err != nil {
		return res, err
	}
	res.FirstBatchMS = ms(time.Since(start))

	var rows, tokens, bytes int64
	t0 := time.Now()
	deadline := t0.Add(time.Duration(opts.Seconds * float64(time.Second)))
	for time.Now().Before(deadline) {
		if err := l.Next(&b); err != nil {
			return res, err
		}
		res.Batches++
		for _, i := range b.Rows[:b.B] {
			v, err := r.Row(i)
			if err != nil {
				return res, err
			}
			tokens += int64(len(v.Input))
			bytes += v.Bytes()
		}
		rows += int64(b.B)
	}
	el := time.Since(t0).Seconds()
	res.Seconds = el
	res.RowsPerS = float64(rows) / el
	res.TokensPerS = float64(tokens) / el
	res.BytesPerS = float64(bytes) / el
	if res.Batches > 0 {
		res.MemcpyBytesPerS, err = memcpyRate(r, int(bytes/res.Batches), bytes)
	}
	return res, err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// memcpyRate copies r's shard bytes, chunk bytes at a time and cycling
// through the shards, into one buffer: total bytes, or for 2 seconds if
// that is sooner, but for at least half a second. It returns the rate.
func memcpyRate(r *Reader, chunk int, total int64) (float64, error) {
	if chunk <= 0 || len(r.shards) == 0 {
		return 0, errors.New("sharding: bench: nothing to copy")
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
		src := r.shards[si].data
		n := copy(dst, src[off:])
		copied += int64(n)
		if off += n; off >= len(src) {
			si, off = (si+1)%len(r.shards), 0
		}
	}
}

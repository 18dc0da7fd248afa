package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/glmkit/glmkit/cmd/internal/cli"
	"github.com/glmkit/glmkit/trainer/loader"
)

const benchLoadHelp = `Usage: glmprep bench-load DIR [--batch 32] [--seconds 5] [--workers N] [--no-verify | --compare] [--verify]

Measures the zero-copy loader on a build: the time to open every shard and
get the first batch, then batches of --batch rows in a shuffled order for
--seconds. The last line is one JSON object with rows_per_s, tokens_per_s,
bytes_per_s (what the batches deliver: 17 bytes per row position, as int32
ids and positions and a loss mask byte), shard_bytes_per_s (what those rows
occupy in the shards), memcpy_bytes_per_s (a plain copy of as many bytes
from the shards' mappings, the physical baseline), first_batch_ms, open_ms
and allocs_per_batch.

The loader checks what it reads, as training does (record batch checksums
on first touch, each row's invariants); --no-verify turns that off to
measure its cost, and --compare runs the checked and the unchecked loader
in one process, alternating every 250 ms for --seconds each, so that the
rest of the machine's load weighs on both alike: its last line is
{"checked": …, "unchecked": …, "ratio": checked/unchecked bytes_per_s}.
--verify also hashes every shard with sha256 at open (not with
--no-verify). A --seconds too short to read one batch after the first is an
error, not a report of 0 rows/s.

Examples:
  glmprep bench-load out/wiki --batch 32 --seconds 5
  glmprep bench-load out/wiki --no-verify
  glmprep bench-load out/wiki --compare
`

// Bounds of bench-load's flags: a day of reading (a longer time overflows
// a time.Duration well after that, and ran no batch), and workers far past
// any machine's CPUs (each keeps batches filled: 100000 took 13.8 GB).
const (
	maxBenchSeconds = 86400
	maxBenchWorkers = 1024
)

func cmdBenchLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.FlagSet("glmprep bench-load", benchLoadHelp, stdout)
	batch := fs.Int("batch", 32, "rows per batch")
	seconds := fs.Float64("seconds", 5, "how long to read batches, in seconds (> 0, at most a day)")
	seed := fs.Uint64("seed", 0, "shuffle seed")
	workers := fs.Int("workers", 0, "loader goroutines filling batches, at most 1024 (default: every CPU)")
	verify := fs.Bool("verify", false, "hash every shard with sha256 at open (counted in open_ms)")
	noVerify := fs.Bool("no-verify", false, "turn off the loader's checksums and row checks")
	compare := fs.Bool("compare", false, "measure the checked and the unchecked loader, alternating")
	dir, err := parseDir(fs, args)
	if err != nil {
		return err
	}
	if *batch < 1 {
		return cli.Usagef(fs, "--batch %d; want ≥ 1", *batch)
	}
	if !(*seconds > 0 && *seconds <= maxBenchSeconds) { // NaN too; 0 is no default (it ran 5 s), Inf no endless run (it read 0 batches)
		return cli.Usagef(fs, "--seconds %v; want 0 < s ≤ %d", *seconds, maxBenchSeconds)
	}
	if *workers < 0 || *workers > maxBenchWorkers {
		return cli.Usagef(fs, "--workers %d; want 1..%d (or 0: one per CPU)", *workers, maxBenchWorkers)
	}
	if *compare && *noVerify {
		return cli.Usagef(fs, "--compare measures both; drop --no-verify")
	}
	if *verify && *noVerify {
		return cli.Usagef(fs, "--verify hashes the shards, --no-verify turns the loader's checks off: give one of them")
	}
	opts := loader.BenchOptions{Batch: *batch, Seconds: *seconds, Seed: *seed, Workers: *workers, VerifyHashes: *verify, NoVerify: *noVerify}
	var out any
	if *compare {
		c, u, err := loader.BenchCompare(dir, opts, 0)
		if err != nil {
			return benchError(err, *seconds)
		}
		report(stderr, dir, c)
		report(stderr, dir, u)
		ratio := c.BytesPerS / u.BytesPerS
		fmt.Fprintf(stderr, "%s: checked / unchecked = %.3f\n", dir, ratio)
		out = struct {
			Checked   loader.BenchResult `json:"checked"`
			Unchecked loader.BenchResult `json:"unchecked"`
			Ratio     float64            `json:"ratio"`
		}{c, u, ratio}
	} else {
		res, err := loader.Bench(dir, opts)
		if err != nil {
			return benchError(err, *seconds)
		}
		report(stderr, dir, res)
		out = res
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

// benchError names --seconds when it was too short to measure anything.
func benchError(err error, seconds float64) error {
	if errors.Is(err, loader.ErrNoBatch) {
		return fmt.Errorf("--seconds %v: %w; give a longer --seconds", seconds, err)
	}
	return err
}

func report(w io.Writer, dir string, res loader.BenchResult) {
	checked := "checked"
	if !res.Checked {
		checked = "unchecked"
	}
	fmt.Fprintf(w, "%s (%s, %d workers): %.0f rows/s, %.1fM tokens/s, %s/s delivered (memcpy of as many bytes: %s/s, %.0f%%), %s/s of shards (%.2f bytes per position), first batch in %.1f ms, %.1f allocations per batch\n",
		dir, checked, res.Workers, res.RowsPerS, res.TokensPerS/1e6, humanBytes(res.BytesPerS), humanBytes(res.MemcpyBytesPerS),
		100*res.BytesPerS/res.MemcpyBytesPerS, humanBytes(res.ShardBytesPerS), res.ShardBytesPerPosition, res.FirstBatchMS, res.AllocsPerBatch)
}

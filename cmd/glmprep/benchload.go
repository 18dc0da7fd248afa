package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/glmkit/glmkit/cmd/internal/cli"
	"github.com/glmkit/glmkit/sharding"
)

const benchLoadHelp = `Usage: glmprep bench-load DIR [--batch 32] [--seconds 5] [--verify]

Measures the zero-copy loader on a build: the time to open every shard and
get the first batch, then batches of --batch rows in a shuffled order for
--seconds. The last line is one JSON object with rows_per_s, tokens_per_s,
bytes_per_s, memcpy_bytes_per_s (a plain copy of the same bytes, the
physical baseline), first_batch_ms and open_ms.

Example:
  glmprep bench-load out/wiki --batch 32 --seconds 5
`

func cmdBenchLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.FlagSet("bench-load", benchLoadHelp, stderr)
	batch := fs.Int("batch", 32, "rows per batch")
	seconds := fs.Float64("seconds", 5, "how long to read batches")
	seed := fs.Uint64("seed", 0, "shuffle seed")
	verify := fs.Bool("verify", false, "hash every shard at open (counted in open_ms)")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("%w: bench-load needs one DIR", cli.ErrUsage)
	}
	res, err := sharding.BenchLoad(pos[0], sharding.BenchOptions{Batch: *batch, Seconds: *seconds, Seed: *seed, VerifyHashes: *verify})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s: %.0f rows/s, %.1fM tokens/s, %s/s (memcpy of the same bytes: %s/s, %.0f%%), first batch in %.1f ms\n",
		pos[0], res.RowsPerS, res.TokensPerS/1e6, humanBytes(res.BytesPerS), humanBytes(res.MemcpyBytesPerS),
		100*res.BytesPerS/res.MemcpyBytesPerS, res.FirstBatchMS)
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

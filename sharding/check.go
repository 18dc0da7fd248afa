package sharding

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/zeebo/xxh3"

	"github.com/glmkit/glmkit/masking"
)

// end is the offset just past a block.
func (b block) end() int64 { return b.offset + b.meta + b.body }

// openChecks runs the checksum checks of Open: the bytes before the first
// and after the last record batch, at once (they are small), and for a
// shard that was decoded into memory (compressed), every record batch too,
// since decoding read them all already.
func (s *shard) openChecks(decoded bool) error {
	if len(s.sums.batches) != len(s.blocks) {
		return fmt.Errorf("the manifest has %d record batch checksums; the file holds %d record batches (replaced?)", len(s.sums.batches), len(s.blocks))
	}
	for k := 1; k < len(s.blocks); k++ {
		if s.blocks[k].offset != s.blocks[k-1].end() {
			return fmt.Errorf("record batch %d starts at byte %d, not where batch %d ends (%d)", k, s.blocks[k].offset, k-1, s.blocks[k-1].end())
		}
	}
	first, last := s.blocks[0].offset, s.blocks[len(s.blocks)-1].end()
	if first < 8 || last > int64(len(s.data)) || first > last {
		return fmt.Errorf("record batches span bytes %d to %d of %d", first, last, len(s.data))
	}
	if got := xxh3.Hash(s.data[:first]); got != s.sums.head {
		return fmt.Errorf("checksum of bytes 0–%d (schema and dictionary) is %016x; the manifest says %016x (corrupt or replaced)", first, got, s.sums.head)
	}
	if got := xxh3.Hash(s.data[last:]); got != s.sums.tail {
		return fmt.Errorf("checksum of bytes %d–%d (footer) is %016x; the manifest says %016x (corrupt or replaced)", last, len(s.data), got, s.sums.tail)
	}
	if decoded {
		for k := range s.batches {
			if err := s.check(k); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *shard) setAllOK() {
	for k := range s.ok {
		s.ok[k].Store(true)
	}
}

// check checks record batch k of the shard, once: its checksum, or for a
// shard without checksums (format 1) the whole file's sha256.
func (s *shard) check(k int) error {
	if s.ok[k].Load() {
		return nil
	}
	return s.checkSlow(k)
}

func (s *shard) checkSlow(k int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ok[k].Load() {
		return nil
	}
	key := k
	if s.whole {
		key = -1
	}
	if err := s.bad[key]; err != nil {
		return err
	}
	var err error
	if s.whole {
		h := sha256.Sum256(s.data)
		if got := hex.EncodeToString(h[:]); got != s.sha256 {
			err = fmt.Errorf("sharding: %s: sha256 %s; the manifest says %s (corrupt or replaced; format 1 shards have no record batch checksums, so the whole file is hashed on first read)", s.path, got, s.sha256)
		} else {
			s.setAllOK()
		}
	} else {
		blk := s.batches[k].blk
		b := s.blocks[blk]
		if got, want := xxh3.Hash(s.data[b.offset:b.end()]), s.sums.batches[blk]; got != want {
			err = fmt.Errorf("sharding: %s: record batch %d (shard rows %d–%d, bytes %d–%d): checksum %016x; the manifest says %016x (corrupt or replaced)",
				s.path, blk, s.bstarts[k], s.bstarts[k+1]-1, b.offset, b.end(), got, want)
		} else {
			s.ok[k].Store(true)
		}
	}
	if err != nil {
		if s.bad == nil {
			s.bad = make(map[int]error)
		}
		s.bad[key] = err
	}
	return err
}

// rowError is a failed row check, naming the shard, the record batch, the
// row inside it and in the shard, and the global row.
func (r *Reader) rowError(l loc, global int64, format string, args ...any) error {
	s := &r.shards[l.shard]
	return fmt.Errorf("sharding: %s: record batch %d, row %d (shard row %d, global row %d): %s",
		s.path, s.batches[l.batch].blk, l.row, s.bstarts[l.batch]+int64(l.row), global, fmt.Sprintf(format, args...))
}

// checkRow checks the invariants of a row that every reader relies on and
// that cost one pass over the row: sep inside the row, ids inside the
// vocabulary, positions inside Part A, block positions inside Part B, and
// n_source below the row's length and at most seq_len.
func (r *Reader) checkRow(l loc, global int64, v *RowView) error {
	return r.checkMax(l, global, v, max(v.Input.maxOf(), v.Target.maxOf()), v.Pos.maxOf(), v.BlockPos.maxOf())
}

// checkMax checks a row given the largest of its ids, positions and block
// positions (as unsigned values, so that a negative one is large).
func (r *Reader) checkMax(l loc, global int64, v *RowView, ids, pos, block uint32) error {
	n, sep := v.Len(), v.Sep
	switch {
	case sep < 2 || int(sep) >= n:
		return r.rowError(l, global, "sep %d outside the row's [2, %d)", sep, n)
	case ids >= uint32(r.vocab):
		return r.rowError(l, global, "token id %d outside the vocabulary [0, %d)", int32(ids), r.vocab)
	case pos >= uint32(sep):
		return r.rowError(l, global, "position %d outside Part A [0, sep %d)", int32(pos), sep)
	case block > uint32(n-int(sep)):
		return r.rowError(l, global, "block position %d outside Part B (%d positions)", int32(block), n-int(sep))
	case v.NSource < 1 || int(v.NSource) >= n:
		return r.rowError(l, global, "n_source %d outside [1, %d)", v.NSource, n)
	case v.NSource > r.seqLen:
		return r.rowError(l, global, "n_source %d past seq_len %d", v.NSource, r.seqLen)
	}
	return nil
}

// Counts are what Check counted in the shards.
type Counts struct {
	Rows         int64
	Tokens       int64 // row positions
	SourceTokens int64 // Σ n_source
	LossTokens   int64 // Σ loss mask
	// Objectives counts rows, their source tokens and their masked tokens
	// (the tokens of their spans) per objective.
	Objectives [masking.NumObjectives]struct{ Rows, SourceTokens, Masked int64 }
}

func (c *Counts) add(o *Counts) {
	c.Rows += o.Rows
	c.Tokens += o.Tokens
	c.SourceTokens += o.SourceTokens
	c.LossTokens += o.LossTokens
	for i := range c.Objectives {
		c.Objectives[i].Rows += o.Objectives[i].Rows
		c.Objectives[i].SourceTokens += o.Objectives[i].SourceTokens
		c.Objectives[i].Masked += o.Objectives[i].Masked
	}
}

// Check reads every row of the build: every record batch's checksum (or a
// format 1 shard's sha256), every row's invariants as Row checks them,
// and each shard's row, token, loss token and source token counts against
// the manifest. It returns the counts. It checks even an Unchecked Reader.
// Shards are read in parallel; the error returned is that of the first
// failing shard in manifest order. Check stops early when ctx is done.
func (r *Reader) Check(ctx context.Context) (Counts, error) {
	return r.scan(ctx, nil)
}

// Verify does what Check does, and returns its counts, and also checks
// every row with masking.Sample.Validate: the whole GLM layout, with the
// build's special ids and task-mask setting (Part A and Part B, blanks,
// spans, positions, block positions, loss mask, lengths). The error names
// the file, the row inside it and the global row.
func (r *Reader) Verify(ctx context.Context) (Counts, error) {
	ids, task := r.manifest.Meta.Special, r.manifest.Meta.Masking.TaskMask
	return r.scan(ctx, func(s *masking.Sample) error { return s.Validate(ids, task) })
}

func (r *Reader) scan(ctx context.Context, validate func(*masking.Sample) error) (Counts, error) {
	if r.closed {
		return Counts{}, ErrClosed
	}
	counts := make([]Counts, len(r.shards))
	errs := make([]error, len(r.shards))
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(r.shards)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() && ctx.Err() == nil {
				si := int(next.Add(1) - 1)
				if si >= len(r.shards) {
					return
				}
				if errs[si] = r.scanShard(ctx, si, &counts[si], validate); errs[si] != nil {
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	var total Counts
	for si := range r.shards {
		if errs[si] != nil {
			return total, errs[si]
		}
		total.add(&counts[si])
	}
	return total, ctx.Err()
}

// masked is the number of source tokens row v's spans hold: Part B's
// positions but the eop targets that end the spans (a span of k tokens is
// sop and k tokens, predicting k tokens and eop; the suffix layout has no
// eop).
func masked(v *RowView, eop int32) int64 {
	n, sep := v.Len(), int(v.Sep)
	if sep < 0 || sep > n {
		return 0 // checkRow refused it
	}
	eops := 0
	for i := sep; i < n; i++ {
		if v.Target.At(i) == eop {
			eops++
		}
	}
	return int64(n - sep - eops)
}

func (r *Reader) scanShard(ctx context.Context, si int, c *Counts, validate func(*masking.Sample) error) error {
	s := &r.shards[si]
	sf := &r.manifest.Shards[si]
	var smp masking.Sample
	for k := range s.batches {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := s.check(k); err != nil {
			return err
		}
		b := &s.batches[k]
		for j := range len(b.offs) - 1 {
			l := loc{si, k, j}
			global := r.starts[si] + s.bstarts[k] + int64(j)
			v := r.viewAt(l, global)
			if err := r.checkRow(l, global, &v); err != nil {
				return err
			}
			if validate != nil {
				v.sample(&smp)
				if err := validate(&smp); err != nil {
					return fmt.Errorf("sharding: %s: row %d (global row %d): %w", s.path, s.bstarts[k]+int64(j), global, err)
				}
			}
			c.Rows++
			c.Tokens += int64(v.Len())
			c.SourceTokens += int64(v.NSource)
			c.LossTokens += int64(v.LossMask.Count())
			c.Objectives[v.Objective].Rows++
			c.Objectives[v.Objective].SourceTokens += int64(v.NSource)
			c.Objectives[v.Objective].Masked += masked(&v, r.manifest.Meta.Special.EOP)
		}
	}
	if c.Rows != sf.Rows || c.Tokens != sf.Tokens || c.LossTokens != sf.LossTokens || c.SourceTokens != sf.SourceTokens {
		return fmt.Errorf("sharding: %s: %d rows, %d tokens, %d loss and %d source tokens; the manifest says %d, %d, %d and %d",
			s.path, c.Rows, c.Tokens, c.LossTokens, c.SourceTokens, sf.Rows, sf.Tokens, sf.LossTokens, sf.SourceTokens)
	}
	return nil
}

// countBits counts the ones among bits off … off+n−1 of src.
func countBits(src []byte, off, n int) int {
	c := 0
	for n > 0 && off&7 != 0 {
		c += int(src[off>>3] >> (off & 7) & 1)
		off, n = off+1, n-1
	}
	q := off >> 3
	for ; n >= 8; q, n = q+1, n-8 {
		c += bits.OnesCount8(src[q])
	}
	if n > 0 {
		c += bits.OnesCount8(src[q] & (1<<n - 1))
	}
	return c
}

// CheckShardOf checks every record batch of the shard that holds global
// row i (see Check), for a reader that shows a few rows and checks what it
// shows. Counts are checked against the manifest.
func (r *Reader) CheckShardOf(i int64) error {
	if i < 0 || i >= r.rows {
		return r.rangeError(i)
	}
	si := r.shardOf(i)
	var c Counts
	return r.scanShard(context.Background(), si, &c, nil)
}

// Package loader is glmkit's training input: it serves the rows of one or
// more shard builds (read with the sharding package's zero-copy Reader) as
// padded batches, in an exact pseudorandom order that a checkpoint saves
// and restores to the row, for any number of data-parallel ranks. It owns
// the order (Perm, a permutation computed an element at a time), the
// mixture of datasets by weight, the Batch that trainer.Model.Forward takes,
// and the loader's benchmark (glmprep bench-load).
//
// It lives under trainer because it is the training side of the shards:
// sharding is the file format and knows nothing of batches, epochs or
// ranks, and a trainer (glmkit's, or another Go program's) is what reads
// batches. It imports sharding and masking, and not arrow-go.
package loader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/glmkit/glmkit/internal/sysmem"
	"github.com/glmkit/glmkit/sharding"
)

// Source is one dataset of a Loader: an open Reader and its weight in the
// mixture (relative; ignored when there is one source).
type Source struct {
	Reader *sharding.Reader
	Weight float64
}

// MixEntry is one dataset of a mixture spec: a build directory and its
// relative weight.
type MixEntry struct {
	Dir    string
	Weight float64
}

// ParseMix parses a mixture spec, "dirA=0.7,dirB=0.3": build directories
// with relative weights, separated by commas; a directory without "=w" has
// weight 1, so a single directory is a spec too. Directory names may not
// contain commas; the weight follows the last "=".
func ParseMix(spec string) ([]MixEntry, error) {
	var mix []MixEntry
	for _, f := range strings.Split(spec, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, fmt.Errorf("loader: mixture %q has an empty entry", spec)
		}
		e := MixEntry{Dir: f, Weight: 1}
		if i := strings.LastIndexByte(f, '='); i >= 0 {
			w, err := strconv.ParseFloat(f[i+1:], 64)
			if err != nil || !(w > 0) || math.IsInf(w, 0) {
				return nil, fmt.Errorf("loader: mixture %q: weight of %q is %q; want a number > 0", spec, f[:i], f[i+1:])
			}
			e.Dir, e.Weight = f[:i], w
		}
		if e.Dir == "" {
			return nil, fmt.Errorf("loader: mixture %q: entry %q names no directory", spec, f)
		}
		mix = append(mix, e)
	}
	return mix, nil
}

// Options configures a Loader. Only Batch is required.
type Options struct {
	// Batch is B, the rows of each batch on this rank. Required, > 0.
	Batch int
	// Rank and World place this loader among World data-parallel ranks,
	// 0 ≤ Rank < World. Default World 1.
	Rank, World int
	// Seed selects the permutations (the global order). Part of the state.
	Seed uint64
	// Epochs bounds the stream to Epochs loader epochs, after which Next
	// returns io.EOF; 0 (the default) is unbounded: Next rolls over into the
	// next epoch, with a new permutation, and batches never come up short.
	Epochs int
	// DropLast drops the last global batch of a bounded stream when it is
	// short, so that every rank returns io.EOF at the same step; otherwise
	// that batch is shared out as evenly as the positions allow, some ranks
	// getting a shorter batch and others io.EOF one step early.
	DropLast bool
	// AllMaskEpochs treats each of the N mask epochs of a build written with
	// mask_epochs N > 1 as a row of its own, all N·samples rows shuffled
	// together in each epoch. By default an epoch visits each sample once,
	// using its mask copy epoch mod N (row i·N + epoch mod N of the build),
	// so N epochs see every mask once and no epoch sees a sample twice.
	AllMaskEpochs bool
	// Prefetch is the number of batches prepared ahead of Next. Default 2.
	Prefetch int
	// Workers is the number of goroutines that fill batches, each a whole
	// batch at a time (batches are still returned in order). Default
	// GOMAXPROCS/2, between 1 and 4: a trainer needs far fewer rows per
	// second than one worker gathers, and bench-load uses every core.
	Workers int
}

// A Loader serves fixed-size, padded batches of rows in an exact
// pseudorandom order, for one rank of World, and can save and restore its
// position exactly.
//
// The global order is a stream of positions g = 0, 1, 2, …; a loader epoch
// is epochLen = Σ units positions (units: rows, or samples when each epoch
// reads one mask copy; see Options.AllMaskEpochs). With one dataset,
// epoch e is NewPerm(units, key(seed, e)), a permutation of every unit; with
// several, each MixBlock positions take exactly their weight's share of each
// dataset, and each dataset runs through its own permutations. The stream is
// cut into global batches of World·B positions; rank r takes positions
// g+r, g+r+World, …, g+r+(B−1)·World of the global batch starting at g.
// Batches may straddle an epoch boundary, so that every epoch visits each
// row once and every batch of an unbounded stream is full. With several
// datasets a loader epoch is still Σ units positions, the size of one pass
// over all of them, but each dataset advances through its own epochs at the
// pace its weight sets. Batch.Rows holds each row's index in its own
// dataset's Reader.
//
// The state is the position g of the next global batch (as an epoch and a
// position in it), with the seed, the datasets' fingerprints and weights and
// the mask-epoch mode, which must match on Restore. It does not depend on
// World or B: a run resumed with another number of ranks (or batch size)
// re-partitions the rest of the stream, and no row is repeated or skipped.
//
// A Loader is not safe for concurrent use: Next, State and Restore belong
// to one goroutine. Close may be called from any goroutine, once the
// others have returned. The Loader reads its Readers until it is closed;
// close it first.
type Loader struct {
	srcs    []Source
	owned   bool // Close closes the readers (OpenLoader)
	ord     order
	opts    Options
	parts   []uint64
	pad     int32
	end     uint64 // first position past the stream (math.MaxUint64 if unbounded)
	capHint int    // B × longest row: the batch capacity that never grows

	g   uint64 // position of the next global batch, as seen by Next
	gen uint64 // bumped by Restore; slots of an older generation are dropped

	// The slots cycle: free → (assigned a position by the dispatcher) →
	// work, to a worker, and pending, in position order, to Next → free.
	free, work, pending chan *slot
	seek                chan seekReq
	quit                chan struct{}
	exited              chan struct{} // closed once the dispatcher and every worker have returned
	exitErr             error         // set by the dispatcher before it returns
	closeOnce           sync.Once
	closed              bool
}

type slot struct {
	b    Batch
	gen  uint64
	g    uint64 // position of this batch
	next uint64 // position after this batch
	err  error
	done chan struct{} // a worker filled the slot
}

type seekReq struct{ g, gen uint64 }

// New returns a Loader over sources, which must be non-empty builds
// of the same tokenizer (sha256, vocabulary size and special ids), in
// format 1 or 2 (a mixture may combine them). Its goroutines (a dispatcher
// and opts.Workers workers) run until Close, or until ctx is done, after
// which Next returns ctx's error. The Loader does not close the Readers.
func New(ctx context.Context, sources []Source, opts Options) (*Loader, error) {
	if err := opts.check(len(sources)); err != nil {
		return nil, err
	}
	l := &Loader{srcs: sources, opts: opts, ord: order{seed: opts.Seed}, end: math.MaxUint64}
	if err := l.plan(); err != nil {
		return nil, err
	}
	l.start(ctx)
	return l, nil
}

// check fills in the defaults and checks the options.
func (opts *Options) check(datasets int) error {
	if opts.World == 0 {
		opts.World = 1
	}
	if opts.Prefetch == 0 {
		opts.Prefetch = 2
	}
	if opts.Workers == 0 {
		opts.Workers = min(max(runtime.GOMAXPROCS(0)/2, 1), 4)
	}
	switch {
	case datasets == 0:
		return errors.New("loader: loader has no datasets")
	case opts.Batch <= 0:
		return fmt.Errorf("loader: batch size %d; want > 0", opts.Batch)
	case opts.World < 1 || opts.Rank < 0 || opts.Rank >= opts.World:
		return fmt.Errorf("loader: rank %d of world %d; want 0 ≤ rank < world", opts.Rank, opts.World)
	case opts.Epochs < 0:
		return fmt.Errorf("loader: epochs %d; want ≥ 0 (0: unbounded)", opts.Epochs)
	case opts.Prefetch < 1:
		return fmt.Errorf("loader: prefetch %d; want ≥ 1", opts.Prefetch)
	case opts.Workers < 1:
		return fmt.Errorf("loader: workers %d; want ≥ 1", opts.Workers)
	}
	return nil
}

// plan checks the datasets and sets up the order: each dataset's units
// (rows, or samples when an epoch reads one mask copy), the weights in
// parts of MixBlock, the end of a bounded stream.
func (l *Loader) plan() error {
	srcs, opts := l.srcs, &l.opts
	first := srcs[0].Reader.Meta()
	l.pad = first.Special.Pad
	maxLen := 0
	weights := make([]float64, len(srcs))
	for d, s := range srcs {
		r := s.Reader
		if r == nil {
			return fmt.Errorf("loader: dataset %d has no reader", d)
		}
		m := r.Meta()
		if diff := sharding.TokenizerDiff(first, m); diff != "" {
			return fmt.Errorf("loader: %s and %s were built with different tokenizers (%s): their ids mean different text, so they cannot be mixed",
				srcs[0].Reader.Dir(), r.Dir(), diff)
		}
		ds := dsOrder{units: uint64(r.Len()), copies: 1}
		if n := uint64(m.MaskEpochs); n > 1 && !opts.AllMaskEpochs {
			if ds.units%n != 0 {
				return fmt.Errorf("loader: %s: %d rows is not a multiple of its %d mask epochs", r.Dir(), r.Len(), n)
			}
			ds.units /= n
			ds.copies = n
		}
		if ds.units == 0 {
			return fmt.Errorf("loader: %s has no rows (or its reader is closed)", r.Dir())
		}
		l.ord.ds = append(l.ord.ds, ds)
		l.ord.epochLen += ds.units
		maxLen = max(maxLen, r.MaxRowLen())
		weights[d] = s.Weight
		if len(srcs) == 1 {
			weights[d] = 1
		}
	}
	var err error
	if l.parts, err = quantize(weights); err != nil {
		return fmt.Errorf("loader: %w", err)
	}
	if len(srcs) > 1 {
		l.ord.mix = newMixer(opts.Seed, l.parts)
	}
	if opts.Epochs > 0 {
		if l.ord.epochLen > math.MaxUint64/uint64(opts.Epochs) {
			return fmt.Errorf("loader: %d epochs of %d rows overflow", opts.Epochs, l.ord.epochLen)
		}
		l.end = uint64(opts.Epochs) * l.ord.epochLen
	}
	l.capHint = opts.Batch * maxLen
	return l.fits(maxLen)
}

// fits says whether the batches the loader keeps (one per slot, B rows of
// up to maxLen positions) and its workers' row views fit in the machine's
// memory: a batch size past it is an error here, not the kernel's OOM kill
// once the slots fill.
func (l *Loader) fits(maxLen int) error {
	total, where := sysmem.Total()
	if total <= 0 {
		return nil
	}
	B, slots, workers := float64(l.opts.Batch), float64(l.opts.Prefetch+l.opts.Workers-1), float64(l.opts.Workers)
	const perPos, perRow = 4*4 + 1, 4 + 4 + 1 + 8 // the five columns; Sep, Lens, Objective, Rows
	perView := float64(unsafe.Sizeof(sharding.RowView{}) + 8 + 8)
	batch := B * (float64(maxLen)*perPos + perRow)
	if need := slots*batch + workers*B*perView; need > float64(total) {
		return fmt.Errorf("loader: a batch of %d rows of up to %d positions takes %.2f GiB, and the loader keeps %d of them filled (%.2f GiB with its row views): more than the %.2f GiB of %s (lower the batch size; gradient accumulation keeps the rows per step)",
			l.opts.Batch, maxLen, batch/(1<<30), int(slots), need/(1<<30), float64(total)/(1<<30), where)
	}
	return nil
}

// start makes the slots and starts the dispatcher and the workers.
func (l *Loader) start(ctx context.Context) {
	slots := l.opts.Prefetch + l.opts.Workers - 1
	l.free = make(chan *slot, slots)
	l.work = make(chan *slot, slots)
	l.pending = make(chan *slot, slots)
	l.seek = make(chan seekReq, 1)
	l.quit = make(chan struct{})
	l.exited = make(chan struct{})
	for range slots {
		l.free <- &slot{done: make(chan struct{}, 1)}
	}
	var wg sync.WaitGroup
	wg.Add(1 + l.opts.Workers)
	go func() {
		defer wg.Done()
		l.dispatch(ctx)
	}()
	for range l.opts.Workers {
		f := l.newFiller()
		go func() {
			defer wg.Done()
			l.worker(ctx, f)
		}()
	}
	go func() {
		wg.Wait()
		close(l.exited)
	}()
}

// Open opens the builds of a mixture spec (see ParseMix) with the given
// sharding.OpenOptions and returns a Loader over them that closes them
// when it is closed.
func Open(ctx context.Context, spec string, opts Options, open ...sharding.OpenOption) (*Loader, error) {
	mix, err := ParseMix(spec)
	if err != nil {
		return nil, err
	}
	srcs := make([]Source, 0, len(mix))
	closeAll := func() {
		for _, s := range srcs {
			s.Reader.Close()
		}
	}
	for _, e := range mix {
		r, err := sharding.Open(e.Dir, open...)
		if err != nil {
			closeAll()
			return nil, err
		}
		srcs = append(srcs, Source{Reader: r, Weight: e.Weight})
	}
	l, err := New(ctx, srcs, opts)
	if err != nil {
		closeAll()
		return nil, err
	}
	l.owned = true
	return l, nil
}

// filler gathers rows into batches; each worker has its own.
type filler struct {
	views []sharding.RowView
	ds    []int
	rows  []int64
	at    int // the row of the batch being located or copied, for faultError
	mix   *mixCache
}

func (l *Loader) newFiller() *filler {
	B := l.opts.Batch
	f := &filler{views: make([]sharding.RowView, B), ds: make([]int, B), rows: make([]int64, B)}
	if l.ord.mix != nil {
		f.mix = l.ord.mix.newCache()
	}
	return f
}

// atEnd reports whether the global batch at g is past the stream.
func (l *Loader) atEnd(g uint64) bool {
	stride := uint64(l.opts.World) * uint64(l.opts.Batch)
	return g >= l.end || l.opts.DropLast && l.end-g < stride
}

// prefetchRows is how many rows ahead of the one it copies fill asks the
// processor to fetch.
const prefetchRows = 2

// fill gathers this rank's rows of the global batch at g into b and
// returns the position of the next global batch. It reads each row
// straight from the shard's mapping into b (sharding.RowView.Widen), which
// widens narrow columns to int32 and, when the Reader checks, checks the
// row in the same pass.
func (l *Loader) fill(f *filler, b *Batch, g uint64) (uint64, error) {
	B, world, rank := l.opts.Batch, uint64(l.opts.World), uint64(l.opts.Rank)
	if l.atEnd(g) {
		return g, io.EOF
	}
	n, T := 0, 0
	for j := range B {
		p := g + uint64(j)*world + rank
		if p >= l.end {
			break
		}
		d, row := l.ord.at(p, f.mix)
		l.srcs[d].Reader.Prefetch(row)
		f.ds[j], f.rows[j] = d, row
		n++
	}
	for j := range n {
		f.at = j
		v, err := l.srcs[f.ds[j]].Reader.View(f.rows[j])
		if err != nil {
			return g, err
		}
		f.views[j] = v
		T = max(T, v.Len())
	}
	if n == 0 {
		return g, io.EOF
	}
	b.resize(n, T, l.capHint)
	for j := range min(n, prefetchRows) {
		f.views[j].Prefetch()
	}
	for j := range n {
		if j+prefetchRows < n {
			f.views[j+prefetchRows].Prefetch()
		}
		f.at = j
		v := &f.views[j]
		lo, L, hi := j*T, j*T+v.Len(), (j+1)*T
		if err := v.Widen(b.rowAt(lo, L)); err != nil {
			return g, err
		}
		b.pad(L, hi, l.pad)
		b.Sep[j] = v.Sep
		b.Lens[j] = int32(v.Len())
		b.Objective[j] = v.Objective
		b.Rows[j] = f.rows[j]
	}
	return g + world*uint64(B), nil
}

// guardedFill is fill, with a memory fault while it reads a mapping (a
// shard file truncated or rewritten in place while it is mapped) turned
// into an error naming the shard and row it was reading. Other panics go
// on.
func (l *Loader) guardedFill(f *filler, b *Batch, g uint64) (next uint64, err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		fault, ok := r.(interface{ Addr() uintptr })
		if !ok {
			panic(r)
		}
		next, err = g, l.faultError(f, fault.Addr())
	}()
	return l.fill(f, b, g)
}

// faultError says which row of which build's shard faulted.
func (l *Loader) faultError(f *filler, addr uintptr) error {
	src, row := l.srcs[f.ds[f.at]].Reader, f.rows[f.at]
	shard, _, err := src.Locate(row)
	if err != nil {
		shard = "a shard"
	}
	return fmt.Errorf("loader: %s of %s changed while it was mapped (truncated or rewritten in place; glmprep only renames complete shards into place): a fault at %#x reading row %d",
		shard, src.Dir(), addr, row)
}

// dispatch hands free slots their positions, in order, to the workers and
// to Next, until the Loader is closed or ctx is done. A seek (from Restore)
// moves it to another position and generation.
func (l *Loader) dispatch(ctx context.Context) {
	var g, gen uint64
	stride := uint64(l.opts.World) * uint64(l.opts.Batch)
	for {
		select {
		case <-ctx.Done():
			l.exitErr = ctx.Err()
			return
		case <-l.quit:
			l.exitErr = ErrClosed
			return
		case r := <-l.seek:
			g, gen = r.g, r.gen
		case s := <-l.free:
			s.gen, s.g = gen, g
			if !l.atEnd(g) {
				g += stride
			}
			// Neither blocks: each holds at most every slot.
			l.work <- s
			l.pending <- s
		}
	}
}

// worker fills the slots it is given.
func (l *Loader) worker(ctx context.Context, f *filler) {
	// The workers are the only readers of the shards' mappings: a shard
	// file cut short under them faults, and that fault is an error of the
	// batch (faultError) instead of a SIGBUS that kills the process.
	debug.SetPanicOnFault(true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.quit:
			return
		case s := <-l.work:
			s.next, s.err = l.guardedFill(f, &s.b, s.g)
			s.done <- struct{}{}
		}
	}
}

// Next sets b to this rank's next batch: b.B rows (Batch rows, fewer only
// at the end of a bounded stream) padded to b.T, the longest of them. It
// does not copy: b takes the slices of a batch a worker filled, and the
// loader takes b's old slices to fill later, so whatever b held before is
// gone (and slices of it kept elsewhere will be overwritten). It returns
// io.EOF at the end of a bounded stream, and ctx's error once the Loader's
// context is done. A row that fails the Reader's checks is an error naming
// its shard, record batch and row. In steady state it allocates nothing:
// the batches' slices grow once, to Batch × the longest row of the
// datasets.
func (l *Loader) Next(b *Batch) error {
	if l.closed {
		return ErrClosed
	}
	for {
		var s *slot
		select {
		case s = <-l.pending:
		case <-l.exited:
			return l.exitErr
		}
		select {
		case <-s.done:
		case <-l.exited:
			return l.exitErr
		}
		if s.gen != l.gen {
			l.free <- s
			continue
		}
		err := s.err
		if err == nil {
			*b, s.b = s.b, *b // b takes the filled buffers, the slot b's old ones
			l.g = s.next
		}
		l.free <- s
		return err
	}
}

// EpochLen is the number of positions of one loader epoch, over all ranks.
func (l *Loader) EpochLen() uint64 { return l.ord.epochLen }

// Position returns the epoch and the position in it of the next global
// batch.
func (l *Loader) Position() (epoch, pos uint64) { return l.g / l.ord.epochLen, l.g % l.ord.epochLen }

// loaderState is what State saves, as JSON.
type loaderState struct {
	Version       int            `json:"version"`
	Epoch         uint64         `json:"epoch"`
	Pos           uint64         `json:"pos"`
	EpochLen      uint64         `json:"epoch_len"`
	Seed          uint64         `json:"seed"`
	World         int            `json:"world"`
	Batch         int            `json:"batch"`
	AllMaskEpochs bool           `json:"all_mask_epochs"`
	Datasets      []stateDataset `json:"datasets"`
}

type stateDataset struct {
	Dir         string `json:"dir"` // informational
	Fingerprint string `json:"fingerprint"`
	Rows        int64  `json:"rows"`
	Parts       uint64 `json:"parts"` // weight, in parts of MixBlock
}

const stateVersion = 1

// State returns the loader's position and configuration as JSON: the epoch
// and position of the next global batch (the batches Next has returned,
// not those prefetched), the seed, world size and batch size, the mask
// epoch mode and each dataset's fingerprint, rows and weight.
func (l *Loader) State() ([]byte, error) {
	if l.closed {
		return nil, ErrClosed
	}
	st := l.state()
	b, err := json.Marshal(&st)
	if err != nil {
		return nil, fmt.Errorf("loader: loader state: %w", err)
	}
	return b, nil
}

func (l *Loader) state() loaderState {
	e, p := l.Position()
	st := loaderState{Version: stateVersion, Epoch: e, Pos: p, EpochLen: l.ord.epochLen, Seed: l.opts.Seed,
		World: l.opts.World, Batch: l.opts.Batch, AllMaskEpochs: l.opts.AllMaskEpochs}
	for d, s := range l.srcs {
		st.Datasets = append(st.Datasets, stateDataset{Dir: s.Reader.Dir(), Fingerprint: s.Reader.Fingerprint(), Rows: s.Reader.Len(), Parts: l.parts[d]})
	}
	return st
}

// Restore continues from a state that State returned, possibly by a loader
// with another world size, rank or batch size: the next batch starts at the
// saved position. The seed, the datasets (by fingerprint, in order), their
// weights and the mask-epoch mode must be the same; otherwise Restore fails
// and the position is unchanged.
func (l *Loader) Restore(state []byte) error {
	if l.closed {
		return ErrClosed
	}
	var st loaderState
	if err := json.Unmarshal(state, &st); err != nil {
		return fmt.Errorf("loader: restore: %w", err)
	}
	cur := l.state()
	switch {
	case st.Version != stateVersion:
		return fmt.Errorf("loader: restore: state version %d; this glmkit reads version %d", st.Version, stateVersion)
	case st.Seed != cur.Seed:
		return fmt.Errorf("loader: restore: state has seed %d; the loader %d", st.Seed, cur.Seed)
	case st.AllMaskEpochs != cur.AllMaskEpochs:
		return fmt.Errorf("loader: restore: state has all_mask_epochs %v; the loader %v", st.AllMaskEpochs, cur.AllMaskEpochs)
	case len(st.Datasets) != len(cur.Datasets):
		return fmt.Errorf("loader: restore: state has %d datasets; the loader %d", len(st.Datasets), len(cur.Datasets))
	}
	for d, s := range st.Datasets {
		c := cur.Datasets[d]
		switch {
		case s.Fingerprint != c.Fingerprint || s.Rows != c.Rows:
			return fmt.Errorf("loader: restore: dataset %d was %s (%d rows, fingerprint %s); the loader has %s (%d rows, fingerprint %s)",
				d, s.Dir, s.Rows, s.Fingerprint, c.Dir, c.Rows, c.Fingerprint)
		case s.Parts != c.Parts:
			return fmt.Errorf("loader: restore: dataset %d (%s) had weight %d/%d; the loader gives it %d/%d", d, c.Dir, s.Parts, MixBlock, c.Parts, MixBlock)
		}
	}
	if st.EpochLen != cur.EpochLen || st.Pos >= st.EpochLen || st.Epoch > (math.MaxUint64-st.Pos)/st.EpochLen {
		return fmt.Errorf("loader: restore: position %d of epoch %d (epoch length %d) is invalid for epoch length %d", st.Pos, st.Epoch, st.EpochLen, cur.EpochLen)
	}
	l.g = st.Epoch*st.EpochLen + st.Pos
	l.gen++
	select {
	case <-l.seek: // replace a seek the producer has not taken yet
	default:
	}
	l.seek <- seekReq{g: l.g, gen: l.gen}
	return nil
}

// ErrClosed is returned by a closed Loader.
var ErrClosed = errors.New("loader: use of a closed loader")

// Close stops the prefetching goroutine and waits for it to exit, and
// closes the Readers if OpenLoader opened them.
func (l *Loader) Close() error {
	var err error
	l.closeOnce.Do(func() {
		l.closed = true
		close(l.quit)
		<-l.exited
		if l.owned {
			var errs []error
			for _, s := range l.srcs {
				errs = append(errs, s.Reader.Close())
			}
			err = errors.Join(errs...)
		}
	})
	return err
}

// Fingerprint identifies the data the loader reads: each dataset's
// fingerprint and weight, and the mask-epoch mode. A trainer records it in
// its checkpoints and refuses to resume on other data.
func (l *Loader) Fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "all_mask_epochs=%v\n", l.opts.AllMaskEpochs)
	for d, s := range l.srcs {
		fmt.Fprintf(h, "%s %d\n", s.Reader.Fingerprint(), l.parts[d])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

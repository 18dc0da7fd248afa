package sharding

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
)

// Source is one dataset of a Loader: an open Reader and its weight in the
// mixture (relative; ignored when there is one source).
type Source struct {
	Reader *Reader
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
			return nil, fmt.Errorf("sharding: mixture %q has an empty entry", spec)
		}
		e := MixEntry{Dir: f, Weight: 1}
		if i := strings.LastIndexByte(f, '='); i >= 0 {
			w, err := strconv.ParseFloat(f[i+1:], 64)
			if err != nil || !(w > 0) || math.IsInf(w, 0) {
				return nil, fmt.Errorf("sharding: mixture %q: weight of %q is %q; want a number > 0", spec, f[:i], f[i+1:])
			}
			e.Dir, e.Weight = f[:i], w
		}
		if e.Dir == "" {
			return nil, fmt.Errorf("sharding: mixture %q: entry %q names no directory", spec, f)
		}
		mix = append(mix, e)
	}
	return mix, nil
}

// LoaderOptions configures a Loader. Only Batch is required.
type LoaderOptions struct {
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
	// Prefetch is the number of batches a background goroutine prepares
	// ahead of Next. Default 2.
	Prefetch int
}

// A Loader serves fixed-size, padded batches of rows in an exact
// pseudorandom order, for one rank of World, and can save and restore its
// position exactly.
//
// The global order is a stream of positions g = 0, 1, 2, …; a loader epoch
// is epochLen = Σ units positions (units: rows, or samples when each epoch
// reads one mask copy; see LoaderOptions.AllMaskEpochs). With one dataset,
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
	opts    LoaderOptions
	parts   []uint64
	pad     int32
	end     uint64 // first position past the stream (math.MaxUint64 if unbounded)
	capHint int    // B × longest row: the batch capacity that never grows

	g   uint64 // position of the next global batch, as seen by Next
	gen uint64 // bumped by Restore; slots of an older generation are dropped

	free, ready chan *slot
	seek        chan seekReq
	quit        chan struct{}
	exited      chan struct{}
	exitErr     error // set by the producer before it closes exited
	closeOnce   sync.Once
	closed      bool
}

type slot struct {
	b    Batch
	gen  uint64
	next uint64 // position after this batch
	err  error
}

type seekReq struct{ g, gen uint64 }

// NewLoader returns a Loader over sources, which must be non-empty builds
// of the same tokenizer (sha256, vocabulary size and special ids). Its
// prefetching goroutine runs until Close, or until ctx is done, after which
// Next returns ctx's error. The Loader does not close the Readers.
func NewLoader(ctx context.Context, sources []Source, opts LoaderOptions) (*Loader, error) {
	if opts.World == 0 {
		opts.World = 1
	}
	if opts.Prefetch == 0 {
		opts.Prefetch = 2
	}
	switch {
	case len(sources) == 0:
		return nil, errors.New("sharding: loader has no datasets")
	case opts.Batch <= 0:
		return nil, fmt.Errorf("sharding: batch size %d; want > 0", opts.Batch)
	case opts.World < 1 || opts.Rank < 0 || opts.Rank >= opts.World:
		return nil, fmt.Errorf("sharding: rank %d of world %d; want 0 ≤ rank < world", opts.Rank, opts.World)
	case opts.Epochs < 0:
		return nil, fmt.Errorf("sharding: epochs %d; want ≥ 0 (0: unbounded)", opts.Epochs)
	case opts.Prefetch < 1:
		return nil, fmt.Errorf("sharding: prefetch %d; want ≥ 1", opts.Prefetch)
	}
	l := &Loader{srcs: sources, opts: opts, ord: order{seed: opts.Seed}, end: math.MaxUint64}
	first := sources[0].Reader.Meta()
	l.pad = first.Special.Pad
	maxLen := 0
	weights := make([]float64, len(sources))
	for d, s := range sources {
		r := s.Reader
		if r == nil || r.closed {
			return nil, fmt.Errorf("sharding: dataset %d has no open reader", d)
		}
		m := r.Meta()
		if m.TokenizerSHA256 != first.TokenizerSHA256 || m.VocabSize != first.VocabSize || m.Special != first.Special {
			return nil, fmt.Errorf("sharding: %s and %s were built with different tokenizers (sha256, vocabulary or special ids differ); they cannot be mixed",
				sources[0].Reader.Dir(), r.Dir())
		}
		ds := dsOrder{units: uint64(r.Len()), copies: 1}
		if n := uint64(m.MaskEpochs); n > 1 && !opts.AllMaskEpochs {
			if ds.units%n != 0 {
				return nil, fmt.Errorf("sharding: %s: %d rows is not a multiple of its %d mask epochs", r.Dir(), r.Len(), n)
			}
			ds.units /= n
			ds.copies = n
		}
		if ds.units == 0 {
			return nil, fmt.Errorf("sharding: %s has no rows", r.Dir())
		}
		l.ord.ds = append(l.ord.ds, ds)
		l.ord.epochLen += ds.units
		maxLen = max(maxLen, r.MaxRowLen())
		weights[d] = s.Weight
		if len(sources) == 1 {
			weights[d] = 1
		}
	}
	var err error
	if l.parts, err = quantize(weights); err != nil {
		return nil, fmt.Errorf("sharding: %w", err)
	}
	if len(sources) > 1 {
		l.ord.mix = newMixer(opts.Seed, l.parts)
	}
	if opts.Epochs > 0 {
		if l.ord.epochLen > math.MaxUint64/uint64(opts.Epochs) {
			return nil, fmt.Errorf("sharding: %d epochs of %d rows overflow", opts.Epochs, l.ord.epochLen)
		}
		l.end = uint64(opts.Epochs) * l.ord.epochLen
	}
	l.capHint = opts.Batch * maxLen

	l.free = make(chan *slot, opts.Prefetch)
	l.ready = make(chan *slot, opts.Prefetch)
	l.seek = make(chan seekReq, 1)
	l.quit = make(chan struct{})
	l.exited = make(chan struct{})
	for range opts.Prefetch {
		l.free <- &slot{}
	}
	go l.produce(ctx, l.newFiller())
	return l, nil
}

// OpenLoader opens the builds of a mixture spec (see ParseMix) with the
// given OpenOptions and returns a Loader over them that closes them when it
// is closed.
func OpenLoader(ctx context.Context, spec string, opts LoaderOptions, open ...OpenOption) (*Loader, error) {
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
		r, err := Open(e.Dir, open...)
		if err != nil {
			closeAll()
			return nil, err
		}
		srcs = append(srcs, Source{Reader: r, Weight: e.Weight})
	}
	l, err := NewLoader(ctx, srcs, opts)
	if err != nil {
		closeAll()
		return nil, err
	}
	l.owned = true
	return l, nil
}

// filler gathers rows into batches; each goroutine that fills has its own.
type filler struct {
	views []RowView
	rows  []int64
	mix   *mixCache
}

func (l *Loader) newFiller() *filler {
	f := &filler{views: make([]RowView, l.opts.Batch), rows: make([]int64, l.opts.Batch)}
	if l.ord.mix != nil {
		f.mix = l.ord.mix.newCache()
	}
	return f
}

// fill gathers this rank's rows of the global batch at g into b and
// returns the position of the next global batch.
func (l *Loader) fill(f *filler, b *Batch, g uint64) (uint64, error) {
	B, world, rank := l.opts.Batch, uint64(l.opts.World), uint64(l.opts.Rank)
	stride := world * uint64(B)
	if g >= l.end || l.opts.DropLast && l.end-g < stride {
		return g, io.EOF
	}
	n, T := 0, 0
	for j := range B {
		p := g + uint64(j)*world + rank
		if p >= l.end {
			break
		}
		d, row := l.ord.at(p, f.mix)
		v, err := l.srcs[d].Reader.Row(row)
		if err != nil {
			return g, err
		}
		f.views[j], f.rows[j] = v, row
		T = max(T, len(v.Input))
		n++
	}
	if n == 0 {
		return g, io.EOF
	}
	b.resize(n, T, l.capHint)
	for j, v := range f.views[:n] {
		lo, L, hi := j*T, j*T+len(v.Input), (j+1)*T
		copy(b.Input[lo:], v.Input)
		copy(b.Target[lo:], v.Target)
		copy(b.LossMask[lo:], v.LossMask)
		copy(b.Pos[lo:], v.Pos)
		copy(b.BlockPos[lo:], v.BlockPos)
		if l.pad == 0 {
			clear(b.Input[L:hi])
			clear(b.Target[L:hi])
		} else {
			for t := L; t < hi; t++ {
				b.Input[t], b.Target[t] = l.pad, l.pad
			}
		}
		clear(b.LossMask[L:hi])
		clear(b.Pos[L:hi])
		clear(b.BlockPos[L:hi])
		b.Sep[j] = v.Sep
		b.Objective[j] = v.Objective
		b.Rows[j] = f.rows[j]
	}
	return g + stride, nil
}

// resize sets b's shape to (n, t), reusing its slices when they hold
// n·t elements and otherwise growing them to capacity at least c.
func (b *Batch) resize(n, t, c int) {
	b.B, b.T = n, t
	b.Input = grow(b.Input, n*t, c)
	b.Target = grow(b.Target, n*t, c)
	b.LossMask = grow(b.LossMask, n*t, c)
	b.Pos = grow(b.Pos, n*t, c)
	b.BlockPos = grow(b.BlockPos, n*t, c)
	b.Sep = grow(b.Sep, n, n)
	b.Objective = grow(b.Objective, n, n)
	b.Rows = grow(b.Rows, n, n)
}

func grow[T any](s []T, n, c int) []T {
	if cap(s) < n {
		return make([]T, n, max(n, c))
	}
	return s[:n]
}

// copyTo copies src into dst, reusing dst's slices.
func (src *Batch) copyTo(dst *Batch, c int) {
	dst.resize(src.B, src.T, c)
	copy(dst.Input, src.Input)
	copy(dst.Target, src.Target)
	copy(dst.LossMask, src.LossMask)
	copy(dst.Pos, src.Pos)
	copy(dst.BlockPos, src.BlockPos)
	copy(dst.Sep, src.Sep)
	copy(dst.Objective, src.Objective)
	copy(dst.Rows, src.Rows)
}

// produce fills free slots in order and hands them to Next, until the
// Loader is closed or ctx is done. A seek (from Restore) moves it to
// another position and generation.
func (l *Loader) produce(ctx context.Context, f *filler) {
	defer close(l.exited)
	var g, gen uint64
	for {
		var s *slot
		select {
		case <-ctx.Done():
			l.exitErr = ctx.Err()
			return
		case <-l.quit:
			l.exitErr = ErrClosed
			return
		case r := <-l.seek:
			g, gen = r.g, r.gen
			continue
		case s = <-l.free:
		}
		s.gen = gen
		s.next, s.err = l.fill(f, &s.b, g)
		if s.err == nil {
			g = s.next
		}
		select {
		case <-ctx.Done():
			l.exitErr = ctx.Err()
			return
		case <-l.quit:
			l.exitErr = ErrClosed
			return
		case r := <-l.seek:
			g, gen = r.g, r.gen
			l.free <- s // cannot block: this slot came from free
		case l.ready <- s:
		}
	}
}

// Next fills b with this rank's next batch: b.B rows (Batch rows, fewer
// only at the end of a bounded stream) padded to b.T, the longest of them,
// reusing b's slices. It returns io.EOF at the end of a bounded stream,
// and ctx's error once the Loader's context is done. In steady state it
// allocates nothing: b's slices grow once, to Batch × the longest row of
// the datasets.
func (l *Loader) Next(b *Batch) error {
	if l.closed {
		return ErrClosed
	}
	for {
		select {
		case s := <-l.ready:
			if s.gen != l.gen {
				l.free <- s
				continue
			}
			err := s.err
			if err == nil {
				s.b.copyTo(b, l.capHint)
				l.g = s.next
			}
			l.free <- s
			return err
		case <-l.exited:
			return l.exitErr
		}
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
		return nil, fmt.Errorf("sharding: loader state: %w", err)
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
		return fmt.Errorf("sharding: restore: %w", err)
	}
	cur := l.state()
	switch {
	case st.Version != stateVersion:
		return fmt.Errorf("sharding: restore: state version %d; this glmkit reads version %d", st.Version, stateVersion)
	case st.Seed != cur.Seed:
		return fmt.Errorf("sharding: restore: state has seed %d; the loader %d", st.Seed, cur.Seed)
	case st.AllMaskEpochs != cur.AllMaskEpochs:
		return fmt.Errorf("sharding: restore: state has all_mask_epochs %v; the loader %v", st.AllMaskEpochs, cur.AllMaskEpochs)
	case len(st.Datasets) != len(cur.Datasets):
		return fmt.Errorf("sharding: restore: state has %d datasets; the loader %d", len(st.Datasets), len(cur.Datasets))
	}
	for d, s := range st.Datasets {
		c := cur.Datasets[d]
		switch {
		case s.Fingerprint != c.Fingerprint || s.Rows != c.Rows:
			return fmt.Errorf("sharding: restore: dataset %d was %s (%d rows, fingerprint %s); the loader has %s (%d rows, fingerprint %s)",
				d, s.Dir, s.Rows, s.Fingerprint, c.Dir, c.Rows, c.Fingerprint)
		case s.Parts != c.Parts:
			return fmt.Errorf("sharding: restore: dataset %d (%s) had weight %d/%d; the loader gives it %d/%d", d, c.Dir, s.Parts, MixBlock, c.Parts, MixBlock)
		}
	}
	if st.EpochLen != cur.EpochLen || st.Pos >= st.EpochLen || st.Epoch > (math.MaxUint64-st.Pos)/st.EpochLen {
		return fmt.Errorf("sharding: restore: position %d of epoch %d (epoch length %d) is invalid for epoch length %d", st.Pos, st.Epoch, st.EpochLen, cur.EpochLen)
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

package sharding

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/glmkit/glmkit/masking"
)

// A Reader serves the rows of one build directory (a manifest.json and the
// shards it lists) by a global row index: row i is row i−Σ(rows before) of
// the shard, in manifest order, where the running sum passes i.
//
// Open maps every shard read-only and indexes its record batches, so Row
// costs a binary search over the shards and returns slices that point into
// the mapping: no copy, no allocation. Shards written with zstd or lz4
// compression cannot be mapped usefully; Open decompresses them into memory
// it owns, and Mapped reports false.
//
// Row, Sample, Locate and Verify are safe for concurrent use. Close must not
// run concurrently with them, and ends the validity of every slice a Row
// returned. Shard files must not be truncated or rewritten in place while a
// Reader maps them: reading a page past the new end of a file kills the
// process with SIGBUS (glmprep only ever renames complete shards into
// place, which leaves an open mapping intact).
type Reader struct {
	dir      string
	manifest *Manifest
	fp       string
	shards   []shard
	starts   []int64 // starts[s] is the global index of shard s's first row; len(shards)+1 entries
	rows     int64
	maxLen   int
	mapped   bool
	closed   bool
}

// shard is one open shard file.
type shard struct {
	name    string
	data    []byte // the file's mapping; nil once closed
	batches []rowBatch
	bstarts []int64 // bstarts[k] is the shard row of batch k's first row; len(batches)+1 entries
	uniform int64   // rows of every batch but the last (which has at most as many), or 0
}

// rowBatch holds one record batch's columns, resolved once at Open. The
// offsets are checked at Open: monotone, starting at ≥ 0 and ending within
// every values slice, so Row can never index out of range.
type rowBatch struct {
	offs                      []int32 // rows+1 offsets shared by the five list columns
	input, target, pos, block []int32
	loss                      []uint8
	sep, nsrc                 []int32
	obj                       []int8 // dictionary indices, each < len(objOf)
	docID                     []uint64
	objOf                     [masking.NumObjectives]masking.Objective // dictionary index → objective
}

// RowView is one row's columns. Its slices point into the shard's mapping
// (or, for a compressed shard, into memory the Reader owns): they are
// read-only, since writing to a read-only mapping crashes the program, and
// valid until the Reader is closed. The capacity of every slice equals its
// length, so append always copies.
type RowView struct {
	Input     []int32 // Part A ++ Part B inputs
	Target    []int32 // aligned targets (no shift)
	LossMask  []uint8 // 1 on Part B
	Pos       []int32 // dim-1 positions
	BlockPos  []int32 // dim-2 positions
	Sep       int32   // len(Part A)
	Objective masking.Objective
	DocID     uint64 // first document of the row
	NSource   int32  // source tokens before masking
}

// Bytes is the number of bytes the row's columns occupy in a shard: 17 per
// position plus the scalar columns.
func (v RowView) Bytes() int64 { return RowBytes(len(v.Input)) }

// OpenOption configures Open.
type OpenOption func(*openConfig)

type openConfig struct {
	verifyHashes bool
	workers      int
}

// VerifyHashes makes Open hash every shard with sha256 and compare it with
// the manifest before reading it. It reads every byte of the build (about
// 1.5 GB/s per core); without it Open reads only the record batch metadata
// and the list offsets, and a bit flipped in a token value goes unnoticed.
func VerifyHashes() OpenOption { return func(c *openConfig) { c.verifyHashes = true } }

// OpenWorkers sets how many shards Open reads at once. The default is
// GOMAXPROCS, at most 8.
func OpenWorkers(n int) OpenOption { return func(c *openConfig) { c.workers = n } }

// Open reads dir/manifest.json, checks it and opens every shard it lists:
// the file's size (and with VerifyHashes its sha256) must match the
// manifest, its schema and metadata must equal the manifest's Meta (format
// version, tokenizer and its sha256, special ids, masking config…), and its
// row count, token count and longest row must match the manifest's entry.
// Any disagreement is an error naming the file. The Reader must be closed.
func Open(dir string, opts ...OpenOption) (*Reader, error) {
	cfg := openConfig{workers: min(runtime.GOMAXPROCS(0), 8)}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.workers = max(cfg.workers, 1)
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	mpath := filepath.Join(dir, ManifestName)
	if err := checkManifest(m); err != nil {
		return nil, fmt.Errorf("sharding: %s: %w", mpath, err)
	}
	want, err := Schema(m.Meta)
	if err != nil {
		return nil, fmt.Errorf("sharding: %s: meta: %w", mpath, err)
	}
	r := &Reader{dir: dir, manifest: m, shards: make([]shard, len(m.Shards)), mapped: true}
	if r.fp, err = fingerprint(m); err != nil {
		return nil, fmt.Errorf("sharding: %s: %w", mpath, err)
	}

	errs := make([]error, len(m.Shards))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(cfg.workers, len(m.Shards)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(m.Shards) {
					return
				}
				errs[i] = r.shards[i].open(dir, &m.Shards[i], m.Meta, want, cfg.verifyHashes)
			}
		}()
	}
	wg.Wait()
	if err := firstError(errs); err != nil {
		r.Close()
		return nil, err
	}

	r.starts = make([]int64, len(r.shards)+1)
	for i := range r.shards {
		s := &r.shards[i]
		r.starts[i+1] = r.starts[i] + s.bstarts[len(s.batches)]
		r.maxLen = max(r.maxLen, m.Shards[i].MaxRowLen)
		for k := range s.batches {
			b := &s.batches[k]
			if len(b.input) > 0 && !inside(s.data, unsafe.Pointer(&b.input[0])) {
				r.mapped = false
			}
		}
	}
	r.rows = r.starts[len(r.shards)]
	return r, nil
}

// firstError returns the first non-nil error, noting how many followed.
func firstError(errs []error) error {
	var first error
	more := 0
	for _, err := range errs {
		switch {
		case err == nil:
		case first == nil:
			first = err
		default:
			more++
		}
	}
	if more > 0 {
		return fmt.Errorf("%w (and %d more shards failed)", first, more)
	}
	return first
}

// checkManifest checks what a manifest says about itself.
func checkManifest(m *Manifest) error {
	if m.Meta.FormatVersion != FormatVersion {
		return fmt.Errorf("meta format version %d; this glmkit reads version %d", m.Meta.FormatVersion, FormatVersion)
	}
	if m.Meta.MaskEpochs < 1 {
		return fmt.Errorf("mask_epochs %d; want ≥ 1", m.Meta.MaskEpochs)
	}
	seen := make(map[string]bool, len(m.Shards))
	var rows int64
	for _, s := range m.Shards {
		if s.Name == "" || s.Name != filepath.Base(s.Name) || s.Name == "." || s.Name == ".." {
			return fmt.Errorf("shard name %q is not a file name inside the directory", s.Name)
		}
		if seen[s.Name] {
			return fmt.Errorf("shard %s is listed twice", s.Name)
		}
		seen[s.Name] = true
		if s.Rows < 0 || s.Tokens < 0 || s.MaxRowLen < 0 || s.Bytes < 0 {
			return fmt.Errorf("shard %s: negative count in %+v", s.Name, s)
		}
		rows += s.Rows
	}
	if m.Totals.Rows != rows || m.Totals.Shards != len(m.Shards) {
		return fmt.Errorf("totals say %d shards and %d rows; the shard list has %d and %d", m.Totals.Shards, m.Totals.Rows, len(m.Shards), rows)
	}
	return nil
}

// fingerprint identifies a build by what decides its rows: the format, the
// meta and every shard's name, rows and sha256.
func fingerprint(m *Manifest) (string, error) {
	b, err := json.Marshal(struct {
		FormatVersion int         `json:"format_version"`
		Meta          Meta        `json:"meta"`
		Shards        []ShardFile `json:"shards"`
	}{m.FormatVersion, m.Meta, m.Shards})
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16]), nil
}

// open maps and indexes one shard. Every error names the file.
func (s *shard) open(dir string, sf *ShardFile, meta Meta, want *arrow.Schema, verify bool) (err error) {
	s.name = sf.Name
	path := filepath.Join(dir, sf.Name)
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed arrow data: %v", p)
		}
		if err != nil {
			err = fmt.Errorf("sharding: %s: %w", path, err)
		}
	}()
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if sf.Bytes > 0 && fi.Size() != sf.Bytes {
		f.Close()
		return fmt.Errorf("file has %d bytes; the manifest says %d (truncated or replaced)", fi.Size(), sf.Bytes)
	}
	s.data, err = mapFile(f, fi.Size())
	f.Close()
	if err != nil {
		return err
	}
	if verify {
		h := sha256.Sum256(s.data)
		if got := hex.EncodeToString(h[:]); got != sf.SHA256 {
			return fmt.Errorf("sha256 %s; the manifest says %s (corrupt or replaced)", got, sf.SHA256)
		}
	}
	// A bound on what the shard's buffers can hold decoded, so that a
	// corrupt compressed length cannot exhaust memory.
	limit := 20*sf.Tokens + 64*sf.Rows + 1<<20
	schema, err := s.index(want, limit)
	if err != nil {
		return err
	}
	if !schema.Equal(want) || !schema.Metadata().Equal(want.Metadata()) {
		got, err := MetaFromSchema(schema)
		if err != nil {
			return fmt.Errorf("foreign schema: %w", err)
		}
		if d := metaDiff(got, meta); d != "" {
			return fmt.Errorf("shard metadata differs from the manifest: %s", d)
		}
	}
	rows := s.bstarts[len(s.batches)]
	var tokens int64
	maxLen := 0
	for k := range s.batches {
		o := s.batches[k].offs
		tokens += int64(o[len(o)-1] - o[0])
		for j := 1; j < len(o); j++ {
			maxLen = max(maxLen, int(o[j]-o[j-1]))
		}
	}
	switch {
	case rows != sf.Rows:
		return fmt.Errorf("%d rows; the manifest says %d", rows, sf.Rows)
	case tokens != sf.Tokens:
		return fmt.Errorf("%d tokens; the manifest says %d", tokens, sf.Tokens)
	case maxLen != sf.MaxRowLen:
		return fmt.Errorf("longest row has %d positions; the manifest says %d", maxLen, sf.MaxRowLen)
	}
	return nil
}

// metaDiff names the first field where a and b differ, or returns "".
func metaDiff(a, b Meta) string {
	type field struct {
		name string
		a, b any
	}
	for _, f := range []field{
		{"format_version", a.FormatVersion, b.FormatVersion},
		{"tokenizer", a.Tokenizer, b.Tokenizer},
		{"tokenizer_sha256", a.TokenizerSHA256, b.TokenizerSHA256},
		{"tokenizer_family", a.TokenizerFamily, b.TokenizerFamily},
		{"tokenizer_options", a.TokenizerOptions, b.TokenizerOptions},
		{"vocab_size", a.VocabSize, b.VocabSize},
		{"special_ids", a.Special, b.Special},
		{"seq_len", a.SeqLen, b.SeqLen},
		{"mask_epochs", a.MaskEpochs, b.MaskEpochs},
		{"masking", a.Masking, b.Masking},
	} {
		ja, _ := json.Marshal(f.a)
		jb, _ := json.Marshal(f.b)
		if !bytes.Equal(ja, jb) {
			return fmt.Sprintf("%s is %s in the shard, %s in the manifest", f.name, ja, jb)
		}
	}
	return ""
}

// arrowMagic opens and ends every Arrow IPC file.
const arrowMagic = "ARROW1"

// index reads the shard's messages in place and resolves every record
// batch. arrow-go's own ipc.NewMappedFileReader cannot open
// dictionary-encoded schemas (v18.8.0 leaves its dictionary memo nil and
// panics with "assignment to entry in nil map"), so the stream inside the
// file goes through ipc.NewReaderFromMessageReader, with a message reader
// that slices the mapping instead of copying it; the footer's block list
// must then point at exactly the record batches the stream holds.
func (s *shard) index(want *arrow.Schema, limit int64) (*arrow.Schema, error) {
	data := s.data
	if len(data) < 16 || string(data[:6]) != arrowMagic || string(data[len(data)-6:]) != arrowMagic {
		return nil, errors.New("not an arrow ipc file (magic bytes missing)")
	}
	footer, err := footerBlocks(data)
	if err != nil {
		return nil, err
	}
	mr := &mappedMessages{data: data, pos: 8}
	mr.refs.Store(1)
	rd, err := ipc.NewReaderFromMessageReader(mr, ipc.WithAllocator(&limitAllocator{left: limit}))
	if err != nil {
		return nil, err
	}
	defer rd.Release()
	schema := rd.Schema()
	if schema == nil || len(schema.Fields()) != len(want.Fields()) || !schema.Equal(want) {
		return nil, fmt.Errorf("columns differ from glmkit format %d: have %v", FormatVersion, schema)
	}
	s.bstarts = append(s.bstarts[:0], 0)
	n := 0
	for rd.Next() {
		n++
		rec := rd.RecordBatch()
		if rec.NumRows() == 0 {
			continue
		}
		b, err := resolve(rec)
		if err != nil {
			return nil, fmt.Errorf("record batch %d: %w", n-1, err)
		}
		s.batches = append(s.batches, b)
		s.bstarts = append(s.bstarts, s.bstarts[len(s.bstarts)-1]+rec.NumRows())
	}
	if err := rd.Err(); err != nil {
		return nil, err
	}
	if len(footer) != len(mr.records) {
		return nil, fmt.Errorf("the stream holds %d record batches, the footer lists %d", len(mr.records), len(footer))
	}
	for i, b := range footer {
		if b != mr.records[i] {
			return nil, fmt.Errorf("footer block %d %+v does not match the stream's record batch %+v", i, b, mr.records[i])
		}
	}
	if len(s.batches) > 0 {
		s.uniform = s.bstarts[1]
		for k := 1; k < len(s.batches); k++ {
			if rows := s.bstarts[k+1] - s.bstarts[k]; rows > s.uniform || rows != s.uniform && k < len(s.batches)-1 {
				s.uniform = 0
				break
			}
		}
	}
	return schema, nil
}

// resolve checks one record batch and takes its columns' slices.
func resolve(rec arrow.RecordBatch) (rowBatch, error) {
	var b rowBatch
	rows := int(rec.NumRows())
	if rec.NumCols() != 9 {
		return b, fmt.Errorf("%d columns, want 9", rec.NumCols())
	}
	lists := [5]*[]int32{&b.input, &b.target, nil, &b.pos, &b.block}
	var firstOffs []int32
	for c := range 5 {
		d := rec.Column(c).Data()
		name := rec.ColumnName(c)
		if d.Len() != rows || d.NullN() != 0 || len(d.Children()) != 1 {
			return b, fmt.Errorf("column %s: %d rows with %d nulls; want %d rows and no nulls", name, d.Len(), d.NullN(), rows)
		}
		offs, err := view[int32](d, 1, d.Offset(), rows+1)
		if err != nil {
			return b, fmt.Errorf("column %s offsets: %w", name, err)
		}
		ch := d.Children()[0]
		if ch.NullN() != 0 {
			return b, fmt.Errorf("column %s: %d null values", name, ch.NullN())
		}
		var nvals int
		if c == 2 {
			if b.loss, err = view[uint8](ch, 1, ch.Offset(), ch.Len()); err != nil {
				return b, fmt.Errorf("column %s values: %w", name, err)
			}
			nvals = len(b.loss)
		} else {
			if *lists[c], err = view[int32](ch, 1, ch.Offset(), ch.Len()); err != nil {
				return b, fmt.Errorf("column %s values: %w", name, err)
			}
			nvals = len(*lists[c])
		}
		if c == 0 {
			firstOffs = offs
			if offs[0] < 0 {
				return b, fmt.Errorf("column %s: first offset %d", name, offs[0])
			}
			for j := 1; j < len(offs); j++ {
				if offs[j] < offs[j-1] {
					return b, fmt.Errorf("column %s: offsets decrease at row %d (%d after %d)", name, j-1, offs[j], offs[j-1])
				}
			}
		} else if !equalInt32(offs, firstOffs) {
			return b, fmt.Errorf("column %s: row lengths differ from %s", name, ColInput)
		}
		if int64(offs[rows]) > int64(nvals) {
			return b, fmt.Errorf("column %s: offsets end at %d, past its %d values", name, offs[rows], nvals)
		}
	}
	b.offs = firstOffs
	var err error
	prim := func(c int) arrow.ArrayData {
		d := rec.Column(c).Data()
		if err == nil && (d.Len() != rows || d.NullN() != 0) {
			err = fmt.Errorf("column %s: %d rows with %d nulls; want %d rows and no nulls", rec.ColumnName(c), d.Len(), d.NullN(), rows)
		}
		return d
	}
	if d := prim(5); err == nil {
		b.sep, err = view[int32](d, 1, d.Offset(), rows)
	}
	if d := prim(6); err == nil {
		b.obj, err = view[int8](d, 1, d.Offset(), rows)
	}
	if d := prim(7); err == nil {
		b.docID, err = view[uint64](d, 1, d.Offset(), rows)
	}
	if d := prim(8); err == nil {
		b.nsrc, err = view[int32](d, 1, d.Offset(), rows)
	}
	if err != nil {
		return b, err
	}
	dict, ok := rec.Column(6).(*array.Dictionary)
	if !ok {
		return b, fmt.Errorf("column %s is not dictionary-encoded", ColObjective)
	}
	names, ok := dict.Dictionary().(*array.String)
	if !ok || names.Len() > masking.NumObjectives || names.NullN() != 0 {
		return b, fmt.Errorf("column %s: dictionary %v is not a set of objective names", ColObjective, dict.Dictionary())
	}
	for i := range names.Len() {
		o, err := masking.ParseObjective(names.Value(i))
		if err != nil {
			return b, fmt.Errorf("column %s: %w", ColObjective, err)
		}
		b.objOf[i] = o
	}
	for j, x := range b.obj {
		if x < 0 || int(x) >= names.Len() {
			return b, fmt.Errorf("column %s: row %d has dictionary index %d of %d", ColObjective, j, x, names.Len())
		}
	}
	return b, nil
}

func equalInt32(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 {
		return true
	}
	return bytes.Equal(unsafe.Slice((*byte)(unsafe.Pointer(&a[0])), 4*len(a)), unsafe.Slice((*byte)(unsafe.Pointer(&b[0])), 4*len(b)))
}

// view returns elements [off, off+n) of buffer i of d as a []T, checking
// that the buffer holds them and is aligned for T.
func view[T int32 | int8 | uint8 | uint64](d arrow.ArrayData, i, off, n int) ([]T, error) {
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("offset %d, length %d", off, n)
	}
	if n == 0 {
		return nil, nil
	}
	bufs := d.Buffers()
	if i >= len(bufs) || bufs[i] == nil {
		return nil, errors.New("buffer missing")
	}
	raw := bufs[i].Bytes()
	size := int(unsafe.Sizeof(*new(T)))
	if len(raw)/size < off+n {
		return nil, fmt.Errorf("buffer of %d bytes holds fewer than %d values", len(raw), off+n)
	}
	p := unsafe.Pointer(&raw[0])
	if uintptr(p)%uintptr(size) != 0 {
		return nil, fmt.Errorf("buffer misaligned for %d-byte values", size)
	}
	return unsafe.Slice((*T)(p), len(raw)/size)[off : off+n : off+n], nil
}

// inside reports whether p points into data.
func inside(data []byte, p unsafe.Pointer) bool {
	if len(data) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(&data[0]))
	return uintptr(p) >= lo && uintptr(p) < lo+uintptr(len(data))
}

// limitAllocator allocates Go memory (kept alive by the slices that point
// into it, not by reference counts) up to a budget, so that a corrupt
// compressed length fails instead of exhausting memory. It panics past the
// budget, as the Go allocator does when out of memory; arrow-go's ipc
// reader recovers the panic into an error.
type limitAllocator struct {
	mu   sync.Mutex
	left int64
}

func (a *limitAllocator) Allocate(size int) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	if size < 0 || int64(size) > a.left {
		panic(fmt.Sprintf("decoded buffer of %d bytes exceeds what the manifest allows (%d bytes left)", size, a.left))
	}
	a.left -= int64(size)
	// 64-byte aligned, as arrow's Go allocator does.
	buf := make([]byte, size+64)
	shift := (64 - int(uintptr(unsafe.Pointer(&buf[0]))%64)) % 64
	return buf[shift : shift+size : shift+size]
}

func (a *limitAllocator) Reallocate(size int, b []byte) []byte {
	if cap(b) >= size {
		return b[:size]
	}
	nb := a.Allocate(size)
	copy(nb, b)
	return nb
}

func (a *limitAllocator) Free([]byte) {}

// Len is the number of rows.
func (r *Reader) Len() int64 { return r.rows }

// Dir is the directory the Reader was opened on.
func (r *Reader) Dir() string { return r.dir }

// Manifest returns the build's manifest. It is shared: do not modify it.
func (r *Reader) Manifest() *Manifest { return r.manifest }

// Meta is the build's metadata, which every shard's schema records.
func (r *Reader) Meta() Meta { return r.manifest.Meta }

// Fingerprint identifies the build's rows: a hex hash of the manifest's
// format version, meta and shard list (names, rows, sha256). Loader states
// record it so a resume on other data fails.
func (r *Reader) Fingerprint() string { return r.fp }

// MaxRowLen is the length of the longest row.
func (r *Reader) MaxRowLen() int { return r.maxLen }

// Mapped reports whether every row aliases a shard's file mapping; it is
// false when some shards were compressed and were decoded into memory.
func (r *Reader) Mapped() bool { return r.mapped }

// ErrClosed is returned by a closed Reader or Loader.
var ErrClosed = errors.New("sharding: use of a closed reader or loader")

// shardOf returns the shard holding global row i (0 ≤ i < r.rows).
func (r *Reader) shardOf(i int64) int {
	lo, hi := 0, len(r.shards) // starts[lo] ≤ i < starts[hi]
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if r.starts[m] <= i {
			lo = m
		} else {
			hi = m
		}
	}
	return lo
}

// Row returns global row i's columns, as slices into the mapping (see
// RowView for their lifetime). It allocates nothing unless it fails, which
// it does only when i is out of range or the Reader is closed.
func (r *Reader) Row(i int64) (RowView, error) {
	if i < 0 || i >= r.rows {
		if r.closed {
			return RowView{}, ErrClosed
		}
		return RowView{}, fmt.Errorf("sharding: row %d out of range [0, %d) in %s", i, r.rows, r.dir)
	}
	si := r.shardOf(i)
	s := &r.shards[si]
	local := i - r.starts[si]
	var k int
	if s.uniform > 0 {
		k = int(local / s.uniform)
	} else {
		lo, hi := 0, len(s.batches)
		for hi-lo > 1 {
			m := int(uint(lo+hi) >> 1)
			if s.bstarts[m] <= local {
				lo = m
			} else {
				hi = m
			}
		}
		k = lo
	}
	b := &s.batches[k]
	j := int(local - s.bstarts[k])
	lo, hi := b.offs[j], b.offs[j+1]
	return RowView{
		Input:     b.input[lo:hi:hi],
		Target:    b.target[lo:hi:hi],
		LossMask:  b.loss[lo:hi:hi],
		Pos:       b.pos[lo:hi:hi],
		BlockPos:  b.block[lo:hi:hi],
		Sep:       b.sep[j],
		Objective: b.objOf[b.obj[j]],
		DocID:     b.docID[j],
		NSource:   b.nsrc[j],
	}, nil
}

// Locate returns the file name of the shard holding global row i and the
// row's index inside it.
func (r *Reader) Locate(i int64) (shard string, row int64, err error) {
	if i < 0 || i >= r.rows {
		return "", 0, fmt.Errorf("sharding: row %d out of range [0, %d) in %s", i, r.rows, r.dir)
	}
	s := r.shardOf(i)
	return r.shards[s].name, i - r.starts[s], nil
}

// Sample copies global row i into dst, reusing dst's slices; the copy is
// dst's own. Spans, Shortfall, Rebalanced and Fallback are not stored in
// shards and are cleared.
func (r *Reader) Sample(i int64, dst *masking.Sample) error {
	v, err := r.Row(i)
	if err != nil {
		return err
	}
	dst.Input = append(dst.Input[:0], v.Input...)
	dst.Target = append(dst.Target[:0], v.Target...)
	dst.LossMask = append(dst.LossMask[:0], v.LossMask...)
	dst.Pos = append(dst.Pos[:0], v.Pos...)
	dst.BlockPos = append(dst.BlockPos[:0], v.BlockPos...)
	dst.Sep = v.Sep
	dst.Objective = v.Objective
	dst.NSource = v.NSource
	dst.Spans = dst.Spans[:0]
	dst.Shortfall = 0
	dst.Rebalanced = false
	dst.Fallback = false
	return nil
}

// Verify checks every row with masking.Sample.Validate (the GLM layout
// invariants, with the build's special ids and task-mask setting) and
// every shard's loss and source token counts against the manifest. Shards
// are checked in parallel; the error returned is the one of the first
// failing shard in manifest order, naming the file, the row inside it and
// the global row. Verify stops early when ctx is done.
func (r *Reader) Verify(ctx context.Context) error {
	if r.closed {
		return ErrClosed
	}
	ids, task := r.manifest.Meta.Special, r.manifest.Meta.Masking.TaskMask
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
				if errs[si] = r.verifyShard(si, ids, task); errs[si] != nil {
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (r *Reader) verifyShard(si int, ids masking.SpecialIDs, task bool) error {
	sf := &r.manifest.Shards[si]
	path := filepath.Join(r.dir, sf.Name)
	var loss, src int64
	var s masking.Sample
	for i := r.starts[si]; i < r.starts[si+1]; i++ {
		v, err := r.Row(i)
		if err != nil {
			return err
		}
		// Validate only reads: the sample aliases the mapping.
		s.Input, s.Target, s.LossMask, s.Pos, s.BlockPos = v.Input, v.Target, v.LossMask, v.Pos, v.BlockPos
		s.Sep, s.Objective, s.NSource = v.Sep, v.Objective, v.NSource
		if err := s.Validate(ids, task); err != nil {
			return fmt.Errorf("sharding: %s: row %d (global row %d): %w", path, i-r.starts[si], i, err)
		}
		for _, m := range v.LossMask {
			loss += int64(m)
		}
		src += int64(v.NSource)
	}
	if loss != sf.LossTokens || src != sf.SourceTokens {
		return fmt.Errorf("sharding: %s: %d loss and %d source tokens; the manifest says %d and %d", path, loss, src, sf.LossTokens, sf.SourceTokens)
	}
	return nil
}

// Close unmaps every shard. Slices returned by Row are invalid afterwards
// (reading them may crash the program); later calls return ErrClosed.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.rows = 0
	var errs []error
	for i := range r.shards {
		s := &r.shards[i]
		s.batches = nil
		if err := unmapFile(s.data); err != nil {
			errs = append(errs, fmt.Errorf("sharding: unmapping %s: %w", filepath.Join(r.dir, s.name), err))
		}
		s.data = nil
	}
	return errors.Join(errs...)
}

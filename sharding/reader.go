package sharding

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
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
// Open maps every shard read-only, checks its structure (footer, message
// bounds, offsets, lengths, schema) and indexes its record batches, so Row
// costs a binary search over the shards and returns slices that point into
// the mapping. Shards written with zstd or lz4 compression cannot be mapped
// usefully; Open decompresses them into memory it owns, and Mapped reports
// false.
//
// Unless the Reader was opened Unchecked, it also checks what it serves, at
// a cost that keeps it on by default: the first time a record batch is
// touched its xxh3 checksum (recorded in the manifest) is compared with the
// bytes, and every row is checked as it is handed out (ids inside the
// vocabulary, sep inside the row, positions inside Part A, block positions
// inside Part B). Shards of format 1 builds have no per-batch checksums:
// their sha256 is checked on the first touch of the shard instead. A
// failure is an error naming the shard, the record batch, the row and what
// is wrong.
//
// Row, Sample, Locate, Check and Verify are safe for concurrent use. Close
// must not run concurrently with them, and ends the validity of every slice
// a Row returned. Shard files must not be truncated or rewritten in place
// while a Reader maps them: reading a page past the new end of a file kills
// the process with SIGBUS (glmprep only ever renames complete shards into
// place, which leaves an open mapping intact), unless the goroutine reading
// asked for a panic instead with runtime/debug.SetPanicOnFault, as
// trainer/loader's workers do to make it an error of the batch.
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
	checks   bool  // checksums on first touch, row invariants as rows are served
	vocab    int32 // ids must be below it
	seqLen   int32 // n_source must not be above it
}

// shard is one open shard file.
type shard struct {
	name    string
	path    string
	data    []byte // the file's mapping; nil once closed
	batches []rowBatch
	bstarts []int64 // bstarts[k] is the shard row of batch k's first row; len(batches)+1 entries
	uniform int64   // rows of every batch but the last (which has at most as many), or 0
	blocks  []block // every record batch message of the file, as the footer lists them

	// First-touch checks. ok[k] is set once batch k's checksum matched
	// (every batch's at once for a shard checked by its sha256); mu
	// serialises the hashing, so that a batch is hashed once.
	ok     []atomic.Bool
	mu     sync.Mutex
	bad    map[int]error // batches whose check failed
	sums   sums          // the manifest's checksums, when it has them
	whole  bool          // no per-batch checksums: check the file's sha256
	sha256 string
}

// rowBatch holds one record batch's columns, resolved once at Open. The
// offsets are checked at Open: monotone, starting at ≥ 0 and ending within
// every values slice, and the same for the five list columns, so Row can
// never index out of range.
type rowBatch struct {
	blk       int         // index of its message among the file's record batches
	offs      []int32     // rows+1 offsets shared by the five list columns
	cols      ColumnViews // every row's values, end to end
	sep, nsrc []int32
	obj       []int8 // dictionary indices, each < len(objOf)
	docID     []uint64
	objOf     [masking.NumObjectives]masking.Objective // dictionary index → objective
}

// RowView is one row's columns. Its column views point into the shard's
// mapping (or, for a compressed shard, into memory the Reader owns): they
// are read-only and valid until the Reader is closed.
type RowView struct {
	ColumnViews
	Sep       int32
	Objective masking.Objective
	DocID     uint64 // first document of the row
	NSource   int32  // source tokens before masking

	// Where the row lies, for Widen's check and its errors; pending is set
	// on a view of a checking Reader whose row is not checked yet (View).
	src     *Reader
	at      loc
	global  int64
	pending bool
}

// Len is the row's length, its number of positions.
func (v *RowView) Len() int { return v.Input.Len() }

// OpenOption configures Open.
type OpenOption func(*openConfig)

type openConfig struct {
	verifyHashes bool
	unchecked    bool
}

// VerifyHashes makes Open hash every shard with sha256 and compare it with
// the manifest before reading it. It reads every byte of the build (about
// 1.3 GB/s per core); glmprep verify uses it.
func VerifyHashes() OpenOption { return func(c *openConfig) { c.verifyHashes = true } }

// Unchecked turns off the checks a Reader makes as it serves rows: record
// batch checksums on first touch and the row invariants. Open still checks
// the manifest and each shard's structure. For measuring what the checks
// cost (glmprep bench-load --no-verify); a corrupt shard then goes
// unnoticed.
func Unchecked() OpenOption { return func(c *openConfig) { c.unchecked = true } }

// Open reads dir/manifest.json, checks it (see ReadManifest) and opens
// every shard it lists: the file must be a regular file inside dir (a
// symbolic link may not lead out of it), its size (and with VerifyHashes
// its sha256) must match the manifest, its structure must be sound, its
// schema and metadata must equal the manifest's Meta (format version,
// tokenizer and its sha256, special ids, masking config…), its row count,
// token count and longest row must match the manifest's entry, and the
// checksums of the bytes around its record batches (schema, dictionary and
// footer) must match. Any disagreement is an error naming the file. The
// Reader must be closed.
func Open(dir string, opts ...OpenOption) (*Reader, error) {
	var cfg openConfig
	for _, o := range opts {
		o(&cfg)
	}
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	mpath := filepath.Join(dir, ManifestName)
	want, err := Schema(m.Meta)
	if err != nil {
		return nil, fmt.Errorf("sharding: %s: meta: %w", mpath, err)
	}
	r := &Reader{dir: dir, manifest: m, shards: make([]shard, len(m.Shards)), mapped: true,
		checks: !cfg.unchecked, vocab: int32(m.Meta.VocabSize), seqLen: int32(m.Meta.SeqLen)}
	if r.fp, err = fingerprint(m); err != nil {
		return nil, fmt.Errorf("sharding: %s: %w", mpath, err)
	}
	realDir := ""
	if len(m.Shards) > 0 {
		if realDir, err = filepath.EvalSymlinks(dir); err != nil {
			return nil, fmt.Errorf("sharding: %w", err)
		}
	}

	errs := make([]error, len(m.Shards))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), 8, len(m.Shards)) { // shards opened at once
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(m.Shards) {
					return
				}
				errs[i] = r.shards[i].open(dir, realDir, &m.Shards[i], m.Meta, want, cfg.verifyHashes)
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
			if p := s.batches[k].cols.Input.ptr(); p != nil && !inside(s.data, p) {
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

// fingerprint identifies a build by what decides its rows: the format, the
// meta and every shard's name, rows and sha256.
func fingerprint(m *Manifest) (string, error) {
	type entry struct {
		Name   string `json:"name"`
		Rows   int64  `json:"rows"`
		SHA256 string `json:"sha256"`
	}
	shards := make([]entry, len(m.Shards))
	for i, s := range m.Shards {
		shards[i] = entry{s.Name, s.Rows, s.SHA256}
	}
	b, err := json.Marshal(struct {
		FormatVersion int     `json:"format_version"`
		Meta          Meta    `json:"meta"`
		Shards        []entry `json:"shards"`
	}{m.FormatVersion, m.Meta, shards})
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16]), nil
}

// open maps and indexes one shard. Every error names the file.
func (s *shard) open(dir, realDir string, sf *ShardFile, meta Meta, want *arrow.Schema, verify bool) (err error) {
	s.name = sf.Name
	path := filepath.Join(dir, sf.Name)
	s.path = path
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed arrow data: %v", p)
		}
		if err != nil {
			err = fmt.Errorf("sharding: %s: %w", path, err)
		}
	}()
	if err := s.mapFile(realDir, sf, verify); err != nil {
		return err
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
		return fmt.Errorf("schema metadata differs from the manifest's meta")
	}
	if err := s.checkEntry(sf); err != nil {
		return err
	}
	s.ok = make([]atomic.Bool, len(s.batches))
	if sf.Checksums == nil {
		s.whole = true
		if verify { // the sha256 was checked above
			s.setAllOK()
		}
		return nil
	}
	if s.sums, err = sf.Checksums.parse(); err != nil {
		return err
	}
	return s.openChecks(!inside(s.data, s.batches[0].cols.Input.ptr()))
}

// mapFile maps the shard's file, which must be a regular file of the
// manifest's size inside the build directory (and with verify, of its
// sha256).
func (s *shard) mapFile(realDir string, sf *ShardFile, verify bool) error {
	if err := confined(s.path, realDir); err != nil {
		return err
	}
	// Looked at before it is opened: opening a named pipe waits for ever.
	if st, err := os.Stat(s.path); err != nil {
		return err
	} else if !st.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%v)", st.Mode())
	}
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("not a regular file (%v)", fi.Mode())
	case fi.Size() != sf.Bytes:
		return fmt.Errorf("file has %d bytes; the manifest says %d (truncated or replaced)", fi.Size(), sf.Bytes)
	case fi.Size() <= 0:
		return fmt.Errorf("empty file (%d bytes)", fi.Size())
	case int64(int(fi.Size())) != fi.Size():
		return fmt.Errorf("file of %d bytes does not fit in the address space", fi.Size())
	}
	if s.data, err = mapFile(f, int(fi.Size())); err != nil {
		return err
	}
	s.sha256 = sf.SHA256
	if verify {
		h := sha256.Sum256(s.data)
		if got := hex.EncodeToString(h[:]); got != sf.SHA256 {
			return fmt.Errorf("sha256 %s; the manifest says %s (corrupt or replaced)", got, sf.SHA256)
		}
	}
	return nil
}

// checkEntry compares the shard's rows, tokens and longest row with its
// manifest entry.
func (s *shard) checkEntry(sf *ShardFile) error {
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

// confined checks that path, a file in the build directory, does not lead
// out of it through a symbolic link. realDir is the directory with its own
// links resolved.
func confined(path, realDir string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		return nil
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(realDir, target); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return fmt.Errorf("a symbolic link to %s, outside the build directory", target)
	}
	return nil
}

// metaDiff names the first field where a and b differ, or returns "".
func metaDiff(a, b Meta) string {
	if name, ja, jb := firstDiff(a, b, false); name != "" {
		return fmt.Sprintf("%s is %s in the shard, %s in the manifest", name, ja, jb)
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
		return nil, fmt.Errorf("columns differ from what glmkit format %s writes (%v): have %v", want.Metadata().Values()[0], want, schema)
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
		b.blk = n - 1
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
	if len(s.batches) == 0 {
		return nil, errors.New("no rows")
	}
	s.blocks = footer
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

// listCols is the number of list columns, which lead the schema: input_ids,
// target_ids, loss_mask, position_ids, block_position_ids. intCols are the
// indices of the four integer ones, in the order of masking.Columns.Ints.
const (
	listCols = 5
	lossCol  = 2
)

var intCols = [4]int{0, 1, 3, 4}

// resolve checks one record batch and takes its columns' slices.
func resolve(rec arrow.RecordBatch) (rowBatch, error) {
	var b rowBatch
	rows := int(rec.NumRows())
	if rec.NumCols() != 9 {
		return b, fmt.Errorf("%d columns, want 9", rec.NumCols())
	}
	vals, err := b.resolveOffsets(rec)
	if err != nil {
		return b, err
	}
	ints := b.cols.Ints()
	for k, c := range intCols {
		if *ints[k], err = intsView(vals[c]); err != nil {
			return b, fmt.Errorf("column %s values: %w", rec.ColumnName(c), err)
		}
	}
	if b.cols.LossMask, err = lossView(vals[lossCol]); err != nil {
		return b, fmt.Errorf("column %s values: %w", rec.ColumnName(lossCol), err)
	}
	end := int64(b.offs[rows])
	for k, c := range intCols {
		if n := ints[k].Len(); end > int64(n) {
			return b, fmt.Errorf("column %s: offsets end at %d, past its %d values", rec.ColumnName(c), end, n)
		}
	}
	if n := b.cols.LossMask.Len(); end > int64(n) {
		return b, fmt.Errorf("column %s: offsets end at %d, past its %d values", rec.ColumnName(lossCol), end, n)
	}
	if err := b.resolveScalars(rec); err != nil {
		return b, err
	}
	return b, b.resolveObjectives(rec)
}

// resolveOffsets checks the list columns' offsets, which must be monotone
// and the same in all five, keeps them, and returns each column's values.
func (b *rowBatch) resolveOffsets(rec arrow.RecordBatch) ([listCols]arrow.ArrayData, error) {
	var vals [listCols]arrow.ArrayData
	rows := int(rec.NumRows())
	for c := range listCols {
		d := rec.Column(c).Data()
		name := rec.ColumnName(c)
		if d.Len() != rows || d.NullN() != 0 || len(d.Children()) != 1 {
			return vals, fmt.Errorf("column %s: %d rows with %d nulls; want %d rows and no nulls", name, d.Len(), d.NullN(), rows)
		}
		offs, err := view[int32](d, 1, d.Offset(), rows+1)
		if err != nil {
			return vals, fmt.Errorf("column %s offsets: %w", name, err)
		}
		if vals[c] = d.Children()[0]; vals[c].NullN() != 0 {
			return vals, fmt.Errorf("column %s: %d null values", name, vals[c].NullN())
		}
		if c > 0 {
			if !equalInt32(offs, b.offs) {
				return vals, fmt.Errorf("column %s: row lengths differ from %s", name, ColInput)
			}
			continue
		}
		if offs[0] < 0 {
			return vals, fmt.Errorf("column %s: first offset %d", name, offs[0])
		}
		for j := 1; j < len(offs); j++ {
			if offs[j] < offs[j-1] {
				return vals, fmt.Errorf("column %s: offsets decrease at row %d (%d after %d)", name, j-1, offs[j], offs[j-1])
			}
		}
		b.offs = offs
	}
	return vals, nil
}

// intsView returns an id or position column's values: uint16 (format 2's
// narrow columns) or int32.
func intsView(d arrow.ArrayData) (Ints, error) {
	if d.DataType().ID() == arrow.UINT16 {
		u16, err := view[uint16](d, 1, d.Offset(), d.Len())
		return Ints{u16: u16}, err
	}
	i32, err := view[int32](d, 1, d.Offset(), d.Len())
	return Ints{i32: i32, wide: true}, err
}

// lossView returns the loss mask's values: bool (format 2) or uint8.
func lossView(d arrow.ArrayData) (Bits, error) {
	if d.DataType().ID() == arrow.BOOL {
		return bitsView(d)
	}
	u8, err := view[uint8](d, 1, d.Offset(), d.Len())
	return Bits{u8: u8, n: len(u8)}, err
}

// resolveScalars takes the sep, objective, doc_id and n_source columns.
func (b *rowBatch) resolveScalars(rec arrow.RecordBatch) error {
	rows := int(rec.NumRows())
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
	return err
}

// resolveObjectives reads the objective dictionary and checks every row's
// index into it.
func (b *rowBatch) resolveObjectives(rec arrow.RecordBatch) error {
	dict, ok := rec.Column(6).(*array.Dictionary)
	if !ok {
		return fmt.Errorf("column %s is not dictionary-encoded", ColObjective)
	}
	names, ok := dict.Dictionary().(*array.String)
	if !ok || names.Len() > masking.NumObjectives || names.NullN() != 0 {
		return fmt.Errorf("column %s: dictionary %v is not a set of objective names", ColObjective, dict.Dictionary())
	}
	for i := range names.Len() {
		o, err := masking.ParseObjective(names.Value(i))
		if err != nil {
			return fmt.Errorf("column %s: %w", ColObjective, err)
		}
		b.objOf[i] = o
	}
	for j, x := range b.obj {
		if x < 0 || int(x) >= names.Len() {
			return fmt.Errorf("column %s: row %d has dictionary index %d of %d", ColObjective, j, x, names.Len())
		}
	}
	return nil
}

// bitsView returns a boolean array's values as Bits.
func bitsView(d arrow.ArrayData) (Bits, error) {
	off, n := d.Offset(), d.Len()
	if off < 0 || n < 0 {
		return Bits{}, fmt.Errorf("offset %d, length %d", off, n)
	}
	bufs := d.Buffers()
	if len(bufs) < 2 || bufs[1] == nil {
		if n == 0 {
			return Bits{packed: true}, nil
		}
		return Bits{}, errors.New("buffer missing")
	}
	raw := bufs[1].Bytes()
	if int64(len(raw))*8 < int64(off)+int64(n) {
		return Bits{}, fmt.Errorf("buffer of %d bytes holds fewer than %d bits", len(raw), off+n)
	}
	return Bits{bits: raw[:(off+n+7)/8], off: off, n: n, packed: true}, nil
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
func view[T int32 | int8 | uint8 | uint16 | uint64](d arrow.ArrayData, i, off, n int) ([]T, error) {
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

// ShardData returns the bytes of shard s (in manifest order): the file's
// read-only mapping (for a compressed shard, whose rows the Reader decoded
// into memory of its own, the compressed file). Writing to it crashes the
// program; it is valid until Close. For benchmarks that compare reading
// rows with a plain copy of as many bytes.
func (r *Reader) ShardData(s int) []byte { return r.shards[s].data }

// Mapped reports whether every row aliases a shard's file mapping; it is
// false when some shards were compressed and were decoded into memory.
func (r *Reader) Mapped() bool { return r.mapped }

// Checked reports whether the Reader checks what it serves (it was not
// opened Unchecked).
func (r *Reader) Checked() bool { return r.checks }

// ErrClosed is returned by a closed Reader.
var ErrClosed = errors.New("sharding: use of a closed reader")

// shardOf returns the shard holding global row i (0 ≤ i < r.rows).
func (r *Reader) shardOf(i int64) int { return rangeOf(r.starts, i) }

// rangeOf returns the k with starts[k] ≤ i < starts[k+1], where starts
// (ascending, n+1 entries) bounds n ranges and holds i in one of them.
func rangeOf(starts []int64, i int64) int {
	lo, hi := 0, len(starts)-1 // starts[lo] ≤ i < starts[hi]
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if starts[m] <= i {
			lo = m
		} else {
			hi = m
		}
	}
	return lo
}

// loc is where a global row lies: shard, record batch, row in the batch.
type loc struct {
	shard, batch, row int
}

// locate finds global row i, which must be in range.
func (r *Reader) locate(i int64) loc {
	si := r.shardOf(i)
	s := &r.shards[si]
	local := i - r.starts[si]
	var k int
	if s.uniform > 0 {
		k = int(local / s.uniform)
	} else {
		k = rangeOf(s.bstarts, local)
	}
	return loc{si, k, int(local - s.bstarts[k])}
}

func (r *Reader) rangeError(i int64) error {
	if r.closed {
		return ErrClosed
	}
	return fmt.Errorf("sharding: row %d out of range [0, %d) in %s", i, r.rows, r.dir)
}

// Prefetch hints to the processor that global row i will be viewed soon:
// a prefetch of the entries that place it in its record batch (its offsets,
// sep, objective, document id and source length), so that a loader looking
// up many rows from all over the shards overlaps their memory reads. It
// reads nothing of the row and does nothing for a row out of range.
func (r *Reader) Prefetch(i int64) {
	if i < 0 || i >= r.rows {
		return
	}
	l := r.locate(i)
	b := &r.shards[l.shard].batches[l.batch]
	j := l.row
	prefetchBytes(bytesOf(b.offs[j : j+2]))
	prefetchBytes(bytesOf(b.sep[j : j+1]))
	prefetchBytes(bytesOf(b.obj[j : j+1]))
	prefetchBytes(bytesOf(b.docID[j : j+1]))
	prefetchBytes(bytesOf(b.nsrc[j : j+1]))
}

// viewAt returns global row i, which lies at l, unchecked.
func (r *Reader) viewAt(l loc, i int64) RowView {
	b := &r.shards[l.shard].batches[l.batch]
	j := l.row
	return RowView{
		ColumnViews: sliceViews(&b.cols, int(b.offs[j]), int(b.offs[j+1])),
		Sep:         b.sep[j],
		Objective:   b.objOf[b.obj[j]],
		DocID:       b.docID[j],
		NSource:     b.nsrc[j],
		src:         r,
		at:          l,
		global:      i,
	}
}

// Row returns global row i's columns, as views into the mapping (see
// RowView for their lifetime). Unless the Reader is Unchecked it checks
// the row's record batch (on its first touch) and the row's invariants,
// and fails with an error naming the shard, the batch and the row. It
// allocates nothing unless it fails.
func (r *Reader) Row(i int64) (RowView, error) {
	v, err := r.View(i)
	if err != nil || !v.pending {
		return v, err
	}
	if err := r.checkRow(v.at, i, &v); err != nil {
		return RowView{}, err
	}
	v.pending = false
	return v, nil
}

// View returns global row i as Row does, checking its record batch on
// first touch, but leaves the checks of the row's own invariants to Widen,
// which makes them in the pass that copies the row out: what a loader that
// widens every row into a batch wants, one pass over each row instead of
// two. A view from View must go through Widen before its values are
// trusted.
func (r *Reader) View(i int64) (RowView, error) {
	if i < 0 || i >= r.rows {
		return RowView{}, r.rangeError(i)
	}
	l := r.locate(i)
	if r.checks {
		if err := r.shards[l.shard].check(l.batch); err != nil {
			return RowView{}, err
		}
	}
	v := r.viewAt(l, i)
	v.pending = r.checks
	return v, nil
}

// Widen copies the row into dst, whose five columns must each hold at
// least v.Len() values: ids and positions widened to int32 and the loss
// mask a byte (0 or 1) per position. For a view from View of a checking
// Reader it checks the row's invariants, as Row does, in the same pass,
// and fails with Row's error; dst then holds the row, unchecked.
func (v *RowView) Widen(dst masking.Columns[[]int32, []uint8]) error {
	track := v.pending
	ids := max(gather(dst.Input, v.Input, track), gather(dst.Target, v.Target, track))
	pos := gather(dst.Pos, v.Pos, track)
	block := gather(dst.BlockPos, v.BlockPos, track)
	v.LossMask.copyTo(dst.LossMask)
	if track {
		return v.src.checkMax(v.at, v.global, v, ids, pos, block)
	}
	return nil
}

// Prefetch hints to the processor that the row's columns will be read
// soon: a prefetch for each cache line they occupy, so that a loader
// gathering rows from all over the shards overlaps the memory reads of the
// next row with the copy of this one. It reads nothing and cannot fail.
func (v *RowView) Prefetch() {
	prefetchBytes(v.Input.bytes())
	prefetchBytes(v.Target.bytes())
	prefetchBytes(v.Pos.bytes())
	prefetchBytes(v.BlockPos.bytes())
	prefetchBytes(v.LossMask.bytes())
}

// gather copies c into dst, widening it to int32, and when track is set
// returns its largest value (unsigned: a negative one is large).
func gather(dst []int32, c Ints, track bool) uint32 {
	switch {
	case c.wide && track:
		return copyMax(dst, c.i32)
	case c.wide:
		copy(dst, c.i32)
	case track:
		return uint32(widenMax(dst, c.u16))
	default:
		widen(dst, c.u16)
	}
	return 0
}

// Locate returns the file name of the shard holding global row i and the
// row's index inside it.
func (r *Reader) Locate(i int64) (shard string, row int64, err error) {
	if i < 0 || i >= r.rows {
		return "", 0, r.rangeError(i)
	}
	s := r.shardOf(i)
	return r.shards[s].name, i - r.starts[s], nil
}

// Sample copies global row i into dst, widening its columns to int32 and
// reusing dst's slices; the copy is dst's own. Spans, Shortfall,
// SentenceShort, Rebalanced and Fallback are not stored in shards and are
// cleared.
func (r *Reader) Sample(i int64, dst *masking.Sample) error {
	v, err := r.Row(i)
	if err != nil {
		return err
	}
	v.sample(dst)
	return nil
}

func (v *RowView) sample(dst *masking.Sample) {
	src, out := v.Ints(), dst.Ints()
	for k, c := range src {
		*out[k] = c.AppendTo((*out[k])[:0])
	}
	dst.LossMask = v.LossMask.AppendTo(dst.LossMask[:0])
	dst.Sep = v.Sep
	dst.Objective = v.Objective
	dst.NSource = v.NSource
	dst.Spans = dst.Spans[:0]
	dst.Shortfall = 0
	dst.SentenceShort = 0
	dst.Rebalanced = false
	dst.Fallback = false
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

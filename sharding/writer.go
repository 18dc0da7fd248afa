package sharding

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"os"
	"path/filepath"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/glmkit/glmkit/internal/atomicfile"
	"github.com/glmkit/glmkit/masking"
)

// Options configures a Writer.
type Options struct {
	// Meta goes into every shard's schema metadata.
	Meta Meta
	// Compression of the record batch buffers: "none" (default; shards map
	// with no copy), "zstd" or "lz4" (for archives; reading decompresses).
	Compression string
	// BatchRows is the number of rows per record batch. Default 256: about
	// a MB of shard at seq-len 512, the unit a reader checksums on first touch.
	BatchRows int
}

// ShardFile describes one committed shard.
type ShardFile struct {
	Name         string `json:"name"`
	Rows         int64  `json:"rows"`
	Tokens       int64  `json:"tokens"`        // row positions: Σ len(input_ids)
	SourceTokens int64  `json:"source_tokens"` // Σ n_source
	LossTokens   int64  `json:"loss_tokens"`   // Σ loss_mask
	MaxRowLen    int    `json:"max_row_len"`
	Bytes        int64  `json:"bytes"`
	SHA256       string `json:"sha256"`
	// Checksums hash each record batch, so that readers can check what
	// they touch cheaply (format 2; builds of format 1 have none, and their
	// readers check sha256 instead).
	Checksums *Checksums `json:"checksums,omitempty"`
}

// Writer writes rows into shard files in one directory, one shard at a
// time: rows go to a temporary file, and Commit finishes it (footer, fsync)
// and renames it to its final name, so a crash never leaves a half shard
// under a real name. It writes the format that Options.Meta.FormatVersion
// names (1 or 2). A Writer is not safe for concurrent use: one goroutine
// owns it, as arrow-go's ipc.FileWriter asks.
type Writer struct {
	dir    string
	opts   Options
	schema *arrow.Schema
	dict   arrow.Array // the objective dictionary, shared by every batch
	err    error       // sticky
	vocab  int32

	// The open shard.
	f     *os.File
	tmp   string
	lock  *atomicfile.Temp // the temporary's lock, held until it is renamed or removed
	h     hash.Hash
	cw    countWriter
	sums  *ipcSums
	fw    *ipc.FileWriter
	shard ShardFile

	// The record batch being filled, column by column, as the shard
	// stores it: ids and positions in 16 bits where the format allows,
	// else 32; the loss mask a bit per position (format 2) or a byte.
	offs      []int32
	cols      ColumnViews
	nvals     int // positions in the batch
	sep, nsrc []int32
	obj       []int8
	docID     []uint64
}

// Create returns a Writer that commits shards into dir, creating dir.
func Create(dir string, opts Options) (*Writer, error) {
	switch opts.Compression {
	case "", "none", "zstd", "lz4":
	default:
		return nil, fmt.Errorf("sharding: unknown compression %q (want none, zstd or lz4)", opts.Compression)
	}
	if opts.BatchRows <= 0 {
		opts.BatchRows = 256
	}
	if err := checkMeta(opts.Meta); err != nil {
		return nil, fmt.Errorf("sharding: meta: %w", err)
	}
	schema, err := Schema(opts.Meta)
	if err != nil {
		return nil, fmt.Errorf("sharding: %w", err)
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("sharding: %w", err)
	}
	b := array.NewStringBuilder(memory.DefaultAllocator)
	for o := range masking.NumObjectives {
		b.Append(masking.Objective(o).String())
	}
	w := &Writer{dir: dir, opts: opts, schema: schema, dict: b.NewArray(), vocab: int32(opts.Meta.VocabSize)}
	b.Release()
	w.cols.Input.wide, w.cols.Target.wide = !opts.Meta.NarrowIDs(), !opts.Meta.NarrowIDs()
	w.cols.Pos.wide, w.cols.BlockPos.wide = !opts.Meta.NarrowPositions(), !opts.Meta.NarrowPositions()
	w.cols.LossMask.packed = opts.Meta.FormatVersion >= 2
	w.offs = append(w.offs, 0)
	return w, nil
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}

// RowBytes is the number of bytes a row of n positions adds to a shard's
// buffers in the format m names, used for --shard-bytes: the id, position
// and loss mask values, five list offsets and the scalar columns.
func (m Meta) RowBytes(n int) int64 {
	return int64(m.BytesPerPosition()*float64(n)+0.999) + 5*4 + 4 + 1 + 8 + 4
}

// Write appends one row; docID is the id of the row's first document. A
// row whose values the format cannot store (an id outside the vocabulary,
// a position past 16 bits in a narrow column, a loss mask other than 0 or 1)
// is an error, never a silent truncation, and so is a row of more source
// tokens than seq_len.
func (w *Writer) Write(s *masking.Sample, docID uint64) error {
	if w.err != nil {
		return w.err
	}
	n := len(s.Input)
	if len(s.Target) != n || len(s.LossMask) != n || len(s.Pos) != n || len(s.BlockPos) != n {
		return fmt.Errorf("sharding: row of %d inputs, %d targets, %d loss mask, %d positions, %d block positions", n, len(s.Target), len(s.LossMask), len(s.Pos), len(s.BlockPos))
	}
	if s.NSource > int32(w.opts.Meta.SeqLen) {
		return fmt.Errorf("sharding: row of %d source tokens, more than seq_len %d", s.NSource, w.opts.Meta.SeqLen)
	}
	if int64(w.nvals)+int64(n) > math.MaxInt32 {
		if err := w.flush(); err != nil {
			return w.fail(err)
		}
	}
	if w.f == nil {
		if err := w.open(); err != nil {
			return w.fail(err)
		}
	}
	if err := w.appendRow(s); err != nil {
		return err
	}
	w.nvals += n
	w.offs = append(w.offs, int32(w.nvals))
	w.sep = append(w.sep, s.Sep)
	w.obj = append(w.obj, int8(s.Objective))
	w.docID = append(w.docID, docID)
	w.nsrc = append(w.nsrc, s.NSource)
	w.shard.Rows++
	w.shard.Tokens += int64(n)
	w.shard.SourceTokens += int64(s.NSource)
	w.shard.MaxRowLen = max(w.shard.MaxRowLen, n)
	w.shard.Bytes += w.opts.Meta.RowBytes(n)
	if len(w.sep) >= w.opts.BatchRows {
		if err := w.flush(); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

// appendRow appends the row's five list columns to the record batch
// being filled, narrowing them where the format does, and checks that the
// format can store its values; a row it cannot store is not appended.
func (w *Writer) appendRow(s *masking.Sample) error {
	c := &w.cols
	ids := max(c.Input.push(s.Input), c.Target.push(s.Target))
	pos := max(c.Pos.push(s.Pos), c.BlockPos.push(s.BlockPos))
	var loss uint8
	var ones int64
	for _, m := range s.LossMask {
		loss |= m
		ones += int64(m)
	}
	var err error
	switch {
	case ids >= uint32(w.vocab):
		err = fmt.Errorf("sharding: row with token id %d outside the vocabulary [0, %d)", int32(ids), w.vocab)
	case !c.Pos.wide && pos > math.MaxUint16:
		err = fmt.Errorf("sharding: row with position %d, past the 16 bits of format %d's position columns (seq_len %d)", int32(pos), w.opts.Meta.FormatVersion, w.opts.Meta.SeqLen)
	case pos > math.MaxInt32:
		err = fmt.Errorf("sharding: row with negative position %d", int32(pos))
	case loss > 1:
		err = fmt.Errorf("sharding: row with loss mask values other than 0 and 1")
	case s.Objective >= masking.NumObjectives:
		err = fmt.Errorf("sharding: row with objective %d", s.Objective)
	}
	if err != nil {
		for _, col := range c.Ints() {
			col.truncate(w.nvals)
		}
		return err
	}
	c.LossMask.push(s.LossMask)
	w.shard.LossTokens += ones
	return nil
}

// Pending returns the rows and buffer bytes of the shard being filled.
func (w *Writer) Pending() (rows int64, bytes int64) { return w.shard.Rows, w.shard.Bytes }

func (w *Writer) open() error {
	f, lock, err := atomicfile.Create(w.dir, "shard")
	if err != nil {
		return fmt.Errorf("sharding: %w", err)
	}
	w.f, w.tmp, w.lock = f, lock.Path, lock
	w.h = sha256.New()
	w.cw = countWriter{w: io.MultiWriter(&writeback{f: f}, w.h)}
	w.sums = newIPCSums(&w.cw)
	opts := []ipc.Option{ipc.WithSchema(w.schema), ipc.WithAllocator(memory.DefaultAllocator)}
	switch w.opts.Compression {
	case "zstd":
		opts = append(opts, ipc.WithZstd())
	case "lz4":
		opts = append(opts, ipc.WithLZ4())
	}
	w.fw, err = ipc.NewFileWriter(w.sums, opts...)
	if err != nil {
		return fmt.Errorf("sharding: %w", err)
	}
	w.shard = ShardFile{}
	return nil
}

func bytesOf[T int32 | uint64 | int8 | uint8 | uint16](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(s[0])))
}

// flush writes the rows gathered so far as one record batch. The arrays
// point at the Writer's slices; the ipc writer has encoded them by the time
// Write returns, so the slices are reused at once.
func (w *Writer) flush() error {
	rows := len(w.sep)
	if rows == 0 {
		return nil
	}
	offs := memory.NewBufferBytes(bytesOf(w.offs))
	n := w.nvals
	list := func(typ arrow.DataType, vals []byte) arrow.Array {
		elem := typ.(*arrow.ListType).Elem()
		child := array.NewData(elem, n, []*memory.Buffer{nil, memory.NewBufferBytes(vals)}, nil, 0, 0)
		defer child.Release()
		d := array.NewData(typ, rows, []*memory.Buffer{nil, offs}, []arrow.ArrayData{child}, 0, 0)
		defer d.Release()
		return array.MakeFromData(d)
	}
	prim := func(typ arrow.DataType, vals []byte) arrow.Array {
		d := array.NewData(typ, rows, []*memory.Buffer{nil, memory.NewBufferBytes(vals)}, nil, 0, 0)
		defer d.Release()
		return array.MakeFromData(d)
	}
	fields := w.schema.Fields()
	idx := prim(arrow.PrimitiveTypes.Int8, bytesOf(w.obj))
	c := &w.cols
	cols := []arrow.Array{
		list(fields[0].Type, c.Input.bytes()),
		list(fields[1].Type, c.Target.bytes()),
		list(fields[2].Type, c.LossMask.bytes()),
		list(fields[3].Type, c.Pos.bytes()),
		list(fields[4].Type, c.BlockPos.bytes()),
		prim(arrow.PrimitiveTypes.Int32, bytesOf(w.sep)),
		array.NewDictionaryArray(objectiveType, idx, w.dict),
		prim(arrow.PrimitiveTypes.Uint64, bytesOf(w.docID)),
		prim(arrow.PrimitiveTypes.Int32, bytesOf(w.nsrc)),
	}
	idx.Release()
	rec := array.NewRecordBatch(w.schema, cols, int64(rows))
	for _, c := range cols {
		c.Release()
	}
	err := w.fw.Write(rec)
	rec.Release()
	if err != nil {
		return fmt.Errorf("sharding: writing %s: %w", w.tmp, err)
	}
	w.reset()
	return nil
}

// reset empties the record batch being filled.
func (w *Writer) reset() {
	w.offs = append(w.offs[:0], 0)
	for _, c := range w.cols.Ints() {
		c.truncate(0)
	}
	w.cols.LossMask.reset()
	w.nvals = 0
	w.sep, w.obj, w.docID, w.nsrc = w.sep[:0], w.obj[:0], w.docID[:0], w.nsrc[:0]
}

// Commit finishes the shard being filled and renames it to name (a base
// name inside the Writer's directory), replacing any file of that name. It
// syncs the file and the directory before returning. The next Write starts
// a new shard.
func (w *Writer) Commit(name string) (ShardFile, error) {
	if w.err != nil {
		return ShardFile{}, w.err
	}
	if w.f == nil {
		return ShardFile{}, errors.New("sharding: commit of an empty shard")
	}
	err := w.flush()
	if err == nil {
		err = w.fw.Close()
	}
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if err == nil {
		err = os.Rename(w.tmp, filepath.Join(w.dir, name))
	}
	if err == nil {
		err = atomicfile.SyncDir(w.dir)
	}
	if err != nil {
		os.Remove(w.tmp)
	}
	w.lock.Release()
	if err != nil {
		return ShardFile{}, w.fail(fmt.Errorf("sharding: committing %s: %w", name, err))
	}
	sf := w.shard
	sf.Name = name
	sf.Bytes = w.cw.n
	sf.SHA256 = hex.EncodeToString(w.h.Sum(nil))
	if sf.Checksums, err = w.sums.checksums(); err != nil {
		return ShardFile{}, w.fail(fmt.Errorf("sharding: committing %s: %w", name, err))
	}
	w.shard = ShardFile{}
	return sf, nil
}

// Abort drops the shard being filled, removing its temporary file. The
// Writer can be used again afterwards unless an earlier error was sticky.
func (w *Writer) Abort() error {
	if w.f == nil {
		return nil
	}
	w.fw = nil
	err := w.f.Close()
	w.f = nil
	if rerr := os.Remove(w.tmp); err == nil {
		err = rerr
	}
	w.lock.Release()
	w.reset()
	w.shard = ShardFile{}
	return err
}

// Close aborts any uncommitted shard and releases the Writer.
func (w *Writer) Close() error {
	err := w.Abort()
	if w.dict != nil {
		w.dict.Release()
		w.dict = nil
	}
	return err
}

// writeback passes writes on to a file and, every writebackBytes, asks
// the kernel to start writing what came before to disk, so that the disk
// works while the build computes and Commit's fsync finds little left to
// do (RocksDB's bytes_per_sync). A build writes shards several times as
// large as its input: waiting for all of a shard at its fsync stalled the
// pipeline for a second or more per 256 MiB shard.
type writeback struct {
	f          *os.File
	n, started int64
}

const writebackBytes = 8 << 20

func (wb *writeback) Write(p []byte) (int, error) {
	n, err := wb.f.Write(p)
	wb.n += int64(n)
	if wb.n-wb.started >= writebackBytes {
		startWriteback(wb.f, wb.started, wb.n-wb.started)
		wb.started = wb.n
	}
	return n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

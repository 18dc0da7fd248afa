package sharding

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/glmkit/glmkit/masking"
)

// Options configures a Writer.
type Options struct {
	// Meta goes into every shard's schema metadata.
	Meta Meta
	// Compression of the record batch buffers: "none" (default; shards map
	// with no copy), "zstd" or "lz4" (for archives; reading decompresses).
	Compression string
	// BatchRows is the number of rows per record batch. Default 1024.
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
}

// Writer writes rows into shard files in one directory, one shard at a
// time: rows go to a temporary file, and Commit finishes it (footer, fsync)
// and renames it to its final name, so a crash never leaves a half shard
// under a real name. A Writer is not safe for concurrent use: one goroutine
// owns it, as arrow-go's ipc.FileWriter asks.
type Writer struct {
	dir    string
	opts   Options
	schema *arrow.Schema
	dict   arrow.Array // the objective dictionary, shared by every batch
	err    error       // sticky

	// The open shard.
	f     *os.File
	tmp   string
	lock  *Temp // the temporary's lock, held until it is renamed or removed
	h     hash.Hash
	cw    countWriter
	fw    *ipc.FileWriter
	shard ShardFile

	// The record batch being filled, column by column.
	offs                      []int32
	input, target, pos, block []int32
	loss                      []uint8
	sep, nsrc                 []int32
	obj                       []int8
	docID                     []uint64
}

// Create returns a Writer that commits shards into dir, creating dir.
func Create(dir string, opts Options) (*Writer, error) {
	switch opts.Compression {
	case "", "none", "zstd", "lz4":
	default:
		return nil, fmt.Errorf("sharding: unknown compression %q (want none, zstd or lz4)", opts.Compression)
	}
	if opts.BatchRows <= 0 {
		opts.BatchRows = 1024
	}
	schema, err := Schema(opts.Meta)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sharding: %w", err)
	}
	b := array.NewStringBuilder(memory.DefaultAllocator)
	for o := range masking.NumObjectives {
		b.Append(masking.Objective(o).String())
	}
	w := &Writer{dir: dir, opts: opts, schema: schema, dict: b.NewArray()}
	b.Release()
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
// buffers, used for --shard-bytes.
func RowBytes(n int) int64 { return int64(17*n + 5*4 + 4 + 1 + 8 + 4) }

// Write appends one row; docID is the id of the row's first document.
func (w *Writer) Write(s *masking.Sample, docID uint64) error {
	if w.err != nil {
		return w.err
	}
	if w.f == nil {
		if err := w.open(); err != nil {
			return w.fail(err)
		}
	}
	n := len(s.Input)
	w.input = append(w.input, s.Input...)
	w.target = append(w.target, s.Target...)
	w.loss = append(w.loss, s.LossMask...)
	w.pos = append(w.pos, s.Pos...)
	w.block = append(w.block, s.BlockPos...)
	w.offs = append(w.offs, int32(len(w.input)))
	w.sep = append(w.sep, s.Sep)
	w.obj = append(w.obj, int8(s.Objective))
	w.docID = append(w.docID, docID)
	w.nsrc = append(w.nsrc, s.NSource)
	w.shard.Rows++
	w.shard.Tokens += int64(n)
	w.shard.SourceTokens += int64(s.NSource)
	for _, m := range s.LossMask {
		w.shard.LossTokens += int64(m)
	}
	w.shard.MaxRowLen = max(w.shard.MaxRowLen, n)
	w.shard.Bytes += RowBytes(n)
	if len(w.sep) >= w.opts.BatchRows {
		if err := w.flush(); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

// Pending returns the rows and buffer bytes of the shard being filled.
func (w *Writer) Pending() (rows int64, bytes int64) { return w.shard.Rows, w.shard.Bytes }

func (w *Writer) open() error {
	f, lock, err := CreateTemp(w.dir, "shard")
	if err != nil {
		return fmt.Errorf("sharding: %w", err)
	}
	w.f, w.tmp, w.lock = f, lock.Path, lock
	w.h = sha256.New()
	w.cw = countWriter{w: io.MultiWriter(f, w.h)}
	opts := []ipc.Option{ipc.WithSchema(w.schema), ipc.WithAllocator(memory.DefaultAllocator)}
	switch w.opts.Compression {
	case "zstd":
		opts = append(opts, ipc.WithZstd())
	case "lz4":
		opts = append(opts, ipc.WithLZ4())
	}
	w.fw, err = ipc.NewFileWriter(&w.cw, opts...)
	if err != nil {
		return fmt.Errorf("sharding: %w", err)
	}
	w.shard = ShardFile{}
	return nil
}

func bytesOf[T int32 | uint64 | int8 | uint8](s []T) []byte {
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
	list := func(typ arrow.DataType, vals []byte, n int) arrow.Array {
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
	n := len(w.input)
	fields := w.schema.Fields()
	idx := prim(arrow.PrimitiveTypes.Int8, bytesOf(w.obj))
	cols := []arrow.Array{
		list(fields[0].Type, bytesOf(w.input), n),
		list(fields[1].Type, bytesOf(w.target), n),
		list(fields[2].Type, bytesOf(w.loss), n),
		list(fields[3].Type, bytesOf(w.pos), n),
		list(fields[4].Type, bytesOf(w.block), n),
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
	w.offs = append(w.offs[:0], 0)
	w.input, w.target, w.loss = w.input[:0], w.target[:0], w.loss[:0]
	w.pos, w.block = w.pos[:0], w.block[:0]
	w.sep, w.obj, w.docID, w.nsrc = w.sep[:0], w.obj[:0], w.docID[:0], w.nsrc[:0]
	return nil
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
		err = syncDir(w.dir)
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
	w.offs = append(w.offs[:0], 0)
	w.input, w.target, w.loss = w.input[:0], w.target[:0], w.loss[:0]
	w.pos, w.block = w.pos[:0], w.block[:0]
	w.sep, w.obj, w.docID, w.nsrc = w.sep[:0], w.obj[:0], w.docID[:0], w.nsrc[:0]
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

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, synced and renamed, then syncs the directory.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, lock, err := CreateTemp(dir, filepath.Base(path))
	if err != nil {
		return err
	}
	defer lock.Release()
	tmp := lock.Path
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

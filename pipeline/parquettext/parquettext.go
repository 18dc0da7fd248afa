// Package parquettext reads one text column of a Parquet file, a row group
// at a time, with arrow-go's Parquet reader: the input side of glmprep for
// Hugging Face datasets, which are published as Parquet. It is an input
// reader, so it lives under pipeline; with sharding it is one of the two
// packages that import arrow-go (its Parquet reader here, its Arrow IPC
// there).
package parquettext

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// Magic is the first (and last) four bytes of a Parquet file.
const Magic = "PAR1"

// File is a Parquet file opened to read one text column (top-level, or a string inside a struct). It is
// not safe for concurrent use.
type File struct {
	path   string
	src    *source
	rdr    *file.Reader
	column int
	maxDef int16
}

// DamageError is damaged data in a row group: Row rows of it were read
// before the damage, and the rest of it cannot be.
type DamageError struct {
	Path     string
	RowGroup int
	Row      int64 // rows of the row group read before the damage
	Offset   int64 // the column chunk's byte offset in the file
	Err      error
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("parquettext: %s: row group %d (column chunk at byte %d) is damaged after %d rows: %v", e.Path, e.RowGroup, e.Offset, e.Row, e.Err)
}

// Source is an open Parquet file (an *os.File, or a test's stand-in).
type Source interface {
	io.ReaderAt
	io.Seeker
	io.Closer
	Stat() (os.FileInfo, error)
}

// source is the file as arrow-go reads it; it remembers whether a read
// failed, so a decoding error can be told from an I/O error. A failed read
// is reported as the error the Source gave, which names the file (an
// *os.File's *PathError, or the caller's own I/O error type), so that a
// caller sees its own errors come back.
type source struct {
	f   Source
	err error // the first read error
}

func (s *source) ReadAt(p []byte, off int64) (int, error) {
	n, err := s.f.ReadAt(p, off)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

func (s *source) Seek(off int64, whence int) (int64, error) {
	n, err := s.f.Seek(off, whence)
	if err != nil && s.err == nil {
		s.err = err
	}
	return n, err
}

// Open opens path and finds column, which must be a non-repeated
// BYTE_ARRAY column (a string, or plain bytes): top-level, or inside a
// struct by its dotted path (meta.text). A list or a struct is an error
// that says so.
func Open(path, column string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("parquettext: %w", err)
	}
	f, err := OpenSource(path, fh, column)
	if err != nil {
		fh.Close()
		return nil, err
	}
	return f, nil
}

// OpenSource is Open on a file already open; Close closes it.
func OpenSource(path string, fh Source, column string) (_ *File, err error) {
	src := &source{f: fh}
	defer func() {
		if r := recover(); r != nil { // arrow-go's reader can panic on corrupt files
			err = fmt.Errorf("parquettext: %s: corrupt Parquet file: %v", path, r)
		}
		if err != nil && src.err != nil {
			err = src.err
		}
	}()
	rdr, err := file.NewParquetReader(src)
	if err != nil {
		return nil, fmt.Errorf("parquettext: %s: not a readable Parquet file: %w", path, err)
	}
	sc := rdr.MetaData().Schema
	leaf := sc.ColumnIndexByName(column)
	if leaf < 0 {
		return nil, noColumn(path, column, sc)
	}
	col := sc.Column(leaf)
	if col.PhysicalType() != parquet.Types.ByteArray || col.MaxRepetitionLevel() != 0 {
		return nil, fmt.Errorf("parquettext: %s: column %q holds %s, not text", path, column, describe(col))
	}
	f := &File{path: path, src: src, rdr: rdr, column: leaf, maxDef: col.MaxDefinitionLevel()}
	for rg := range f.RowGroups() {
		if _, _, err := f.chunk(rg); err != nil {
			return nil, err
		}
		if n := f.Rows(rg); n < 0 || n > 1<<40 {
			return nil, fmt.Errorf("parquettext: %s: row group %d has %d rows", path, rg, n)
		}
	}
	return f, nil
}

// chunk returns the byte range of the text column's chunk in row group rg.
func (f *File) chunk(rg int) (off, n int64, err error) {
	cc, err := f.rdr.MetaData().RowGroup(rg).ColumnChunk(f.column)
	if err != nil {
		return 0, 0, fmt.Errorf("parquettext: %s: row group %d: %w", f.path, rg, err)
	}
	off = cc.DataPageOffset()
	if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && cc.DictionaryPageOffset() < off {
		off = cc.DictionaryPageOffset()
	}
	n = cc.TotalCompressedSize()
	st, err := f.src.f.Stat()
	if err != nil {
		return 0, 0, err
	}
	if off < 4 || n < 0 || off+n > st.Size() {
		return 0, 0, fmt.Errorf("parquettext: %s: row group %d: column chunk [%d, %d) lies outside the file of %d bytes", f.path, rg, off, off+n, st.Size())
	}
	return off, n, nil
}

// ChunkOffset is the byte offset of the text column's chunk in row group rg.
func (f *File) ChunkOffset(rg int) int64 {
	off, _, _ := f.chunk(rg)
	return off
}

// HashChunk returns the sha256 of the raw bytes of the text column's chunk
// in row group rg: the bytes ReadRowGroup decodes.
func (f *File) HashChunk(ctx context.Context, rg int) (string, error) {
	off, n, err := f.chunk(rg)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for done := int64(0); done < n; {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		k := int(min(int64(len(buf)), n-done))
		m, err := f.src.ReadAt(buf[:k], off+done)
		h.Write(buf[:m])
		done += int64(m)
		switch {
		case err == io.EOF && done < n:
			return "", fmt.Errorf("parquettext: %s: the file ends at byte %d, inside row group %d's column chunk [%d, %d) (it shrank while it was read?)", f.path, off+done, rg, off, off+n)
		case err != nil && err != io.EOF:
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// noColumn is the error of a column that is not a leaf of sc: a list or a
// group of columns (its leaves are below it), or no column at all.
func noColumn(path, column string, sc *schema.Schema) error {
	var names, below []string
	repeated := false
	for i := range sc.NumColumns() {
		c := sc.Column(i)
		names = append(names, c.Path())
		if strings.HasPrefix(c.Path(), column+".") {
			below = append(below, c.Path())
			repeated = repeated || c.MaxRepetitionLevel() > 0
		}
	}
	switch {
	case len(below) > 0 && repeated:
		return fmt.Errorf("parquettext: %s: column %q is a list (its leaves: %s), not one string a row: glmkit reads a string column; join the list into one string a row first (pyarrow.compute.binary_join)", path, column, strings.Join(below, ", "))
	case len(below) > 0:
		return fmt.Errorf("parquettext: %s: column %q is a group of columns (a struct), not a string column: name a string column inside it (--text-field %s)", path, column, strings.Join(below, " or "))
	}
	return fmt.Errorf("parquettext: %s: no column %q (columns: %s)", path, column, strings.Join(names, ", "))
}

func describe(c *schema.Column) string {
	if c.MaxRepetitionLevel() > 0 {
		return "a repeated " + c.PhysicalType().String()
	}
	return c.PhysicalType().String()
}

// RowGroups is the number of row groups.
func (f *File) RowGroups() int { return f.rdr.NumRowGroups() }

// Rows is the number of rows of row group rg.
func (f *File) Rows(rg int) int64 { return f.rdr.MetaData().RowGroups[rg].GetNumRows() }

// RowGroupBytes is the compressed size of row group rg on disk.
func (f *File) RowGroupBytes(rg int) int64 {
	return f.rdr.MetaData().RowGroup(rg).TotalCompressedSize()
}

// ReadRowGroup calls fn with every value of the text column in row group rg,
// in order; null is true for a null value. text is only valid during the
// call. A failure to read the file is the error the Source gave; damaged
// data is a *DamageError that says how many rows were read before it; an
// error from fn or ctx is returned as it is.
func (f *File) ReadRowGroup(ctx context.Context, rg int, fn func(text []byte, null bool) error) (err error) {
	var rows int64
	var fnErr error
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt data: %v", r)
		}
		switch {
		case err == nil || fnErr != nil || ctx.Err() != nil && errors.Is(err, ctx.Err()):
		case f.src.err != nil:
			err = f.src.err
		default:
			err = &DamageError{Path: f.path, RowGroup: rg, Row: rows, Offset: f.ChunkOffset(rg), Err: err}
		}
	}()
	if rg < 0 || rg >= f.RowGroups() {
		return fmt.Errorf("no row group %d", rg)
	}
	cr, err := f.rdr.RowGroup(rg).Column(f.column)
	if err != nil {
		return err
	}
	br, ok := cr.(*file.ByteArrayColumnChunkReader)
	if !ok {
		return fmt.Errorf("column reader %T", cr)
	}
	const batch = 1024
	values := make([]parquet.ByteArray, batch)
	defs := make([]int16, batch)
	want := f.Rows(rg)
	for br.HasNext() {
		if err := ctx.Err(); err != nil {
			return err
		}
		total, n, err := br.ReadBatch(batch, values, defs, nil)
		if err != nil {
			return err
		}
		if n > int(total) || total < 0 || total > batch || rows+total > want {
			return fmt.Errorf("%d values for %d rows", n, total)
		}
		v := 0
		for i := range int(total) {
			if f.maxDef > 0 && defs[i] < f.maxDef {
				if fnErr = fn(nil, true); fnErr != nil {
					return fnErr
				}
				rows++
				continue
			}
			if v >= n {
				return fmt.Errorf("%d values for %d rows", n, total)
			}
			if fnErr = fn(values[v], false); fnErr != nil {
				return fnErr
			}
			v++
			rows++
		}
		if total == 0 {
			break
		}
	}
	if rows != want {
		return fmt.Errorf("%d rows decoded; the row group has %d", rows, want)
	}
	return nil
}

// Close closes the file.
func (f *File) Close() error { return f.src.f.Close() }

// WriteTexts writes texts as a Parquet file with one optional string column
// (nil entries are nulls), rowGroupRows rows per row group, snappy
// compressed. It exists to make test fixtures and small conversions with
// the same library that reads them.
func WriteTexts(path, column string, texts [][]byte, rowGroupRows int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parquettext: writing %s: %v", path, r)
		}
	}()
	node, err := schema.NewPrimitiveNodeLogical(column, parquet.Repetitions.Optional, schema.StringLogicalType{}, parquet.Types.ByteArray, -1, -1)
	if err != nil {
		return err
	}
	root, err := schema.NewGroupNode("schema", parquet.Repetitions.Required, schema.FieldList{node}, -1)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("parquettext: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close() // on success the Parquet writer has closed it
		}
	}()
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithDictionaryDefault(false))
	w, err := file.NewParquetWriterWithError(f, root, file.WithWriterProps(props))
	if err != nil {
		return err
	}
	for start := 0; start < len(texts); start += rowGroupRows {
		group := texts[start:min(start+rowGroupRows, len(texts))]
		rg, err := w.AppendRowGroupChecked()
		if err != nil {
			return err
		}
		cw, err := rg.NextColumn()
		if err != nil {
			return err
		}
		var vals []parquet.ByteArray
		defs := make([]int16, len(group))
		for i, t := range group {
			if t != nil {
				vals = append(vals, t)
				defs[i] = 1
			}
		}
		if _, err := cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(vals, defs, nil); err != nil {
			return err
		}
		if err := cw.Close(); err != nil {
			return err
		}
		if err := rg.Close(); err != nil {
			return err
		}
	}
	return w.Close()
}

// Package parquettext reads one text column of a Parquet file, a row group
// at a time, with arrow-go's Parquet reader: the input side of glmprep for
// Hugging Face datasets, which are published as Parquet. It lives under
// sharding because sharding is the one part of glmkit that imports
// arrow-go.
package parquettext

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// Magic is the first (and last) four bytes of a Parquet file.
const Magic = "PAR1"

// File is a Parquet file opened to read one top-level text column. It is
// not safe for concurrent use.
type File struct {
	path   string
	rdr    *file.Reader
	column int
	maxDef int16
}

// Open opens path and finds column, which must be a top-level, non-repeated
// BYTE_ARRAY column (a string, or plain bytes).
func Open(path, column string) (_ *File, err error) {
	defer func() {
		if r := recover(); r != nil { // arrow-go's reader can panic on corrupt files
			err = fmt.Errorf("parquettext: %s: corrupt Parquet file: %v", path, r)
		}
	}()
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		if _, serr := os.Stat(path); serr != nil {
			return nil, fmt.Errorf("parquettext: %w", serr)
		}
		return nil, fmt.Errorf("parquettext: %s: %w", path, err)
	}
	sc := rdr.MetaData().Schema
	leaf := sc.ColumnIndexByName(column)
	if leaf < 0 {
		var names []string
		for i := 0; i < sc.NumColumns(); i++ {
			names = append(names, sc.Column(i).Path())
		}
		rdr.Close()
		return nil, fmt.Errorf("parquettext: %s: no column %q (columns: %s)", path, column, strings.Join(names, ", "))
	}
	col := sc.Column(leaf)
	if col.PhysicalType() != parquet.Types.ByteArray || col.MaxRepetitionLevel() != 0 {
		rdr.Close()
		return nil, fmt.Errorf("parquettext: %s: column %q holds %s, not text", path, column, describe(col))
	}
	return &File{path: path, rdr: rdr, column: leaf, maxDef: col.MaxDefinitionLevel()}, nil
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
// call.
func (f *File) ReadRowGroup(ctx context.Context, rg int, fn func(text []byte, null bool) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parquettext: %s: row group %d: corrupt data: %v", f.path, rg, r)
		}
	}()
	cr, err := f.rdr.RowGroup(rg).Column(f.column)
	if err != nil {
		return fmt.Errorf("parquettext: %s: row group %d: %w", f.path, rg, err)
	}
	br, ok := cr.(*file.ByteArrayColumnChunkReader)
	if !ok {
		return fmt.Errorf("parquettext: %s: row group %d: column reader %T", f.path, rg, cr)
	}
	const batch = 1024
	values := make([]parquet.ByteArray, batch)
	defs := make([]int16, batch)
	for br.HasNext() {
		if err := ctx.Err(); err != nil {
			return err
		}
		total, n, err := br.ReadBatch(batch, values, defs, nil)
		if err != nil {
			return fmt.Errorf("parquettext: %s: row group %d: %w", f.path, rg, err)
		}
		v := 0
		for i := range int(total) {
			if f.maxDef > 0 && defs[i] < f.maxDef {
				if err := fn(nil, true); err != nil {
					return err
				}
				continue
			}
			if v >= n {
				return fmt.Errorf("parquettext: %s: row group %d: %d values for %d rows", f.path, rg, n, total)
			}
			if err := fn(values[v], false); err != nil {
				return err
			}
			v++
		}
	}
	return nil
}

// Close closes the file.
func (f *File) Close() error { return f.rdr.Close() }

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

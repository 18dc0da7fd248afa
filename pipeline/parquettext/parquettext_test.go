package parquettext

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

func TestRoundTrip(t *testing.T) {
	var texts [][]byte
	for i := range 2500 {
		switch {
		case i%97 == 5:
			texts = append(texts, nil)
		case i%13 == 0:
			texts = append(texts, []byte{})
		default:
			texts = append(texts, []byte(fmt.Sprintf("document %d: %s", i, strings.Repeat("é", i%7))))
		}
	}
	path := filepath.Join(t.TempDir(), "t.parquet")
	if err := WriteTexts(path, "text", texts, 1000); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path, "text")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.RowGroups() != 3 || f.Rows(2) != 500 {
		t.Fatalf("%d row groups, last with %d rows", f.RowGroups(), f.Rows(2))
	}
	i := 0
	for rg := range f.RowGroups() {
		err := f.ReadRowGroup(context.Background(), rg, func(text []byte, null bool) error {
			if null != (texts[i] == nil) || string(text) != string(texts[i]) {
				return fmt.Errorf("row %d: %q (null %v), want %q", i, text, null, texts[i])
			}
			i++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if i != len(texts) {
		t.Fatalf("read %d rows of %d", i, len(texts))
	}
	if _, err := Open(path, "body"); err == nil || !strings.Contains(err.Error(), "no column \"body\" (columns: text)") {
		t.Errorf("missing column: %v", err)
	}
}

func TestCorrupt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t.parquet")
	texts := [][]byte{[]byte("a"), []byte("bb"), []byte("ccc")}
	if err := WriteTexts(path, "text", texts, 2); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	for _, cut := range []int{0, 4, len(data) / 2, len(data) - 9, len(data) - 1} {
		p := filepath.Join(dir, fmt.Sprintf("cut%d.parquet", cut))
		os.WriteFile(p, data[:cut], 0o644)
		f, err := Open(p, "text")
		if err == nil {
			err = f.ReadRowGroup(context.Background(), 0, func([]byte, bool) error { return nil })
			f.Close()
		}
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("truncated to %d bytes: err %v, want one naming the file", cut, err)
		}
	}
	for i := 8; i < len(data)-8; i += 7 {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x5a
		p := filepath.Join(dir, "flip.parquet")
		os.WriteFile(p, bad, 0o644)
		f, err := Open(p, "text") // must not panic
		if err == nil {
			for rg := range f.RowGroups() {
				_ = f.ReadRowGroup(context.Background(), rg, func([]byte, bool) error { return nil })
			}
			f.Close()
		}
	}
}

// A --text-field that names a list or a struct, as Hugging Face datasets
// have them, is an error that says which it is and what to name instead;
// a string leaf inside a struct, named as the error suggests, is read.
func TestNestedColumns(t *testing.T) {
	str := func(name string) schema.Node {
		n, err := schema.NewPrimitiveNodeLogical(name, parquet.Repetitions.Optional, schema.StringLogicalType{}, parquet.Types.ByteArray, -1, -1)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	list, err := schema.ListOfWithName("paragraphs", str("element"), parquet.Repetitions.Optional, -1)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := schema.NewGroupNode("meta", parquet.Repetitions.Optional, schema.FieldList{str("title"), str("body")}, -1)
	if err != nil {
		t.Fatal(err)
	}
	root, err := schema.NewGroupNode("schema", parquet.Repetitions.Required, schema.FieldList{list, meta}, -1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nested.parquet")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := file.NewParquetWriter(fh, root)
	rg := w.AppendRowGroup()
	// Two rows: paragraphs ["a", "b"] and ["c"]; meta {title, body} and
	// {title, null}.
	for _, c := range []struct {
		vals       []string
		defs, reps []int16
	}{
		{[]string{"a", "b", "c"}, []int16{3, 3, 3}, []int16{0, 1, 0}},
		{[]string{"first title", "second title"}, []int16{2, 2}, nil},
		{[]string{"the first body"}, []int16{2, 1}, nil},
	} {
		cw, err := rg.NextColumn()
		if err != nil {
			t.Fatal(err)
		}
		var vals []parquet.ByteArray
		for _, v := range c.vals {
			vals = append(vals, parquet.ByteArray(v))
		}
		if _, err := cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(vals, c.defs, c.reps); err != nil {
			t.Fatal(err)
		}
		cw.Close()
	}
	rg.Close()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct{ column, want string }{
		{"paragraphs", `column "paragraphs" is a list (its leaves: paragraphs.list.element), not one string a row`},
		{"meta", `column "meta" is a group of columns (a struct), not a string column: name a string column inside it (--text-field meta.title or meta.body)`},
		{"body", `no column "body" (columns: paragraphs.list.element, meta.title, meta.body)`},
		{"paragraphs.list.element", `column "paragraphs.list.element" holds a repeated BYTE_ARRAY, not text`},
	} {
		if _, err := Open(path, c.column); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q) = %v; want an error that says %q", c.column, err, c.want)
		}
	}
	f, err := Open(path, "meta.body")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	err = f.ReadRowGroup(context.Background(), 0, func(text []byte, null bool) error {
		got = append(got, fmt.Sprintf("%q %v", text, null))
		return nil
	})
	if want := []string{`"the first body" false`, `"" true`}; err != nil || !slices.Equal(got, want) {
		t.Errorf("meta.body: %q, %v; want %q", got, err, want)
	}
}

// failingSource fails every read that reaches byte at with err.
type failingSource struct {
	*os.File
	at  int64
	err error
}

func (s *failingSource) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > s.at {
		return 0, s.err
	}
	return s.File.ReadAt(p, off)
}

// A failed read comes back as the error the Source gave (the caller's own
// I/O error, not damage), from HashChunk and ReadRowGroup alike; a file that
// shrinks after Open is an error naming the file.
func TestReadErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.parquet")
	var texts [][]byte
	for i := range 400 {
		texts = append(texts, []byte(fmt.Sprintf("row %d %s", i, strings.Repeat("x", i%50))))
	}
	if err := WriteTexts(path, "text", texts, 200); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	src := &failingSource{File: fh, at: 1 << 62, err: fmt.Errorf("the disk said no")}
	f, err := OpenSource(path, src, "text")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src.at = f.ChunkOffset(1) + 1 // row group 0 reads; row group 1 fails
	if _, err := f.HashChunk(context.Background(), 0); err != nil {
		t.Fatalf("row group 0: %v", err)
	}
	if _, err := f.HashChunk(context.Background(), 1); err != src.err {
		t.Errorf("HashChunk of the failing row group: %v, want the source's error", err)
	}
	err = f.ReadRowGroup(context.Background(), 1, func([]byte, bool) error { return nil })
	if err != src.err {
		t.Errorf("ReadRowGroup of the failing row group: %v, want the source's error", err)
	}

	// A file that shrinks after Open: caught by the chunk's bounds check,
	// or, if it shrinks between that check and the read, by the short read.
	src.err = io.EOF
	_, err = f.HashChunk(context.Background(), 1)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), fmt.Sprintf("ends at byte %d", src.at-1)) {
		t.Errorf("a short read: %v", err)
	}
	if err := os.Truncate(path, f.ChunkOffset(1)+10); err != nil {
		t.Fatal(err)
	}
	_, err = f.HashChunk(context.Background(), 1)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "lies outside the file") {
		t.Errorf("a file cut short after Open: %v", err)
	}
}

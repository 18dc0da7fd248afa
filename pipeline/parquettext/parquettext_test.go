package parquettext

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

package glmtest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// CopyFiles copies the regular files of directory src (not its
// subdirectories) into dst, which it creates, and returns dst: a test's
// own copy of a build or a checkpoint to damage.
func CopyFiles(tb testing.TB, src, dst string) string {
	tb.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		tb.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dst
}

// ReadTree returns the bytes of every file under dir, by path relative to
// it: what two builds that must be byte-identical are compared by.
func ReadTree(tb testing.TB, dir string) map[string][]byte {
	tb.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[rel] = b
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return files
}

// ReadFile returns the bytes of the file path, failing the test when it
// cannot be read.
func ReadFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// SameFiles reports, as errors of the test, each file of want that got
// lacks or holds other bytes for and each file got has beyond want (maps
// from ReadTree): two builds that must be byte-identical. what names got
// in the messages.
func SameFiles(tb testing.TB, what string, want, got map[string][]byte) {
	tb.Helper()
	for name, w := range want {
		if g, ok := got[name]; !ok {
			tb.Errorf("%s: %s missing", what, name)
		} else if !bytes.Equal(g, w) {
			tb.Errorf("%s: %s differs (%d bytes, want %d)", what, name, len(g), len(w))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			tb.Errorf("%s: extra file %s", what, name)
		}
	}
}

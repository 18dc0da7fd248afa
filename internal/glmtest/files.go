package glmtest

import (
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

package glmtest

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Shared returns the path of rel (say "tokenizers/gpt2/vocab.json") in the
// shared data, ../shared beside the repository root, from whichever
// package's tests ask; it skips the test, saying where the shared data
// lives, when rel is not there.
func Shared(tb testing.TB, rel string) string {
	tb.Helper()
	root, err := repoRoot()
	if err != nil {
		tb.Skipf("%s: %v (the shared corpora and tokenizers live in ../shared beside the repository)", rel, err)
	}
	p := filepath.Join(root, "..", "shared", rel)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("%s not found (the shared corpora and tokenizers live in ../shared beside the repository): %v", p, err)
	}
	return p
}

// Corpus is Shared for rel in the shared corpora ("wikitext-2-raw/wiki.valid.raw").
func Corpus(tb testing.TB, rel string) string {
	tb.Helper()
	return Shared(tb, filepath.Join("corpora", rel))
}

// repoRoot is the repository root: the nearest folder that holds go.mod
// above the working directory (go test runs a test in its package's
// folder, and so does a test binary carried to another machine), or else
// two folders above this file, as the compiler saw it.
func repoRoot() (string, error) {
	if dir, err := os.Getwd(); err == nil {
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return dir, nil
			}
			up := filepath.Dir(dir)
			if up == dir {
				break
			}
			dir = up
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		return filepath.Join(filepath.Dir(file), "..", ".."), nil
	}
	return "", errors.New("no go.mod above the working directory, and no source path in the binary")
}

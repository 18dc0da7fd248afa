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

// repoRoot is the repository root: two folders above this file, or, in a
// test binary built with -trimpath (which does not know where its source
// was), the nearest folder above the test's own (its package's) that holds
// go.mod.
func repoRoot() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		return filepath.Join(filepath.Dir(file), "..", ".."), nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("no go.mod above the test's folder")
		}
		dir = up
	}
}

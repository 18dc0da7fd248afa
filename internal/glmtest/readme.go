package glmtest

import (
	"path/filepath"
	"strings"
	"testing"
)

// SameUsage checks that the README's block of a program's commands (the
// first fenced block after the heading "## PROGRAM") is the command list of
// its help, usage (cli.Usage's text: the lines after "Usage:" up to the
// first empty one), without their indent.
func SameUsage(tb testing.TB, program, usage string) {
	tb.Helper()
	root, err := repoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	readme := string(ReadFile(tb, filepath.Join(root, "README.md")))
	_, section, ok := strings.Cut(readme, "\n## "+program+"\n")
	_, block, ok2 := strings.Cut(section, "```\n")
	block, _, ok3 := strings.Cut(block, "```\n")
	if !ok || !ok2 || !ok3 {
		tb.Fatalf("README.md has no fenced block after \"## %s\"", program)
	}
	_, list, _ := strings.Cut(usage, "Usage:\n")
	list, _, _ = strings.Cut(list, "\n\n")
	var want strings.Builder
	for _, l := range strings.Split(list, "\n") {
		want.WriteString(strings.TrimPrefix(l, "  ") + "\n")
	}
	if block != want.String() {
		tb.Errorf("README.md's commands of %s:\n%s\nits help's (write these into the README, or the table into the help):\n%s", program, block, want.String())
	}
}

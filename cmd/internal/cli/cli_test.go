package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestCommand(t *testing.T) {
	prog := filepath.Base(os.Args[0])
	for _, tc := range []struct {
		args []string
		drop []string
		add  string
		want string
	}{
		{[]string{"build", "--input", "a b.txt", "--out", "o", "--force"}, []string{"force"}, "resume", prog + " build --input 'a b.txt' --out o --resume"},
		{[]string{"build", "-force=true", "--resume"}, []string{"force"}, "resume", prog + " build --resume"},
		{[]string{"build", "--resume=false", "--input", "it's"}, nil, "resume", prog + ` build --input 'it'\''s' --resume`},
		{[]string{"merge", "d"}, nil, "", prog + " merge d"},
	} {
		if got := Command(tc.args, tc.drop, tc.add); got != tc.want {
			t.Errorf("Command(%q) = %s, want %s", tc.args, got, tc.want)
		}
	}
}

// A panic is an internal error without a stack trace; usage errors exit 2.
func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		run  func(context.Context, []string, io.Writer, io.Writer) error
		code int
		want string
	}{
		{func(context.Context, []string, io.Writer, io.Writer) error { panic("boom") }, 1, "internal error: boom"},
		{func(context.Context, []string, io.Writer, io.Writer) error { return ErrUsage }, 2, "usage"},
		{func(context.Context, []string, io.Writer, io.Writer) error { return errors.New("x.txt: bad") }, 1, "x.txt: bad"},
		{func(context.Context, []string, io.Writer, io.Writer) error { return nil }, 0, ""},
		// A file name's control characters cannot drive the terminal.
		{func(context.Context, []string, io.Writer, io.Writer) error { return errors.New("x\x1b[2J.txt: bad") }, 1, `tool: x\x1b[2J.txt: bad` + "\n"},
	} {
		var stderr bytes.Buffer
		code := main("tool", nil, io.Discard, &stderr, tc.run)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) || strings.Contains(stderr.String(), "goroutine") {
			t.Errorf("exit %d (want %d), stderr %q (want %q)", code, tc.code, stderr.String(), tc.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	flags := []string{"input", "out", "seq-len", "text-field", "tokenizer", "workers", "resume", "force"}
	for _, tc := range []struct{ name, want string }{
		{"seqlen", "seq-len"}, {"seq_len", "seq-len"}, {"outt", "out"}, {"ouput", "out"}, {"inputs", "input"},
		{"json-keys", "text-field"}, {"seq-length", "seq-len"}, {"tokenizer-type", "tokenizer"}, {"num-workers", "workers"},
		{"overwrite", "force"}, {"resum", "resume"}, {"zzzzzzzz", ""}, {"x", ""},
	} {
		if got := Suggest(tc.name, flags, flagAliases()); got != tc.want {
			t.Errorf("Suggest(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Help goes to stdout and exits 0; a flag's default is shown once; a
// wrong flag is one line naming it.
func TestParseHelpAndErrors(t *testing.T) {
	var out bytes.Buffer
	fs := FlagSet("tool cmd", "Usage: tool cmd\n", &out)
	fs.Int("workers", 0, "parallel workers (default: the number of CPUs)")
	fs.Int("seq-len", 512, "tokens per sample")
	fs.String("name", "", "a `NAME`")
	if _, err := Parse(fs, []string{"--help"}); !errors.Is(err, ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	help := out.String()
	for _, want := range []string{"Usage: tool cmd\n\nFlags:\n", "  --seq-len int\n    \ttokens per sample (default 512)\n", "  --workers int\n    \tparallel workers (default: the number of CPUs)\n", "  --name NAME\n"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	if code := main("tool", nil, io.Discard, io.Discard, func(context.Context, []string, io.Writer, io.Writer) error { return ErrHelp }); code != 0 {
		t.Errorf("ErrHelp exits %d", code)
	}
	var none bytes.Buffer
	empty := FlagSet("tool bare", "Usage: tool bare\n", &none)
	Parse(empty, []string{"-h"})
	if none.String() != "Usage: tool bare\n" {
		t.Errorf("a command without flags printed %q", none.String())
	}
	out.Reset()
	_, err := Parse(fs, []string{"--seqlen", "3"})
	if !errors.Is(err, ErrUsage) || err.Error() != "cmd: unknown flag --seqlen; did you mean --seq-len? (see tool cmd --help)" || out.Len() != 0 {
		t.Errorf("unknown flag: %v, printed %q", err, out.String())
	}
	_, err = Parse(fs, []string{"--seq-len", "x"})
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "--seq-len") || strings.Contains(err.Error(), "\n") {
		t.Errorf("bad value: %v", err)
	}
	if err := Missing(fs, "out", "--input"); err.Error() != "cmd: missing --out and --input (see tool cmd --help)" {
		t.Errorf("Missing: %v", err)
	}
}

func TestBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/glmkit/glmkit", Version: "v0.0.0-20261201134200-80fd576abcde+dirty"},
		Deps: []*debug.Module{{Path: "github.com/apache/arrow-go/v18", Version: "v18.4.1"}},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "80fd576abcdef0123456789abcdef0123456789a"},
			{Key: "vcs.time", Value: "2026-12-01T13:42:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	b := buildFrom(bi, true)
	if s := b.String(); !strings.HasPrefix(s, "v0.0.0-20261201134200-80fd576abcde+dirty (commit 80fd576abcdef0123456789abcdef0123456789a of 2026-12-01T13:42:00Z, with uncommitted changes), go") {
		t.Errorf("String() = %q", s)
	}
	sw := b.Software()
	if sw["glmkit"] != bi.Main.Version || sw["glmkit.revision"] != bi.Settings[0].Value || sw["glmkit.modified"] != "true" || sw["arrow-go"] != "v18.4.1" || sw["go"] == "" {
		t.Errorf("Software() = %v", sw)
	}
	plain := buildFrom(&debug.BuildInfo{}, true)
	if plain.Version != "(devel)" || !strings.Contains(plain.String(), "no VCS stamp") || plain.Software()["glmkit.revision"] != "" {
		t.Errorf("without a stamp: %q %v", plain.String(), plain.Software())
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, é 中文 😀":             "plain text, é 中文 😀",
		"a\tb\nc\rd":                     `a\tb\nc\rd`,
		"\x1b[31mred\x1b[0m":             `\x1b[31mred\x1b[0m`,
		"bell\a del\x7f":                 `bell\a del\x7f`,
		"c1 \u0085 bidi \u202e x \u2066": `c1 \u0085 bidi \u202e x \u2066`,
	} {
		if got := Printable(in, nil); got != want {
			t.Errorf("Printable(%q) = %q; want %q", in, got, want)
		}
	}
	if got := Printable("a\nb", func(s string) string { return "<" + s + ">" }); got != `a<\n>b` {
		t.Errorf("marked: %q", got)
	}
}

// Message keeps a message's line ends and tabs and escapes every other
// control character.
func TestMessage(t *testing.T) {
	for in, want := range map[string]string{
		"plain: a.txt:3: bad_json":             "plain: a.txt:3: bad_json",
		"two\nlines\tand a tab":                "two\nlines\tand a tab",
		"dir/\x1b]0;owned\a.txt:1: too_long\n": "dir/\\x1b]0;owned\\a.txt:1: too_long\n",
		"cr\rname \u202e\tx":                   "cr\\rname \\u202e\tx",
	} {
		if got := Message(in); got != want {
			t.Errorf("Message(%q) = %q; want %q", in, got, want)
		}
	}
}

// A program's help lists every command from its table, names, arguments
// and summaries in columns (a summary in the same column whatever the
// lengths before it), then version and how to get a command's help; help
// and no command print it, to stdout and stderr.
func TestUsage(t *testing.T) {
	run := func(context.Context, []string, io.Writer, io.Writer) error { return nil }
	cmds := []Subcommand{
		{Name: "build", Args: "--input PATH --out DIR", Summary: "make «shards»", Run: run},
		{Name: "go", Args: "DIR", Summary: "go", Run: run},
		{Name: "long-name", Summary: "no arguments", Run: run},
		{Name: "bare", Args: "--a very long synopsis that has no summary", Run: run},
	}
	u := Usage("tool", "tool does things.", cmds)
	want := `tool does things.

Usage:
  tool build     --input PATH --out DIR  make «shards»
  tool go        DIR                     go
  tool long-name                         no arguments
  tool bare      --a very long synopsis that has no summary
  tool version                           the version and commit of this binary (also --version)

Run "tool COMMAND --help" (or "tool help COMMAND") for a command's
flags and examples.
`
	if u != want {
		t.Errorf("Usage:\n%s\nwant:\n%s", u, want)
	}
	var out, errw bytes.Buffer
	if err := Dispatch(context.Background(), "tool", "tool does things.", cmds, []string{"help"}, &out, &errw); err != nil || out.String() != want {
		t.Errorf("help: %v, printed %q", err, out.String())
	}
	out.Reset()
	if err := Dispatch(context.Background(), "tool", "tool does things.", cmds, nil, &out, &errw); !errors.Is(err, ErrUsage) || errw.String() != want || out.Len() != 0 {
		t.Errorf("no command: %v, stderr %q", err, errw.String())
	}
}

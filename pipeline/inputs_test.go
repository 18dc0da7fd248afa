package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Class 9 of issue 11: links inside an input directory are followed (a
// loop or a dead link is reported); a repaired record that turns out blank
// is counted as repaired; a build of no rows is an error that says why.

func TestInputDirectoryLinks(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	other := filepath.Join(root, "elsewhere")
	os.MkdirAll(filepath.Join(data, "sub"), 0o755)
	os.MkdirAll(other, 0o755)
	writeFile(t, data, "a.txt", []byte("a\n"))
	writeFile(t, filepath.Join(data, "sub"), "b.txt", []byte("b\n"))
	writeFile(t, other, "c.txt", []byte("c\n"))
	writeFile(t, other, "d.jsonl", []byte(`{"text":"d"}`+"\n"))
	writeFile(t, root, "e.txt", []byte("e\n"))
	for _, l := range []struct{ target, link string }{
		{filepath.Join(root, "e.txt"), filepath.Join(data, "linked-file.txt")}, // a file elsewhere
		{other, filepath.Join(data, "linked-dir")},                             // a directory elsewhere
		{data, filepath.Join(data, "sub", "loop")},                             // back up: a loop
		{filepath.Join(root, "gone.txt"), filepath.Join(data, "dead.txt")},     // leads nowhere
		{filepath.Join(data, "a.txt"), filepath.Join(data, "same-as-a.txt")},   // a second name
	} {
		if err := os.Symlink(l.target, l.link); err != nil {
			t.Skipf("no symbolic links here: %v", err)
		}
	}
	var warnings []string
	ins, err := resolveInputs([]string{data}, "auto", "line", func(m string) { warnings = append(warnings, m) })
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range ins {
		rel, _ := filepath.Rel(data, in.Path)
		got = append(got, rel)
	}
	want := []string{"a.txt", "linked-dir/c.txt", "linked-dir/d.jsonl", "linked-file.txt", "sub/b.txt"}
	if !slices.Equal(got, want) {
		t.Errorf("inputs %q, want %q", got, want)
	}
	all := strings.Join(warnings, "\n")
	for _, w := range []string{"dead.txt", "loop", "same-as-a.txt"} {
		if !strings.Contains(all, w) {
			t.Errorf("nothing said about %s; warnings:\n%s", w, all)
		}
	}
}

func TestRepairedThenBlank(t *testing.T) {
	in := writeFile(t, t.TempDir(), "r.txt", []byte("a real line of text\n\x00\x00\x00\n\xff\xfe\n \x00 \n"))
	o := options(t, "bert-base-uncased", t.TempDir(), in)
	res, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	d := res.Stats.Doc
	if d.Reasons[NULBytes] != 2 || d.Documents != 1 {
		t.Errorf("nul_bytes %d (want 2: both NUL lines, though blank after repair), documents %d", d.Reasons[NULBytes], d.Documents)
	}
	// "\xff\xfe" repairs to U+FFFD U+FFFD, which BERT keeps as [UNK]s: a
	// document; either way it is counted as repaired.
	if d.Reasons[InvalidUTF8] != 1 {
		t.Errorf("invalid_utf8 %d, want 1", d.Reasons[InvalidUTF8])
	}
}

func TestEmptyBuildSaysWhy(t *testing.T) {
	src := t.TempDir()
	for _, tc := range []struct {
		name, file, data, want string
	}{
		{"all bad json", "bad.jsonl", "{not json\n{\"text\": \n[1,2]\n", "3 skipped as bad_json"},
		{"all missing the field", "miss.jsonl", `{"body":"x"}` + "\n" + `{"body":"y"}` + "\n", "2 skipped as missing_field"},
		{"all blank", "blank.txt", "\n  \n\t\n", "3 blank"},
		{"all too long", "long.txt", strings.Repeat("x", 100) + "\n", "1 skipped as too_long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := writeFile(t, src, tc.file, []byte(tc.data))
			o := options(t, "gpt2", t.TempDir(), in)
			o.Config.MaxDocBytes = 50
			_, err := Build(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "no rows") {
				t.Fatalf("err %v, want one that says %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(o.Out, "manifest.json")); err == nil {
				t.Error("a manifest was written for a build of no rows")
			}
			o.Out, o.Config.AllowEmpty = t.TempDir(), true
			if _, err := Build(context.Background(), o); err != nil {
				t.Errorf("--allow-empty: %v", err)
			}
		})
	}
}

// An input given twice (two --input values, a glob and a file, stdin
// twice) is read once, and the repeat is reported, as a second name of a
// file is: it was dropped without a word.
func TestRepeatedInputsReported(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.txt", []byte("a\n"))
	writeFile(t, dir, "b.txt", []byte("b\n"))
	for _, c := range []struct {
		specs []string
		n     int    // inputs
		said  string // in a warning
	}{
		{[]string{a, a}, 1, "a.txt is given more than once"},
		{[]string{filepath.Join(dir, "*.txt"), a}, 2, "a.txt is given more than once"},
		{[]string{Stdin, a, Stdin, Stdin}, 2, "standard input (-) is given more than once"},
	} {
		var warnings []string
		ins, err := resolveInputs(c.specs, "auto", "line", func(m string) { warnings = append(warnings, m) })
		if err != nil {
			t.Fatal(err)
		}
		if len(ins) != c.n || len(warnings) != 1 || !strings.Contains(warnings[0], c.said) {
			t.Errorf("%q: %d inputs, warnings %q; want %d inputs and one warning saying %q", c.specs, len(ins), warnings, c.n, c.said)
		}
	}
	if _, err := resolveInputs([]string{a, filepath.Join(dir, "b.txt")}, "auto", "line", func(m string) { t.Errorf("warned %q for two inputs", m) }); err != nil {
		t.Fatal(err)
	}
}

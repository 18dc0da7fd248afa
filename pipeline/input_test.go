package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/pipeline/parquettext"
)

// utf16Bytes encodes s as UTF-16, big or little endian, without a byte
// order mark.
func utf16Bytes(s string, big bool) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		if big {
			b = append(b, byte(u>>8), byte(u))
		} else {
			b = append(b, byte(u), byte(u>>8))
		}
	}
	return b
}

func utf32Bytes(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8), byte(r>>16), byte(r>>24))
	}
	return b
}

// Text in UTF-16 or UTF-32 is told from UTF-8 by its start, with a byte
// order mark or without one, in ASCII or in other scripts; UTF-8 (with a
// byte order mark, a few zero bytes, any script) is not.
func TestWideText(t *testing.T) {
	en := strings.Repeat("The river flows into the sea, and the sea is wide.\r\n", 40)
	zh := strings.Repeat("中文文本测试，这是第二句。上下左右。\n", 40)
	paragraphs, err := os.ReadFile(glmtest.Corpus(t, "zh/cmrc2018-contexts.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var zhText strings.Builder // long lines of real Chinese, with 一 (U+4E00) and digits
	for line := range strings.Lines(string(paragraphs[:64<<10])) {
		var rec struct{ Text string }
		if json.Unmarshal([]byte(line), &rec) == nil {
			zhText.WriteString(rec.Text + "\n")
		}
	}
	for _, c := range []struct {
		name string
		head []byte
		want string // part of the description; "" for UTF-8
	}{
		{"utf-16 le bom", append([]byte{0xff, 0xfe}, utf16Bytes(en, false)...), "UTF-16 LE text (byte order mark"},
		{"utf-16 be bom", append([]byte{0xfe, 0xff}, utf16Bytes(zh, true)...), "UTF-16 BE text (byte order mark"},
		{"utf-32 le bom", append([]byte{0xff, 0xfe, 0, 0}, utf32Bytes(en)...), "UTF-32 LE"},
		{"utf-32 be bom", []byte{0, 0, 0xfe, 0xff, 0, 0, 0, 'a'}, "UTF-32 BE"},
		{"utf-16 le english", utf16Bytes(en, false), "UTF-16 LE text without"},
		{"utf-16 be english", utf16Bytes(en, true), "UTF-16 BE text without"},
		{"utf-16 le chinese", utf16Bytes(zh, false), "UTF-16 LE text without"},
		{"utf-16 be chinese", utf16Bytes(zh, true), "UTF-16 BE text without"},
		{"utf-16 le chinese paragraphs", utf16Bytes(zhText.String(), false), "UTF-16 LE text without"},
		{"utf-16 be chinese paragraphs", utf16Bytes(zhText.String(), true), "UTF-16 BE text without"},
		{"utf-32 le english", utf32Bytes(en), "UTF-32"},
		{"zeros", make([]byte, 4096), "binary"},
		{"utf-8 english", []byte(en), ""},
		{"utf-8 chinese", []byte(zh), ""},
		{"utf-8 bom", append([]byte{0xef, 0xbb, 0xbf}, zh...), ""},
		{"utf-8 with a few zero bytes", []byte(strings.Repeat("a line of text\x00 with a zero byte\n", 50)), ""},
		{"utf-8 chinese paragraphs", []byte(zhText.String()), ""},
		{"utf-8 with runs of zero bytes", []byte(strings.Repeat("a line of text, and a longer one with more words in it\n"+string(make([]byte, 7))+"\n", 40)), ""},
		{"too short to tell", utf16Bytes("hi\n", false), ""},
		{"empty", nil, ""},
	} {
		desc, from := wideText(c.head)
		if c.want == "" && desc != "" || c.want != "" && (!strings.Contains(desc, c.want) || !strings.HasPrefix(from, "UTF-")) {
			t.Errorf("%s: wideText = %q, %q; want %q", c.name, desc, from, c.want)
		}
	}
}

// No input of the shared corpora (every language and layout there) is
// taken for UTF-16 or UTF-32.
func TestWideTextCorpora(t *testing.T) {
	root := glmtest.Corpus(t, ".")
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isInputName(d.Name()) || strings.HasSuffix(d.Name(), ".parquet") {
			return err
		}
		st, head, err := statInput(p)
		if err != nil {
			return err
		}
		in := Input{Path: p, Format: "text"}
		if note, err := in.describe(st, head, "auto", "line"); err != nil || note != "" {
			t.Errorf("%s: %q, %v", p, note, err)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("%d corpus inputs looked at; want the shared corpora's", n)
	}
}

// A UTF-16 input, plain or compressed, is refused when the build is
// planned, before anything is written; so is UTF-16 on stdin when it is
// read.
func TestUTF16InputRefused(t *testing.T) {
	text := append([]byte{0xff, 0xfe}, utf16Bytes(strings.Repeat("中文文本测试。\n", 100), false)...)
	refusedAtPlan(t, text, " is UTF-16 LE text (byte order mark FF FE), not UTF-8", "iconv -f UTF-16 -t UTF-8")
}

// refusedAtPlan builds text as a plain and a gzip input and checks that
// each build fails before it makes its directory, with an error that names
// the input followed by want and holds also.
func refusedAtPlan(t *testing.T, text []byte, want, also string) {
	t.Helper()
	src := t.TempDir()
	for _, in := range []string{writeFile(t, src, "a.txt", text), writeFile(t, src, "b.txt.gz", gzipBytes(t, text))} {
		checkRefusedAtPlan(t, in, in+want, also)
	}
}

// checkRefusedAtPlan checks that a build of in fails, saying want and
// also, before it makes its directory.
func checkRefusedAtPlan(t *testing.T, in, want, also string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "out")
	_, err := Build(context.Background(), options(t, "bert-base-uncased", dir, in))
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), also) {
		t.Errorf("%s: Build = %v; want an error saying %q", in, err, want)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s: the build directory was made (%v)", in, err)
	}
}

// An input read by lines whose lines end in CR alone (classic Mac OS) is
// refused: cut at LF, all of it would be one record. CRLF, LF, a stray CR
// in a line, and inputs not read by lines are not.
func TestCRLines(t *testing.T) {
	wiki, err := os.ReadFile(glmtest.Corpus(t, "wikitext-2-raw/wiki.valid.raw"))
	if err != nil {
		t.Fatal(err)
	}
	mac := bytes.ReplaceAll(wiki[:64<<10], []byte("\n"), []byte("\r"))
	long := append(bytes.Repeat([]byte("word "), 2000), '\r', '\n') // one line, longer than the look
	lastCR := append(bytes.Repeat([]byte("a"), headBytes-1), '\r')  // the CR ends the look: an LF may follow
	lastCR = append([]byte("one\rtwo\r")[:4], lastCR[4:]...)
	for _, c := range []struct {
		name, format, boundary string
		head                   []byte
		crs                    int // CRs the error counts; 0: no error
	}{
		{"mac text", "text", "line", mac, bytes.Count(mac[:headBytes], []byte("\r"))},
		{"mac text, blank boundaries", "text", "blank", mac, bytes.Count(mac[:headBytes], []byte("\r"))},
		{"mac jsonl", "jsonl", "line", []byte(`{"text":"a"}` + "\r" + `{"text":"b"}` + "\r"), 2},
		{"short", "text", "line", []byte("one\rtwo\r"), 2},
		{"a CR at the end of the look", "text", "line", lastCR, 0},
		{"mac text, file boundaries", "text", "file", mac, 0},
		{"mac json document", "json", "line", mac, 0},
		{"crlf", "text", "line", bytes.ReplaceAll(wiki[:64<<10], []byte("\n"), []byte("\r\n")), 0},
		{"lf", "text", "line", wiki[:64<<10], 0},
		{"one stray CR", "text", "line", []byte("a line\rwith a stray carriage return"), 0},
		{"a long line", "text", "line", long, 0},
		{"empty", "text", "line", nil, 0},
	} {
		err := crLines("in.txt", c.format, c.boundary, c.head)
		want := fmt.Sprintf("in.txt ends its lines with CR alone (classic Mac OS line ends: %d CRs and no LF", c.crs)
		if c.crs == 0 && err != nil || c.crs > 0 && (err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `tr '\r' '\n'`)) {
			t.Errorf("%s: crLines = %v; want %q", c.name, err, map[bool]string{true: want, false: "nil"}[c.crs > 0])
		}
	}
}

// A CR-lined input, plain or compressed, is refused when the build is
// planned, before anything is written.
func TestCRLinesRefused(t *testing.T) {
	wiki, err := os.ReadFile(glmtest.Corpus(t, "wikitext-2-raw/wiki.valid.raw"))
	if err != nil {
		t.Fatal(err)
	}
	refusedAtPlan(t, bytes.ReplaceAll(wiki[:64<<10], []byte("\n"), []byte("\r")), " ends its lines with CR alone", "tr '\\r' '\\n'")
}

// Text in an 8-bit or other legacy encoding (Latin-1, Windows-1252,
// Shift-JIS, GBK) is told by more bytes that are not UTF-8 than UTF-8
// characters beyond ASCII; UTF-8, damaged or cut mid-character at the end
// of the look, and ASCII are not.
func TestEightBitText(t *testing.T) {
	latin1 := func(s string) []byte {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r)) // Latin-1 is the first 256 code points
		}
		return b
	}
	fr := strings.Repeat("Le café est très bon. À bientôt, garçon!\n", 20)
	stray := "abc\xe9 def\xe8 ghi\xff\n"
	cut := []byte(stray + strings.Repeat("a", headBytes-1-len(stray)) + "é") // é's first byte ends the look
	for _, c := range []struct {
		name string
		head []byte
		want bool
	}{
		{"latin-1 french", latin1(fr), true},
		{"windows-1252 quotes", []byte(strings.Repeat("He said \x93yes\x94 and \x93no\x94.\n", 3)), true},
		{"shift-jis japanese", shiftJIS(t), true},
		{"gbk chinese", gbk(t), true},
		{"utf-8 french", []byte(fr), false},
		{"utf-8 with damaged bytes", append([]byte(fr), 0xe9, 0xe8, 0xff, 0xfe, 0xc0), false},
		{"utf-8 chinese with damaged bytes", append([]byte(strings.Repeat("中文文本测试，这是第二句。\n", 20)), bytes.Repeat([]byte{0xe4, 0xb8, 0xff}, 30)...), false},
		{"ascii", []byte(strings.Repeat("plain text\n", 100)), false},
		{"three stray bytes", []byte(stray), false},
		{"three stray bytes and a character cut at the end of the look", cut[:headBytes], false},
		{"empty", nil, false},
	} {
		if got := eightBitText(c.head); got != c.want {
			t.Errorf("%s: eightBitText = %v, want %v", c.name, got, c.want)
		}
	}
	// The note reaches the plan's warnings, and the input is read.
	src := t.TempDir()
	p := writeFile(t, src, "latin1.txt", latin1(fr))
	var warnings []string
	ins, err := resolveInputs([]string{p}, "auto", "line", func(m string) { warnings = append(warnings, m) })
	if err != nil || len(ins) != 1 || len(warnings) != 1 || !strings.Contains(warnings[0], p+" does not look like UTF-8") ||
		!strings.Contains(warnings[0], "e.g. iconv -f WINDOWS-1252 -t UTF-8") {
		t.Errorf("resolveInputs(latin1.txt) = %v, %v; warnings %q", ins, err, warnings)
	}
	// Many such inputs: the first few are named, the rest counted.
	var many []string
	for i := range 8 {
		many = append(many, writeFile(t, src, fmt.Sprintf("l%d.txt", i), latin1(fr)))
	}
	warnings = nil
	if _, err := resolveInputs(many, "auto", "line", func(m string) { warnings = append(warnings, m) }); err != nil || len(warnings) != maxEncodingNotes+1 ||
		warnings[maxEncodingNotes] != fmt.Sprintf("%d more inputs do not look like UTF-8 either (8 in all)", 8-maxEncodingNotes) {
		t.Errorf("8 Latin-1 inputs: %v; warnings %q", err, warnings)
	}
}

// shiftJIS and gbk are Japanese and Chinese text in those encodings.
func shiftJIS(t *testing.T) []byte {
	return encodeWith(t, japanese.ShiftJIS.NewEncoder(), strings.Repeat("日本語のテキストです。これは二番目の文です。\n", 60))
}

func gbk(t *testing.T) []byte {
	return encodeWith(t, simplifiedchinese.GBK.NewEncoder(), strings.Repeat("中文文本测试，这是第二句。上下左右。\n", 60))
}

func encodeWith(t *testing.T, e *encoding.Encoder, s string) []byte {
	t.Helper()
	b, err := e.Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b[:min(len(b), headBytes)]
}

// A named pipe is refused at once, not opened (which waits for a writer
// for ever), with the way to pass its data; in a directory or a glob it is
// skipped with a warning, not silently.
func TestPipeInput(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.txt", []byte("a line of text\n"))
	fifo := filepath.Join(dir, "b.txt")
	if err := glmtest.Mkfifo(fifo); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	type result struct {
		ins   []Input
		warns []string
		err   error
	}
	resolve := func(spec string) result {
		done := make(chan result, 1)
		go func() {
			var r result
			r.ins, r.err = resolveInputs([]string{spec}, "auto", "line", func(w string) { r.warns = append(r.warns, w) })
			done <- r
		}()
		select {
		case r := <-done:
			return r
		case <-time.After(20 * time.Second):
			t.Fatalf("resolveInputs(%s) is still waiting after 20 s (it opened the pipe)", spec)
			return result{}
		}
	}
	if r := resolve(fifo); r.err == nil || !strings.Contains(r.err.Error(), fifo+" is a pipe") || !strings.Contains(r.err.Error(), "--input -") {
		t.Errorf("the pipe itself: %v; want an error naming it and --input -", r.err)
	}
	for _, spec := range []string{dir, filepath.Join(dir, "*.txt")} {
		r := resolve(spec)
		if r.err != nil || len(r.ins) != 1 || len(r.warns) != 1 || !strings.Contains(r.warns[0], "skipping "+fifo) || !strings.Contains(r.warns[0], "a named pipe") {
			t.Errorf("%s: inputs %v, warnings %q, %v; want a.txt and a warning naming the pipe", spec, r.ins, r.warns, r.err)
		}
	}
}

// A compressed input whose decompressed start is compressed again, or is
// a Parquet file, is refused when the build is planned: read as text it
// would be noise (it was taken for a legacy encoding).
func TestCompressedTwiceRefused(t *testing.T) {
	src := t.TempDir()
	text := []byte(strings.Repeat("A line of plain text, compressed twice.\n", 200))
	pq := filepath.Join(src, "t.parquet")
	if err := parquettext.WriteTexts(pq, "text", [][]byte{[]byte("a text")}, 10); err != nil {
		t.Fatal(err)
	}
	pqBytes, err := os.ReadFile(pq)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"gz-in.zst", zstdBytes(t, gzipBytes(t, text)), "is compressed twice (gzip data inside zstd)"},
		{"zst-in.gz", gzipBytes(t, zstdBytes(t, text)), "is compressed twice (zstd data inside gzip)"},
		{"t.parquet.gz.txt", gzipBytes(t, pqBytes), "is a Parquet file compressed with gzip"},
	} {
		in := writeFile(t, src, c.name, c.data)
		checkRefusedAtPlan(t, in, in+" "+c.want, "")
	}
}

package tokenizer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
)

// sharedDir is ../shared relative to the repository root.
const sharedDir = "../../../shared"

// corpus is a named list of test documents.
type corpus struct {
	name string
	docs [][]byte
}

func (c corpus) bytes() int {
	n := 0
	for _, d := range c.docs {
		n += len(d)
	}
	return n
}

// chunkLines cuts text at line ends into documents of at least size bytes,
// keeping every byte (blank lines and \r included).
func chunkLines(text []byte, size int) [][]byte {
	var docs [][]byte
	for len(text) > 0 {
		n := min(size, len(text))
		if i := bytes.IndexByte(text[n:], '\n'); i >= 0 {
			n += i + 1
		} else {
			n = len(text)
		}
		docs = append(docs, text[:n])
		text = text[n:]
	}
	return docs
}

func readMaybeCompressed(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.HasSuffix(path, ".zst"):
		d, err := zstd.NewReader(nil)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return d.DecodeAll(data, nil)
	case strings.HasSuffix(path, ".gz"):
		r, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(r)
	}
	return data, nil
}

// jsonlTexts returns the "text" field of every JSON line.
func jsonlTexts(data []byte) ([][]byte, error) {
	var docs [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<26)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var v struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return nil, err
		}
		docs = append(docs, []byte(v.Text))
	}
	return docs, sc.Err()
}

var corporaOnce = sync.OnceValues(func() ([]corpus, error) {
	root := filepath.Join(sharedDir, "corpora")
	if _, err := os.Stat(root); err != nil {
		return nil, err
	}
	var out []corpus
	add := func(name string, glob string) error {
		files, err := filepath.Glob(filepath.Join(root, glob))
		if err != nil {
			return err
		}
		sort.Strings(files)
		c := corpus{name: name}
		for _, f := range files {
			data, err := readMaybeCompressed(f)
			if err != nil {
				return err
			}
			if strings.Contains(f, ".json") {
				docs, err := jsonlTexts(data)
				if err != nil {
					return err
				}
				c.docs = append(c.docs, docs...)
			} else {
				c.docs = append(c.docs, chunkLines(data, 4096)...)
			}
		}
		out = append(out, c)
		return nil
	}
	for _, c := range [][2]string{
		{"wikitext-2-raw", "wikitext-2-raw/*.raw"},
		{"tinyshakespeare", "tinyshakespeare/input.txt"},
		{"botchan", "gutenberg-aozora/botchan.txt"},
		{"wagahaiwa", "gutenberg-aozora/wagahaiwa_nekodearu.txt"},
		{"zh-ud", "zh/ud_chinese_gsdsimp-*.txt"},
		{"zh-cmrc2018", "zh/cmrc2018-contexts.jsonl"},
		{"zh-classical-novels", "zh/classical-novels/*.zst"},
		{"web-jsonl", "web-jsonl-samples/*"},
	} {
		if err := add(c[0], c[1]); err != nil {
			return nil, err
		}
	}
	return out, nil
})

// corpora returns the shared corpora, skipping the test when they are absent.
func corpora(tb testing.TB) []corpus {
	tb.Helper()
	cs, err := corporaOnce()
	if err != nil {
		tb.Skipf("shared corpora not available: %v", err)
	}
	return cs
}

// englishCorpus is the benchmarks' English text: wikitext-2 in ~4 KB docs.
func englishCorpus(tb testing.TB) corpus {
	for _, c := range corpora(tb) {
		if c.name == "wikitext-2-raw" {
			return c
		}
	}
	tb.Fatal("wikitext-2-raw missing")
	return corpus{}
}

// Stress-set material.
var (
	stressScripts = [][2]rune{
		{0x0410, 0x044F}, {0x0391, 0x03C9}, {0x0621, 0x064A}, {0x05D0, 0x05EA}, {0x0E01, 0x0E3A},
		{0xAC00, 0xD7A3}, {0x1100, 0x11FF}, {0x4E00, 0x9FFF}, {0x3400, 0x4DBF}, {0x20000, 0x2A6DF},
		{0x2B740, 0x2B81F}, {0x2B820, 0x2B92F}, {0xF900, 0xFAFF}, {0x3041, 0x3096}, {0x30A1, 0x30FA},
		{0x00C0, 0x00FF}, {0x0100, 0x017F}, {0x0180, 0x024F}, {0x0905, 0x094D}, {0x0250, 0x02AF},
		{0xFF01, 0xFF5E}, {0x1D400, 0x1D7FF}, {0x1E00, 0x1EFF}, {0x0530, 0x058F}, {0x10A0, 0x10FF},
	}
	stressMarks    = [][2]rune{{0x0300, 0x036F}, {0x0591, 0x05C7}, {0x064B, 0x0652}, {0x1AB0, 0x1ACE}, {0x1DC0, 0x1DFF}, {0x20D0, 0x20F0}, {0x0E31, 0x0E3A}}
	stressControls = []string{"\v", "\f", "\x00", "\x01", "\x1b", "\x7f", "\u0085", "\u200b", "\u200c", "\u200d", "\ufeff",
		"\u00ad", "\u2028", "\u2029", "\u00a0", "\u3000", "\u2009", "\u180e", "\u061c", "\u202e", "\ufffd", "\r\n", "\t", "\r", "\x1c", "\x1f"}
	stressPunct = []string{"-", "=", ".", "*", "_", "~", "!", "?", "#", "/", "\\", "|", "+", ":", ";", ",", "'", "\"", "`",
		"(", ")", "[", "]", "{", "}", "<", ">", "@", "$", "%", "^", "&", "。", "…", "—", "–", "·", "•", "※", "、", "「", "」", "【", "¡", "¿", "§", "¶", "«", "»"}
	stressWords = []string{"the", "The", "THE", "Hello", "world", "don", "it", "we", "They", "Café", "naïve", "résumé", "İstanbul",
		"ǅemal", "straße", "ΣΑΣ", "ﬁnance", "\u212a", "\u212b", "e\u0301", "Ångström", "tokenization", "unaffable", "GLM",
		"https://example.com/a?b=c&d=e#f", "x += y->z;", "<div class=\"a\">", "foo_bar.baz()", "I'm", "can't", "you're",
		"ﾃｽﾄ", "Ｆｕｌｌ", "①②③", "Ⅻ", "½", "²³", "٣٤٥", "१२३", "１２３"}
	stressSpecials = []string{"[MASK]", "<|endoftext|>", "[CLS]", "[SEP]", "[PAD]", "[UNK]", "##ing", "<s>", "</s>",
		"[gMASK]", "<|startofpiece|>", "<mask>", "<unk>"}
	stressContractions = []string{"'s", "'S", "'t", "'T", "'re", "'RE", "'ve", "'m", "'ll", "'LL", "'d", "'D", "'x", "''", "'"}
	stressInvalid      = []string{"\x80", "\xff", "\xe4\xb8", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80", "\xe2\x82", "\xf0\x9f\x98"}
	// Code points where Go 1.26's Unicode 15 and Hugging Face's mixed tables
	// disagree, so that the HF-derived tables are exercised.
	stressTableEdges = []rune{0x1C89, 0xA7CB, 0xA7DC, 0x10D50, 0x105C0, 0x0890, 0x07FD, 0x1AC0, 0x2E5D, 0x11F43,
		0x1E95E, 0x166D, 0x111C9, 0x0898, 0x13430, 0x1343F, 0x1F6DC, 0x1FAE8, 0x0130, 0x03A3, 0x1E9E, 0x2C2F}
)

// stressDocs generates n deterministic multilingual documents that go after
// everything tokenizers get wrong: scripts, combining marks in odd orders,
// emoji sequences, control characters, odd whitespace, long runs of one
// punctuation character, digits of many kinds, contractions, literal
// special-token strings, over-long words, random code points from every
// plane, and invalid UTF-8.
func stressDocs(n int) [][]byte {
	g := stressGen{rng: rand.New(rand.NewPCG(7, 2026))}
	seps := []string{" ", " ", " ", "", "\n", "  "}
	docs := make([][]byte, n)
	for i := range docs {
		var b []byte
		for k := 1 + g.rng.IntN(120); k > 0; k-- {
			b = g.piece(b)
			b = append(b, seps[g.rng.IntN(len(seps))]...)
		}
		docs[i] = b
	}
	return docs
}

// stressGen draws the pieces of the stress documents from one seeded
// generator: the order of its draws makes the documents.
type stressGen struct{ rng *rand.Rand }

func (g stressGen) pick(s []string) string { return s[g.rng.IntN(len(s))] }

func (g stressGen) inRange(r [2]rune) rune { return r[0] + rune(g.rng.IntN(int(r[1]-r[0]+1))) }

func (g stressGen) mark() rune { return g.inRange(stressMarks[g.rng.IntN(len(stressMarks))]) }

// piece appends one random piece to b.
func (g stressGen) piece(b []byte) []byte {
	rng := g.rng
	switch rng.IntN(17) {
	case 0, 1, 2: // a word of one script, maybe with marks
		sc := stressScripts[rng.IntN(len(stressScripts))]
		for k := 1 + rng.IntN(10); k > 0; k-- {
			b = utf8.AppendRune(b, g.inRange(sc))
			if rng.IntN(6) == 0 {
				b = utf8.AppendRune(b, g.mark())
			}
		}
	case 3: // base + several marks, any order
		b = utf8.AppendRune(b, rune('a'+rng.IntN(26)))
		for k := 1 + rng.IntN(4); k > 0; k-- {
			b = utf8.AppendRune(b, g.mark())
		}
	case 4:
		b = g.emoji(b)
	case 5:
		b = append(b, g.pick(stressControls)...)
	case 6: // a run of one punctuation character
		b = append(b, strings.Repeat(g.pick(stressPunct), 1+rng.IntN(40))...)
	case 7:
		b = g.digits(b)
	case 8:
		b = append(b, g.pick(stressWords)...)
		b = append(b, g.pick(stressContractions)...)
	case 9, 10:
		b = append(b, g.pick(stressWords)...)
	case 11:
		b = append(b, g.pick(stressSpecials)...)
	case 12: // long words around max_input_chars_per_word
		l := []int{99, 100, 101, 150}[rng.IntN(4)]
		r := []rune{'a', 'é', 'x', 'ß'}[rng.IntN(4)]
		b = append(b, strings.Repeat(string(r), l)...)
	case 13: // any code point
		r := rune(rng.IntN(0x110000))
		if r >= 0xD800 && r < 0xE000 {
			r = 0xFFFD
		}
		b = utf8.AppendRune(b, r)
	case 14:
		b = utf8.AppendRune(b, stressTableEdges[rng.IntN(len(stressTableEdges))])
	case 15:
		b = append(b, g.pick(stressInvalid)...)
	case 16:
		b = append(b, []string{"  ", "\n\n\n", " \n ", "\t \t", "   \n", "\u3000 ", " \u00a0"}[rng.IntN(7)]...)
	}
	return b
}

// emoji appends an emoji, maybe joined, skin-toned, variation-selected or
// a flag.
func (g stressGen) emoji(b []byte) []byte {
	b = utf8.AppendRune(b, g.inRange([2]rune{0x1F300, 0x1FAFF}))
	switch g.rng.IntN(5) {
	case 0:
		b = append(b, "\u200d"...)
		b = utf8.AppendRune(b, g.inRange([2]rune{0x1F300, 0x1F64F}))
	case 1:
		b = utf8.AppendRune(b, g.inRange([2]rune{0x1F3FB, 0x1F3FF}))
	case 2:
		b = append(b, "\ufe0f"...)
	case 3:
		b = utf8.AppendRune(b, g.inRange([2]rune{0x1F1E6, 0x1F1FF}))
		b = utf8.AppendRune(b, g.inRange([2]rune{0x1F1E6, 0x1F1FF}))
	}
	return b
}

// digits appends digits: ASCII runs, a formatted number, Arabic-Indic and
// full-width digits, or enclosed numbers.
func (g stressGen) digits(b []byte) []byte {
	switch g.rng.IntN(4) {
	case 0:
		for k := 1 + g.rng.IntN(30); k > 0; k-- {
			b = append(b, byte('0'+g.rng.IntN(10)))
		}
	case 1:
		b = append(b, "1,234.56"...)
	case 2:
		b = utf8.AppendRune(b, g.inRange([2]rune{0x0660, 0x0669}))
		b = utf8.AppendRune(b, g.inRange([2]rune{0xFF10, 0xFF19}))
	default:
		b = utf8.AppendRune(b, g.inRange([2]rune{0x2460, 0x24FF}))
	}
	return b
}

// stressCorpus is the generated multilingual stress set.
func stressCorpus() corpus { return corpus{name: "stress", docs: stressDocs(3000)} }

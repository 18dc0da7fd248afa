package tokenizer

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// componentCases are the tokenizer.json normalizers and pre-tokenizers the
// component test runs, each alone, against Hugging Face: every option of
// every component glmkit implements, and regexes that exercise the engine
// (look-around, anchors, empty matches, Unicode properties, case folding).
func componentCases(t testing.TB) []map[string]any {
	cs := splitCases()
	cs = append(cs, preTokenizerCases()...)
	return append(cs, normalizerCases()...)
}

// The cases' builders: a Split pre-tokenizer, its patterns, another
// pre-tokenizer or a normalizer by type and key-value options, and
// Sequences of them.
func caseSplit(pat any, beh string, invert bool) map[string]any {
	return map[string]any{"pre_tokenizer": map[string]any{"type": "Split", "pattern": pat, "behavior": beh, "invert": invert}}
}

func caseRe(s string) map[string]any  { return map[string]any{"Regex": s} }
func caseStr(s string) map[string]any { return map[string]any{"String": s} }

func casePre(typ string, kv ...any) map[string]any {
	return map[string]any{"pre_tokenizer": caseComponent(typ, kv)}
}

func caseNorm(typ string, kv ...any) map[string]any {
	return map[string]any{"normalizer": caseComponent(typ, kv)}
}

func caseComponent(typ string, kv []any) map[string]any {
	m := map[string]any{"type": typ}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func casePreSeq(ps ...map[string]any) map[string]any {
	var l []any
	for _, p := range ps {
		l = append(l, p["pre_tokenizer"])
	}
	return map[string]any{"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": l}}
}

func caseNormSeq(ns ...map[string]any) map[string]any {
	var l []any
	for _, n := range ns {
		l = append(l, n["normalizer"])
	}
	return map[string]any{"normalizer": map[string]any{"type": "Sequence", "normalizers": l}}
}

// splitCases are Split with every behaviour, inverted or not, and the
// regexes that exercise the engine.
func splitCases() []map[string]any {
	var cs []map[string]any
	for _, beh := range []string{"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"} {
		for _, inv := range []bool{false, true} {
			cs = append(cs, caseSplit(caseRe(`\s+`), beh, inv), caseSplit(caseStr(" "), beh, inv), caseSplit(caseRe(`\p{N}`), beh, inv))
		}
		cs = append(cs, caseSplit(caseRe(`\s*`), beh, false), caseSplit(caseRe(`x*|\b`), beh, false))
	}
	for _, p := range []string{patGPT2, patCL100K, patQwen2, patO200K,
		`[\p{P}\p{S}]`, `(?<=a)b|(?<!\s)\s`, `^\s+|\s+$`, `\s+(?=\p{Lu})`, `(?i:the|and)`, `\p{Han}+|\p{Hiragana}+|\p{Katakana}+`,
		`[一-龥ࠀ-一가-퟿]+`, `\s?[!-/:-~！-／：-～‘-‟　-。]+`, `[\r\n]`, `\p{N}{1,3}+`, `(?>a+)b|.`, `[^\p{L}\p{N}]+?x|[\p{Lu}&&[^A-Z]]`,
		`\p{Lu}\p{Ll}*|\p{Lt}|\p{Lm}|\p{Lo}|\p{Mn}|\p{Mc}|\p{Me}|\p{Nd}|\p{Nl}|\p{No}|\p{Pc}|\p{Pd}|\p{Ps}|\p{Pe}|\p{Pi}|\p{Pf}|\p{Po}|\p{Sm}|\p{Sc}|\p{Sk}|\p{So}|\p{Zs}|\p{Cc}|\p{Cf}|\p{Co}`,
		`\w+|\W`, `\d+|\D`, `\h+`, `.`, `(?m).{1,5}`, `\p{Greek}+|\p{Cyrillic}+|\p{Arabic}+|\p{Hebrew}+|\p{Thai}+|\p{Devanagari}+|\p{Hangul}+|\p{Latin}+|\p{Common}|\p{Inherited}`,
	} {
		cs = append(cs, caseSplit(caseRe(p), "Isolated", false))
	}
	return append(cs, caseSplit(caseStr("。"), "MergedWithPrevious", false), caseSplit(caseStr("ab"), "Removed", false))
}

// preTokenizerCases are the other pre-tokenizers with every option, and
// Sequences of them.
func preTokenizerCases() []map[string]any {
	var cs []map[string]any
	for _, aps := range []bool{false, true} {
		for _, ur := range []bool{false, true} {
			cs = append(cs, casePre("ByteLevel", "add_prefix_space", aps, "trim_offsets", true, "use_regex", ur))
		}
	}
	for _, scheme := range []string{"always", "first", "never"} {
		for _, sp := range []bool{false, true} {
			cs = append(cs, casePre("Metaspace", "replacement", "▁", "prepend_scheme", scheme, "split", sp))
		}
	}
	cs = append(cs, casePre("Metaspace", "replacement", "▁", "add_prefix_space", true), casePre("Metaspace", "replacement", "_", "add_prefix_space", false, "prepend_scheme", "never"),
		casePre("Whitespace"), casePre("WhitespaceSplit"), casePre("BertPreTokenizer"), casePre("Digits", "individual_digits", true),
		casePre("Digits", "individual_digits", false), casePre("CharDelimiterSplit", "delimiter", "a"))
	for _, beh := range []string{"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"} {
		cs = append(cs, casePre("Punctuation", "behavior", beh))
	}
	cs = append(cs, casePre("FixedLength"), casePre("FixedLength", "length", 1), casePre("FixedLength", "length", 3),
		casePreSeq(casePre("ByteLevel", "add_prefix_space", true, "trim_offsets", true, "use_regex", false), casePre("FixedLength", "length", 2)))
	return append(cs,
		casePreSeq(casePre("WhitespaceSplit"), casePre("Metaspace", "replacement", "▁", "prepend_scheme", "first", "split", true)),
		casePreSeq(casePre("ByteLevel", "add_prefix_space", false, "trim_offsets", true, "use_regex", true), casePre("Digits", "individual_digits", true)),
		casePreSeq(caseSplit(caseRe(patCL100K), "Isolated", false), casePre("ByteLevel", "add_prefix_space", true, "trim_offsets", true, "use_regex", false)),
		casePreSeq(casePre("Punctuation", "behavior", "Isolated"), caseSplit(caseRe(`\s`), "MergedWithNext", false), casePre("ByteLevel", "add_prefix_space", true, "trim_offsets", true, "use_regex", true)),
	)
}

// normalizerCases are the normalizers with every option, Sequences of
// them, and cog-pretrain.model's charsmap as Precompiled (when the shared
// tokenizers are there).
func normalizerCases() []map[string]any {
	var cs []map[string]any
	for _, f := range []string{"NFC", "NFD", "NFKC", "NFKD", "Lowercase", "StripAccents", "ByteLevel", "Nmt"} {
		cs = append(cs, caseNorm(f))
	}
	for _, lr := range [][2]bool{{true, false}, {false, true}, {true, true}} {
		cs = append(cs, caseNorm("Strip", "strip_left", lr[0], "strip_right", lr[1]))
	}
	cs = append(cs, caseNorm("Replace", "pattern", caseStr(" "), "content", "▁"), caseNorm("Replace", "pattern", caseRe(` {2,}`), "content", "▁"),
		caseNorm("Replace", "pattern", caseRe(`\s*`), "content", "-"), caseNorm("Replace", "pattern", caseRe(`^\s+|[\p{Cc}]`), "content", ""),
		caseNorm("Prepend", "prepend", "▁"))
	for _, cl := range []bool{false, true} {
		for _, cj := range []bool{false, true} {
			for _, sa := range []any{nil, false, true} {
				for _, lc := range []bool{false, true} {
					cs = append(cs, caseNorm("BertNormalizer", "clean_text", cl, "handle_chinese_chars", cj, "strip_accents", sa, "lowercase", lc))
				}
			}
		}
	}
	cs = append(cs, caseNormSeq(caseNorm("NFD"), caseNorm("StripAccents"), caseNorm("Lowercase")), caseNormSeq(caseNorm("NFKC"), caseNorm("Replace", "pattern", caseRe(`\s+`), "content", " ")),
		caseNormSeq(caseNorm("NFKC"), caseNorm("ByteLevel"), caseNorm("Lowercase")),
		// HF's SentencePieceUnigramTokenizer
		caseNormSeq(caseNorm("Nmt"), caseNorm("NFKC"), caseNorm("Replace", "pattern", caseRe(` {2,}`), "content", " ")))
	if m, err := parseModelProto(must(os.ReadFile(filepath.Join(sharedDir, "tokenizers/glm-chinese-sentencepiece/cog-pretrain.model")))); err == nil {
		cm := base64.StdEncoding.EncodeToString(m.normalizer.precompiledCharsmap)
		cs = append(cs, caseNorm("Precompiled", "precompiled_charsmap", cm),
			caseNormSeq(caseNorm("Precompiled", "precompiled_charsmap", cm), caseNorm("Strip", "strip_left", false, "strip_right", true), caseNorm("Replace", "pattern", caseRe(` {2,}`), "content", "▁")))
	}
	return cs
}

// TestComponents runs every component case over the stress set and samples
// of the corpora, in glmkit and in Hugging Face, and requires the same
// pieces (pre-tokenizers, byte-level pieces in their byte-level form) or
// the same normalized text.
func TestComponents(t *testing.T) {
	node := needNode(t)
	cs := componentCases(t)
	docs := componentDocs(t)
	dir := t.TempDir()
	runHFComponents(t, node, dir, docs, cs)
	b := &tjBuilder{tab: tables()}
	st := &genState{tab: b.tab}
	for i, c := range cs {
		label := string(must(json.Marshal(c["pre_tokenizer"])))
		if c["normalizer"] != nil {
			label = string(must(json.Marshal(c["normalizer"])))
		}
		label = fmt.Sprintf("case %d %s", i, label)
		out := must(os.ReadFile(c["out"].(string)))
		var bad int
		var err error
		if raw, ok := c["pre_tokenizer"]; ok {
			bad, err = checkPreTokenizerCase(t, b, st, label, must(json.Marshal(raw)), out, docs)
		} else {
			bad, err = checkNormalizerCase(t, b, st, label, must(json.Marshal(c["normalizer"])), out, docs)
		}
		if err != nil {
			t.Errorf("%s: %v", label, err)
			continue
		}
		if bad > 0 {
			t.Logf("%s: %d of %d documents differ", label, bad, len(docs))
		}
	}
	t.Logf("%d components × %d documents compared with Hugging Face", len(cs), len(docs))
}

// componentDocs are the component test's documents: edge cases, then a
// third of the agreement sample (all of it with GLMKIT_TOKENIZER_FULL),
// repaired.
func componentDocs(t *testing.T) [][]byte {
	var docs [][]byte
	for _, c := range agreementCorpora(t) {
		for i, d := range c.docs {
			if i%3 == 0 || (fullAgreement() && (c.name == "stress" || i%4 == 0)) {
				docs = append(docs, appendRepaired(nil, d))
			}
		}
	}
	return append([][]byte{[]byte(""), []byte(" "), []byte("  a  "), []byte("\u2581a b"), []byte("ab\nab"), []byte("\u200bx"),
		[]byte("\u0301e"), []byte("Ǆ ǅ ǆ İ ß ẞ ſ K"), []byte("a\u0316\u0301\u0334"), []byte("\U00011935\U00011930"), []byte("\u1100\u1161\u11a8")}, docs...)
}

// runHFComponents runs every case over docs in Hugging Face
// (hf_components.js), which writes each case's results to its "out".
func runHFComponents(t *testing.T, node, dir string, docs [][]byte, cs []map[string]any) {
	strs := make([]string, len(docs))
	for i, d := range docs {
		strs[i] = string(d)
	}
	docsPath := filepath.Join(dir, "docs.json")
	if err := os.WriteFile(docsPath, must(json.Marshal(strs)), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range cs {
		cs[i]["out"] = filepath.Join(dir, fmt.Sprintf("out%d.json", i))
	}
	jobPath := filepath.Join(dir, "job.json")
	if err := os.WriteFile(jobPath, must(json.Marshal(map[string]any{"docs": docsPath, "cases": cs})), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(node, filepath.Join(jsDir, "hf_components.js"), jobPath).CombinedOutput(); err != nil {
		t.Fatalf("hf_components.js: %v\n%s", err, out)
	}
}

// checkPreTokenizerCase compares a pre-tokenizer's pieces of every
// document with Hugging Face's (out) and returns how many differ; err is
// glmkit's error reading the component.
func checkPreTokenizerCase(t *testing.T, b *tjBuilder, st *genState, label string, raw, out []byte, docs [][]byte) (int, error) {
	pres, err := b.preTokenizers("pre_tokenizer", raw, nil)
	if err != nil {
		return 0, err
	}
	var want [][]string
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for k, d := range docs {
		got, err := runPreTokenizers(st, pres, d)
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		if want[k] == nil {
			t.Fatalf("%s: HF failed on doc %d", label, k)
		}
		if !slices.Equal(got, want[k]) {
			if bad++; bad <= 2 {
				p := 0
				for p < len(got) && p < len(want[k]) && got[p] == want[k][p] {
					p++
				}
				t.Errorf("%s: doc %d (%.120q) differs at piece %d:\n hf:   %q\n ours: %q", label, k, d, p,
					want[k][max(0, p-2):min(len(want[k]), p+4)], got[max(0, p-2):min(len(got), p+4)])
			}
		}
	}
	return bad, nil
}

// checkNormalizerCase compares a normalizer's text of every document with
// Hugging Face's (out) and returns how many differ; err is glmkit's error
// reading the component.
func checkNormalizerCase(t *testing.T, b *tjBuilder, st *genState, label string, raw, out []byte, docs [][]byte) (int, error) {
	norms, err := b.normalizers("normalizer", raw, nil)
	if err != nil {
		return 0, err
	}
	var want []*string
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for k, d := range docs {
		buf := append([]byte(nil), d...)
		for _, n := range norms {
			o, _, err := n.normalize(st, nil, buf)
			if err != nil {
				t.Fatal(err)
			}
			buf = o
		}
		if want[k] == nil {
			t.Fatalf("%s: HF failed on doc %d", label, k)
		}
		if string(buf) != *want[k] {
			if bad++; bad <= 2 {
				p := 0
				for p < len(buf) && p < len(*want[k]) && buf[p] == (*want[k])[p] {
					p++
				}
				t.Errorf("%s: doc %d (%.120q) differs at byte %d:\n hf:   %.60q\n ours: %.60q", label, k, d, p, (*want[k])[max(0, p-10):], buf[max(0, p-10):])
			}
		}
	}
	return bad, nil
}

// runPreTokenizers returns the pieces of text, byte-level pieces in their
// byte-level form.
func runPreTokenizers(st *genState, pres []preTokenizer, text []byte) ([]string, error) {
	st.arena = append(st.arena[:0], text...)
	in := []span{{start: 0, end: int32(len(text)), first: true}}
	for i, p := range pres {
		if i > 0 {
			in = materializeRaw(st, in)
		}
		out, err := p.preTokenize(st, in, nil)
		if err != nil {
			return nil, err
		}
		in = out
	}
	in = materializeRaw(st, in)
	var pieces []string
	for _, sp := range in {
		if sp.start < sp.end {
			pieces = append(pieces, string(st.arena[sp.start:sp.end]))
		}
	}
	return pieces, nil
}

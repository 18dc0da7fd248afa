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
	split := func(pat any, beh string, invert bool) map[string]any {
		return map[string]any{"pre_tokenizer": map[string]any{"type": "Split", "pattern": pat, "behavior": beh, "invert": invert}}
	}
	re := func(s string) map[string]any { return map[string]any{"Regex": s} }
	str := func(s string) map[string]any { return map[string]any{"String": s} }
	pre := func(typ string, kv ...any) map[string]any {
		m := map[string]any{"type": typ}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return map[string]any{"pre_tokenizer": m}
	}
	nrm := func(typ string, kv ...any) map[string]any {
		m := map[string]any{"type": typ}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return map[string]any{"normalizer": m}
	}
	var cs []map[string]any
	for _, beh := range []string{"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"} {
		for _, inv := range []bool{false, true} {
			cs = append(cs, split(re(`\s+`), beh, inv), split(str(" "), beh, inv), split(re(`\p{N}`), beh, inv))
		}
		cs = append(cs, split(re(`\s*`), beh, false), split(re(`x*|\b`), beh, false))
	}
	for _, p := range []string{patGPT2, patCL100K, patQwen2, patO200K,
		`[\p{P}\p{S}]`, `(?<=a)b|(?<!\s)\s`, `^\s+|\s+$`, `\s+(?=\p{Lu})`, `(?i:the|and)`, `\p{Han}+|\p{Hiragana}+|\p{Katakana}+`,
		`[一-龥ࠀ-一가-퟿]+`, `\s?[!-/:-~！-／：-～‘-‟　-。]+`, `[\r\n]`, `\p{N}{1,3}+`, `(?>a+)b|.`, `[^\p{L}\p{N}]+?x|[\p{Lu}&&[^A-Z]]`,
		`\p{Lu}\p{Ll}*|\p{Lt}|\p{Lm}|\p{Lo}|\p{Mn}|\p{Mc}|\p{Me}|\p{Nd}|\p{Nl}|\p{No}|\p{Pc}|\p{Pd}|\p{Ps}|\p{Pe}|\p{Pi}|\p{Pf}|\p{Po}|\p{Sm}|\p{Sc}|\p{Sk}|\p{So}|\p{Zs}|\p{Cc}|\p{Cf}|\p{Co}`,
		`\w+|\W`, `\d+|\D`, `\h+`, `.`, `(?m).{1,5}`, `\p{Greek}+|\p{Cyrillic}+|\p{Arabic}+|\p{Hebrew}+|\p{Thai}+|\p{Devanagari}+|\p{Hangul}+|\p{Latin}+|\p{Common}|\p{Inherited}`,
	} {
		cs = append(cs, split(re(p), "Isolated", false))
	}
	cs = append(cs, split(str("。"), "MergedWithPrevious", false), split(str("ab"), "Removed", false))
	for _, aps := range []bool{false, true} {
		for _, ur := range []bool{false, true} {
			cs = append(cs, pre("ByteLevel", "add_prefix_space", aps, "trim_offsets", true, "use_regex", ur))
		}
	}
	for _, scheme := range []string{"always", "first", "never"} {
		for _, sp := range []bool{false, true} {
			cs = append(cs, pre("Metaspace", "replacement", "▁", "prepend_scheme", scheme, "split", sp))
		}
	}
	cs = append(cs, pre("Metaspace", "replacement", "▁", "add_prefix_space", true), pre("Metaspace", "replacement", "_", "add_prefix_space", false, "prepend_scheme", "never"),
		pre("Whitespace"), pre("WhitespaceSplit"), pre("BertPreTokenizer"), pre("Digits", "individual_digits", true),
		pre("Digits", "individual_digits", false), pre("CharDelimiterSplit", "delimiter", "a"))
	for _, beh := range []string{"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"} {
		cs = append(cs, pre("Punctuation", "behavior", beh))
	}
	seq := func(ps ...map[string]any) map[string]any {
		var l []any
		for _, p := range ps {
			l = append(l, p["pre_tokenizer"])
		}
		return map[string]any{"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": l}}
	}
	cs = append(cs,
		seq(pre("WhitespaceSplit"), pre("Metaspace", "replacement", "▁", "prepend_scheme", "first", "split", true)),
		seq(pre("ByteLevel", "add_prefix_space", false, "trim_offsets", true, "use_regex", true), pre("Digits", "individual_digits", true)),
		seq(split(re(patCL100K), "Isolated", false), pre("ByteLevel", "add_prefix_space", true, "trim_offsets", true, "use_regex", false)),
		seq(pre("Punctuation", "behavior", "Isolated"), split(re(`\s`), "MergedWithNext", false), pre("ByteLevel", "add_prefix_space", true, "trim_offsets", true, "use_regex", true)),
	)

	// Normalizers.
	for _, f := range []string{"NFC", "NFD", "NFKC", "NFKD", "Lowercase", "StripAccents"} {
		cs = append(cs, nrm(f))
	}
	for _, lr := range [][2]bool{{true, false}, {false, true}, {true, true}} {
		cs = append(cs, nrm("Strip", "strip_left", lr[0], "strip_right", lr[1]))
	}
	cs = append(cs, nrm("Replace", "pattern", str(" "), "content", "▁"), nrm("Replace", "pattern", re(` {2,}`), "content", "▁"),
		nrm("Replace", "pattern", re(`\s*`), "content", "-"), nrm("Replace", "pattern", re(`^\s+|[\p{Cc}]`), "content", ""),
		nrm("Prepend", "prepend", "▁"))
	for _, cl := range []bool{false, true} {
		for _, cj := range []bool{false, true} {
			for _, sa := range []any{nil, false, true} {
				for _, lc := range []bool{false, true} {
					cs = append(cs, nrm("BertNormalizer", "clean_text", cl, "handle_chinese_chars", cj, "strip_accents", sa, "lowercase", lc))
				}
			}
		}
	}
	nseq := func(ns ...map[string]any) map[string]any {
		var l []any
		for _, n := range ns {
			l = append(l, n["normalizer"])
		}
		return map[string]any{"normalizer": map[string]any{"type": "Sequence", "normalizers": l}}
	}
	cs = append(cs, nseq(nrm("NFD"), nrm("StripAccents"), nrm("Lowercase")), nseq(nrm("NFKC"), nrm("Replace", "pattern", re(`\s+`), "content", " ")))
	if m, err := parseModelProto(must(os.ReadFile(filepath.Join(sharedDir, "tokenizers/glm-chinese-sentencepiece/cog-pretrain.model")))); err == nil {
		cm := base64.StdEncoding.EncodeToString(m.normalizer.precompiledCharsmap)
		cs = append(cs, nrm("Precompiled", "precompiled_charsmap", cm),
			nseq(nrm("Precompiled", "precompiled_charsmap", cm), nrm("Strip", "strip_left", false, "strip_right", true), nrm("Replace", "pattern", re(` {2,}`), "content", "▁")))
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
	var docs [][]byte
	// A third of the agreement sample (all of it with GLMKIT_TOKENIZER_FULL).
	for _, c := range agreementCorpora(t) {
		for i, d := range c.docs {
			if i%3 == 0 || (fullAgreement() && (c.name == "stress" || i%4 == 0)) {
				docs = append(docs, appendRepaired(nil, d))
			}
		}
	}
	// Edge cases first.
	docs = append([][]byte{[]byte(""), []byte(" "), []byte("  a  "), []byte("\u2581a b"), []byte("ab\nab"), []byte("\u200bx"),
		[]byte("\u0301e"), []byte("Ǆ ǅ ǆ İ ß ẞ ſ K"), []byte("a\u0316\u0301\u0334"), []byte("\U00011935\U00011930"), []byte("\u1100\u1161\u11a8")}, docs...)
	dir := t.TempDir()
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
	b := &tjBuilder{tab: tables()}
	st := &genState{tab: b.tab}
	for i, c := range cs {
		label := string(must(json.Marshal(c["pre_tokenizer"])))
		if c["normalizer"] != nil {
			label = string(must(json.Marshal(c["normalizer"])))
		}
		out := must(os.ReadFile(c["out"].(string)))
		bad := 0
		if raw, ok := c["pre_tokenizer"]; ok {
			pres, err := b.preTokenizers("pre_tokenizer", must(json.Marshal(raw)), nil)
			if err != nil {
				t.Errorf("case %d %s: %v", i, label, err)
				continue
			}
			var want [][]string
			if err := json.Unmarshal(out, &want); err != nil {
				t.Fatal(err)
			}
			for k, d := range docs {
				got, err := runPreTokenizers(st, pres, d)
				if err != nil {
					t.Fatalf("case %d %s: %v", i, label, err)
				}
				if want[k] == nil {
					t.Fatalf("case %d %s: HF failed on doc %d", i, label, k)
				}
				if !slices.Equal(got, want[k]) {
					if bad++; bad <= 2 {
						p := 0
						for p < len(got) && p < len(want[k]) && got[p] == want[k][p] {
							p++
						}
						t.Errorf("case %d %s: doc %d (%.120q) differs at piece %d:\n hf:   %q\n ours: %q", i, label, k, d, p,
							want[k][max(0, p-2):min(len(want[k]), p+4)], got[max(0, p-2):min(len(got), p+4)])
					}
				}
			}
		} else {
			norms, err := b.normalizers("normalizer", must(json.Marshal(c["normalizer"])), nil)
			if err != nil {
				t.Errorf("case %d %s: %v", i, label, err)
				continue
			}
			var want []*string
			if err := json.Unmarshal(out, &want); err != nil {
				t.Fatal(err)
			}
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
					t.Fatalf("case %d %s: HF failed on doc %d", i, label, k)
				}
				if string(buf) != *want[k] {
					if bad++; bad <= 2 {
						p := 0
						for p < len(buf) && p < len(*want[k]) && buf[p] == (*want[k])[p] {
							p++
						}
						t.Errorf("case %d %s: doc %d (%.120q) differs at byte %d:\n hf:   %.60q\n ours: %.60q", i, label, k, d, p, (*want[k])[max(0, p-10):], buf[max(0, p-10):])
					}
				}
			}
		}
		if bad > 0 {
			t.Logf("case %d %s: %d of %d documents differ", i, label, bad, len(docs))
		}
	}
	t.Logf("%d components × %d documents compared with Hugging Face", len(cs), len(docs))
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

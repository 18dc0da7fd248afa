package tokenizer

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// hfFixture is one file of testdata/hf-fixtures: a tokenizer.json that
// glmkit once encoded differently from Hugging Face, and texts with the ids
// Hugging Face gives them (testdata/js/hf_fixtures.js writes them), or the
// error it gives instead.
type hfFixture struct {
	About     string          `json:"about"`
	Tokenizer json.RawMessage `json:"tokenizer"`
	// Refused: glmkit refuses the file (its ids, where it loaded it, differed
	// from Hugging Face's below).
	Refused bool `json:"refused"`
	Cases   []struct {
		Text    string  `json:"text"`
		IDs     []int32 `json:"ids"`
		HFError string  `json:"hf_error"`
	} `json:"cases"`
}

func hfFixtureFiles(t *testing.T) []string {
	files, err := filepath.Glob("testdata/hf-fixtures/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	return files
}

// TestHFFixtures requires Hugging Face's ids on every fixture text (through
// the fast paths and the general pipeline), and an error where Hugging Face
// cannot encode the text.
func TestHFFixtures(t *testing.T) {
	for _, f := range hfFixtureFiles(t) {
		var fx hfFixture
		if err := json.Unmarshal(must(os.ReadFile(f)), &fx); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, general := range []bool{false, true} {
			tk, err := buildTokenizerJSONWith(fx.Tokenizer, general)
			if fx.Refused {
				if err == nil {
					t.Errorf("%s (%s): loaded, want a refusal", filepath.Base(f), fx.About)
				}
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			enc := tk.NewEncoder()
			for _, c := range fx.Cases {
				got, err := enc.Encode(nil, []byte(c.Text))
				switch {
				case c.HFError != "" && err == nil:
					t.Errorf("%s (%s): %q: ids %v, but Hugging Face fails: %s", filepath.Base(f), fx.About, c.Text, got, c.HFError)
				case c.HFError == "" && err != nil:
					t.Errorf("%s: %q: %v, Hugging Face gives %v", filepath.Base(f), c.Text, err, c.IDs)
				case c.HFError == "" && !slices.Equal(got, c.IDs):
					t.Errorf("%s (%s): %q (general %v):\n hf:   %v\n ours: %v", filepath.Base(f), fx.About, c.Text, general, c.IDs, got)
				}
			}
		}
	}
}

// TestHFFixturesCurrent re-runs Hugging Face on the fixtures and requires
// the stored ids.
func TestHFFixturesCurrent(t *testing.T) {
	node := needNode(t)
	files := hfFixtureFiles(t)
	abs := make([]string, len(files))
	for i, f := range files {
		abs[i] = must(filepath.Abs(f))
	}
	cmd := exec.Command(node, append([]string{"hf_fixtures.js", "--check"}, abs...)...)
	cmd.Dir = jsDir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hf_fixtures.js: %v", err)
	}
	var now map[string]json.RawMessage
	if err := json.Unmarshal(out, &now); err != nil {
		t.Fatal(err)
	}
	for _, f := range abs {
		var fx struct{ Cases json.RawMessage }
		json.Unmarshal(must(os.ReadFile(f)), &fx)
		var a, b any
		json.Unmarshal(fx.Cases, &a)
		json.Unmarshal(now[f], &b)
		if !jsonEqual(a, b) {
			t.Errorf("%s: stored ids differ from Hugging Face's now:\n stored: %s\n now:    %s", filepath.Base(f), fx.Cases, now[f])
		}
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// missingOptionCases are tokenizer.json files with an option left out that
// Hugging Face has no default for, so it refuses them (glmkit loaded them
// with a guessed default): each is a WordLevel file with one component
// edited.
func missingOptionCases() []tokCase {
	base := wordLevelWith
	bl := map[string]any{"type": "ByteLevel", "add_prefix_space": true, "use_regex": true}
	template := func(single any, specials map[string]any) map[string]any {
		return base("post_processor", map[string]any{"type": "TemplateProcessing", "single": single, "pair": []any{}, "special_tokens": specials})
	}
	var out []tokCase
	add := func(name string, tok map[string]any) { out = append(out, tokCase{name, tok}) }
	add("Strip without strip_right", base("normalizer", map[string]any{"type": "Strip", "strip_left": true}))
	add("Replace without content", base("normalizer", map[string]any{"type": "Replace", "pattern": map[string]any{"String": "a"}}))
	add("Prepend without prepend", base("normalizer", map[string]any{"type": "Prepend"}))
	add("Sequence without normalizers", base("normalizer", map[string]any{"type": "Sequence"}))
	add("Metaspace without replacement", base("pre_tokenizer", map[string]any{"type": "Metaspace", "prepend_scheme": "always", "split": true}))
	add("Split without invert", base("pre_tokenizer", map[string]any{"type": "Split", "pattern": map[string]any{"String": "a"}, "behavior": "Isolated"}))
	add("Digits without individual_digits", base("pre_tokenizer", map[string]any{"type": "Digits"}))
	add("Sequence without pretokenizers", base("pre_tokenizer", map[string]any{"type": "Sequence"}))
	add("TemplateProcessing without pair", base("post_processor", map[string]any{"type": "TemplateProcessing", "single": []any{}, "special_tokens": map[string]any{}}))
	add("BertProcessing without cls", base("post_processor", map[string]any{"type": "BertProcessing", "sep": []any{"[SEP]", 1}}))
	add("BertProcessing with a sep of no id", base("post_processor", map[string]any{"type": "BertProcessing", "sep": []any{"[SEP]"}, "cls": []any{"[CLS]", 2}}))
	add("RobertaProcessing with a cls of a negative id", base("post_processor", map[string]any{"type": "RobertaProcessing", "sep": []any{"</s>", 2}, "cls": []any{"<s>", -1}}))
	add("BertProcessing with a sep of three", base("post_processor", map[string]any{"type": "BertProcessing", "sep": []any{"[SEP]", 1, 3}, "cls": []any{"[CLS]", 2}}))
	add("ByteLevel post-processor without trim_offsets", base("post_processor", bl))
	add("Sequence of them", base("post_processor", map[string]any{"type": "Sequence", "processors": []any{bl}}))
	add("an added token without special", base("added_tokens", []any{map[string]any{"id": 2, "content": "zz", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false}}))
	add("an added token without lstrip", base("added_tokens", []any{map[string]any{"id": 2, "content": "zz", "single_word": false, "rstrip": false, "normalized": false, "special": false}}))
	add("WordPiece without max_input_chars_per_word", base("model", map[string]any{"type": "WordPiece", "vocab": map[string]any{"[UNK]": 0, "a": 1}, "unk_token": "[UNK]", "continuing_subword_prefix": "##"}))
	add("WordPiece with max_input_chars_per_word -1", base("model", map[string]any{"type": "WordPiece", "vocab": map[string]any{"[UNK]": 0, "a": 1}, "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": -1}))
	add("BPE without merges", base("model", map[string]any{"type": "BPE", "vocab": map[string]any{"[UNK]": 0, "a": 1}, "unk_token": "[UNK]"}))
	add("BPE with null merges", base("model", map[string]any{"type": "BPE", "vocab": map[string]any{"[UNK]": 0, "a": 1}, "unk_token": "[UNK]", "merges": nil}))
	add("WordPiece decoder without cleanup", base("decoder", map[string]any{"type": "WordPiece", "prefix": "##"}))
	add("Metaspace decoder without replacement", base("decoder", map[string]any{"type": "Metaspace", "prepend_scheme": "always", "split": true}))
	add("BPEDecoder without suffix", base("decoder", map[string]any{"type": "BPEDecoder"}))
	add("ByteLevel decoder without trim_offsets", base("decoder", bl))
	add("Replace decoder without content", base("decoder", map[string]any{"type": "Replace", "pattern": map[string]any{"String": "a"}}))
	add("Strip decoder without stop", base("decoder", map[string]any{"type": "Strip", "content": " ", "start": 1}))
	add("CTC decoder without pad_token", base("decoder", map[string]any{"type": "CTC", "word_delimiter_token": "|", "cleanup": true}))
	add("Precompiled without precompiled_charsmap", base("normalizer", map[string]any{"type": "Precompiled"}))
	add("Precompiled with an empty precompiled_charsmap", base("normalizer", map[string]any{"type": "Precompiled", "precompiled_charsmap": ""}))
	add("Sequence decoder without decoders", base("decoder", map[string]any{"type": "Sequence"}))
	add("a template piece without id", template([]any{map[string]any{"Sequence": map[string]any{"type_id": 0}}}, map[string]any{}))
	add("a template piece of neither kind", template([]any{map[string]any{"Other": map[string]any{"id": "A", "type_id": 0}}}, map[string]any{}))
	add("a template sequence C", template([]any{map[string]any{"Sequence": map[string]any{"id": "C", "type_id": 0}}}, map[string]any{}))
	add("a template as a string", template("[CLS] $A", map[string]any{}))
	add("a template special token without ids", template([]any{}, map[string]any{"[CLS]": map[string]any{"id": "[CLS]", "tokens": []any{"[CLS]"}}}))
	return out
}

// TestRefusedMissingOptions requires every missingOptionCases file to be
// refused, and (with node) Hugging Face to refuse it too.
func TestRefusedMissingOptions(t *testing.T) {
	cs := missingOptionCases()
	for _, c := range cs {
		if _, err := buildTokenizerJSON(must(json.Marshal(c.tok))); err == nil {
			t.Errorf("%s: loaded, want a refusal (Hugging Face refuses it)", c.name)
		}
	}
	for i, err := range hfLoadErrors(t, cs) {
		if err == nil {
			t.Errorf("%s: Hugging Face loads it", cs[i].name)
		}
	}
}

// TestNullOptions sets each option of each component to null in turn: Hugging
// Face refuses a null for every option but those it declares optional, and
// glmkit must refuse the same files (a null is not read as the default)
// and load the others.
func TestNullOptions(t *testing.T) {
	cs, loads := nullOptionCases()
	for i, c := range cs {
		_, err := buildTokenizerJSON(must(json.Marshal(c.tok)))
		if (err == nil) != loads[i] {
			t.Errorf("%s: glmkit error %v; want loads=%v", c.name, err, loads[i])
		}
	}
	for i, err := range hfLoadErrors(t, cs) {
		if (err == nil) != loads[i] {
			t.Errorf("%s: Hugging Face loads=%v (%v); the test wants loads=%v", cs[i].name, err == nil, ptrString(err), loads[i])
		}
	}
}

func ptrString(s *string) string {
	if s == nil {
		return "no error"
	}
	return *s
}

// hfLoadErrors is Hugging Face's error loading each case (nil where it
// loads it), through testdata/js/hf_loads.js; none without node. Where HF
// panics on a file (it then aborts node), the cases run one by one and the
// abort is that case's error.
func hfLoadErrors(t *testing.T, cs []tokCase) []*string {
	if _, err := exec.LookPath("node"); err != nil {
		return nil
	}
	node := needNode(t)
	if errs, _, err := hfLoadRun(t, node, cs); err == nil {
		return errs
	}
	out := make([]*string, len(cs))
	for i := range cs {
		errs, msg, err := hfLoadRun(t, node, cs[i:i+1])
		switch {
		case err != nil:
			s := fmt.Sprintf("Hugging Face aborted (%v): %.200s", err, msg)
			out[i] = &s
		case len(errs) == 1:
			out[i] = errs[0]
		default:
			t.Fatalf("hf_loads.js: %d results for one case", len(errs))
		}
	}
	return out
}

// hfLoadRun runs hf_loads.js over cs: HF's error for each, or the run's
// error and output where node failed.
func hfLoadRun(t *testing.T, node string, cs []tokCase) ([]*string, []byte, error) {
	var js []map[string]any
	for _, c := range cs {
		js = append(js, map[string]any{"Name": c.name, "Tok": c.tok})
	}
	p := filepath.Join(t.TempDir(), "cases.json")
	os.WriteFile(p, must(json.Marshal(js)), 0o644)
	if out, err := exec.Command(node, filepath.Join(jsDir, "hf_loads.js"), p).CombinedOutput(); err != nil {
		return nil, out, err
	}
	var res []struct{ HFErr *string }
	json.Unmarshal(must(os.ReadFile(p)), &res)
	out := make([]*string, len(res))
	for i, r := range res {
		out[i] = r.HFErr
	}
	return out, nil, nil
}

// tokCase is a tokenizer.json for a refusal test.
type tokCase struct {
	name string
	tok  map[string]any
}

// wordLevelWith is a small WordLevel tokenizer.json with section set to v.
func wordLevelWith(section string, v any) map[string]any {
	m := map[string]any{"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": []any{}, "normalizer": nil, "pre_tokenizer": nil,
		"post_processor": nil, "decoder": nil, "model": map[string]any{"type": "WordLevel", "vocab": map[string]any{"[UNK]": 0, "a": 1}, "unk_token": "[UNK]"}}
	m[section] = v
	return m
}

// nullComponents are one valid component of each type, with the options
// Hugging Face declares optional (a null there is its default).
func nullComponents() []struct {
	section  string
	c        map[string]any
	nullable []string
} {
	type m = map[string]any
	pieceS := m{"Sequence": m{"id": "A", "type_id": 0}}
	pieceT := m{"SpecialToken": m{"id": "[CLS]", "type_id": 0}}
	return []struct {
		section  string
		c        map[string]any
		nullable []string
	}{
		{"normalizer", m{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": false, "lowercase": true}, []string{"strip_accents"}},
		{"normalizer", m{"type": "Strip", "strip_left": true, "strip_right": true}, nil},
		{"normalizer", m{"type": "Replace", "pattern": m{"Regex": "a"}, "content": "b"}, nil},
		{"normalizer", m{"type": "Prepend", "prepend": "▁"}, nil},
		{"normalizer", m{"type": "Sequence", "normalizers": []any{m{"type": "Lowercase"}}}, nil},
		{"pre_tokenizer", m{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}, []string{"split"}},
		{"pre_tokenizer", m{"type": "Split", "pattern": m{"String": "a"}, "behavior": "Isolated", "invert": false}, nil},
		{"pre_tokenizer", m{"type": "Digits", "individual_digits": true}, nil},
		{"pre_tokenizer", m{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}, nil},
		{"pre_tokenizer", m{"type": "Punctuation", "behavior": "Isolated"}, nil},
		{"pre_tokenizer", m{"type": "Sequence", "pretokenizers": []any{m{"type": "Whitespace"}}}, nil},
		{"pre_tokenizer", m{"type": "FixedLength", "length": 3}, nil},
		{"post_processor", m{"type": "TemplateProcessing", "single": []any{pieceT, pieceS}, "pair": []any{pieceS, pieceS},
			"special_tokens": m{"[CLS]": m{"id": "[CLS]", "ids": []any{1}, "tokens": []any{"[CLS]"}}}}, nil},
		{"post_processor", m{"type": "RobertaProcessing", "sep": []any{"a", 1}, "cls": []any{"a", 1}, "trim_offsets": true, "add_prefix_space": true},
			[]string{"trim_offsets", "add_prefix_space"}},
		{"post_processor", m{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}, nil},
		{"model", m{"type": "WordPiece", "vocab": m{"[UNK]": 0, "a": 1}, "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100}, nil},
		{"model", m{"type": "WordLevel", "vocab": m{"[UNK]": 0, "a": 1}, "unk_token": "[UNK]"}, nil},
		{"model", m{"type": "BPE", "dropout": 0, "unk_token": "[UNK]", "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": false,
			"byte_fallback": false, "ignore_merges": false, "vocab": m{"[UNK]": 0, "a": 1}, "merges": []any{}},
			[]string{"dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", "byte_fallback", "ignore_merges"}},
		{"model", m{"type": "Unigram", "unk_id": 0, "vocab": []any{[]any{"<unk>", 0}, []any{"a", -1}}, "byte_fallback": false}, []string{"unk_id"}},
		{"added_tokens", m{"id": 2, "content": "zz", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false}, nil},
		{"decoder", m{"type": "WordPiece", "prefix": "##", "cleanup": true}, nil},
		{"decoder", m{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}, []string{"split"}},
		{"decoder", m{"type": "BPEDecoder", "suffix": "</w>"}, nil},
		{"decoder", m{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}, nil},
		{"decoder", m{"type": "Replace", "pattern": m{"String": "▁"}, "content": " "}, nil},
		{"decoder", m{"type": "Strip", "content": " ", "start": 1, "stop": 0}, nil},
		{"decoder", m{"type": "CTC", "pad_token": "<pad>", "word_delimiter_token": "|", "cleanup": true}, nil},
		{"decoder", m{"type": "Sequence", "decoders": []any{m{"type": "Fuse"}}}, nil},
	}
}

// nullOptionCases are copies of each nullComponents one with one option (or
// one part of a pattern or template) set to null, and whether Hugging Face
// loads each: only where the option is one it declares optional.
func nullOptionCases() ([]tokCase, []bool) {
	type m = map[string]any
	var cs []tokCase
	var loads []bool
	add := func(section string, c m, name string, ok bool) {
		v := any(c)
		if section == "added_tokens" {
			v = []any{c}
		}
		cs = append(cs, tokCase{fmt.Sprintf("%s %v: %s null", section, c["type"], name), wordLevelWith(section, v)})
		loads = append(loads, ok)
	}
	for _, cp := range nullComponents() {
		for k, v := range cp.c {
			if k == "type" {
				continue
			}
			c := maps.Clone(cp.c)
			c[k] = nil
			add(cp.section, c, k, slices.Contains(cp.nullable, k))
			switch v := v.(type) {
			case m: // a pattern, or special_tokens
				for kk := range v {
					c := maps.Clone(cp.c)
					c[k] = m{kk: nil}
					add(cp.section, c, k+"."+kk, false)
				}
			case []any: // a template's pieces
				for i, p := range v {
					p, ok := p.(m)
					if !ok {
						continue
					}
					for kind := range p {
						c := maps.Clone(cp.c)
						l := slices.Clone(v)
						l[i] = m{kind: m{"id": nil, "type_id": 0}}
						c[k] = l
						add(cp.section, c, fmt.Sprintf("%s[%d].%s.id", k, i, kind), false)
					}
				}
			}
		}
	}
	return cs, loads
}

// TestCommandTokensNotFromText: a model whose vocabulary holds "<s>",
// "</s>" and "[MASK]" as ordinary words (WordLevel after WhitespaceSplit,
// as InternLM2's BPE holds "<s>") encodes them from text, in Hugging Face
// as in glmkit, so they stay text, and GLM's command tokens are the next
// of their names ("<|endoftext|>", an added special token) or new ids.
func TestCommandTokensNotFromText(t *testing.T) {
	tok := wordLevelWith("pre_tokenizer", map[string]any{"type": "WhitespaceSplit"})
	tok["model"] = map[string]any{"type": "WordLevel", "vocab": map[string]any{"[UNK]": 0, "<s>": 1, "a": 2, "[MASK]": 3, "</s>": 4}, "unk_token": "[UNK]"}
	tok["added_tokens"] = []any{map[string]any{"id": 5, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}}
	tk, err := buildTokenizerJSON(must(json.Marshal(tok)))
	if err != nil {
		t.Fatal(err)
	}
	sp := tk.Special()
	if sp.EOS != 5 {
		t.Errorf("eos %d: want 5, the added <|endoftext|> (</s> is text)", sp.EOS)
	}
	if sp.CLS < 6 || sp.Mask < 6 || sp.Sep < 6 {
		t.Errorf("cls %d, mask %d, sep %d: want new ids (<s>, [MASK] and </s> are text)", sp.CLS, sp.Mask, sp.Sep)
	}
	if sp.Unk != 0 {
		t.Errorf("unk %d: want 0, the model's", sp.Unk)
	}
	text := "<s> a </s> [MASK] b"
	got, err := tk.NewEncoder().Encode(nil, []byte(text))
	if want := []int32{1, 2, 4, 3, 0}; err != nil || !slices.Equal(got, want) {
		t.Errorf("%q: %v %v, want %v", text, got, err, want)
	}
	if found := tk.commandTokensFromText(); len(found) > 0 {
		t.Errorf("command tokens %v still come from text", found)
	}
	if _, err := exec.LookPath("node"); err != nil {
		return
	}
	node, dir := needNode(t), t.TempDir()
	path := filepath.Join(dir, "tokenizer.json")
	os.WriteFile(path, must(json.Marshal(tok)), 0o644)
	docs := filepath.Join(dir, "docs.json")
	os.WriteFile(docs, must(json.Marshal([]string{text})), 0o644)
	runHF(t, node, dir, docs, []map[string]any{{"tokenizer": path, "out": filepath.Join(dir, "ids.bin")}})
	if hf := readIDs(t, filepath.Join(dir, "ids.bin"), 1)[0]; !slices.Equal(got, hf) {
		t.Errorf("%q: glmkit %v, Hugging Face %v", text, got, hf)
	}
}

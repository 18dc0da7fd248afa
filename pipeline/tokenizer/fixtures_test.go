package tokenizer

import (
	"encoding/json"
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
func missingOptionCases() []struct {
	name string
	tok  map[string]any
} {
	base := func(section string, v any) map[string]any {
		m := map[string]any{"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": []any{}, "normalizer": nil, "pre_tokenizer": nil,
			"post_processor": nil, "decoder": nil, "model": map[string]any{"type": "WordLevel", "vocab": map[string]any{"[UNK]": 0, "a": 1}, "unk_token": "[UNK]"}}
		m[section] = v
		return m
	}
	bl := map[string]any{"type": "ByteLevel", "add_prefix_space": true, "use_regex": true}
	var out []struct {
		name string
		tok  map[string]any
	}
	add := func(name string, tok map[string]any) {
		out = append(out, struct {
			name string
			tok  map[string]any
		}{name, tok})
	}
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
	if _, err := exec.LookPath("node"); err != nil {
		return
	}
	node := needNode(t)
	var js []map[string]any
	for _, c := range cs {
		js = append(js, map[string]any{"Name": c.name, "Tok": c.tok})
	}
	p := filepath.Join(t.TempDir(), "cases.json")
	os.WriteFile(p, must(json.Marshal(js)), 0o644)
	if out, err := exec.Command(node, filepath.Join(jsDir, "hf_loads.js"), p).CombinedOutput(); err != nil {
		t.Fatalf("hf_loads.js: %v\n%s", err, out)
	}
	var res []struct {
		Name  string
		HFErr *string
	}
	json.Unmarshal(must(os.ReadFile(p)), &res)
	for _, r := range res {
		if r.HFErr == nil {
			t.Errorf("%s: Hugging Face loads it", r.Name)
		}
	}
}

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

package tokenizer

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// jsDir holds the pinned npm reference (package.json + package-lock.json).
const jsDir = "../../testdata/js"

// needNode skips the test unless node and the npm reference are installed.
func needNode(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: cannot run the Hugging Face reference (CI installs it)")
	}
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules/@anush008/tokenizers")); err != nil {
		t.Skip("testdata/js/node_modules missing: run `cd testdata/js && npm ci` to compare with Hugging Face tokenizers")
	}
	return node
}

// hfTokenizerJSON writes a copy of the tokenizer.json at src with
// added_tokens emptied (so HF encodes literal special-token strings as text,
// as we do), after applying edit to the decoded object.
//
// hfTextSpecials is the same but keeps the added tokens that are not
// special, which glmkit matches in text as HF does.
func hfTokenizerJSON(t testing.TB, src, dst string, edit func(map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		t.Fatal(err)
	}
	obj["added_tokens"] = []any{}
	if edit != nil {
		edit(obj)
	}
	out, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readIDs reads hf_encode.js output.
func readIDs(t *testing.T, path string, ndocs int) [][]int32 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]int32, 0, ndocs)
	for len(data) > 0 {
		n := int(binary.LittleEndian.Uint32(data))
		data = data[4:]
		ids := make([]int32, n)
		for i := range ids {
			ids[i] = int32(binary.LittleEndian.Uint32(data[4*i:]))
		}
		data = data[4*n:]
		out = append(out, ids)
	}
	if len(out) != ndocs {
		t.Fatalf("%s: %d documents, want %d", path, len(out), ndocs)
	}
	return out
}

func hfTextSpecials(t testing.TB, src, dst string) { hfTextTokens(t, src, dst, nil) }

// hfTextTokens is hfTextSpecials that also drops the added tokens of the
// ids in commands: GLM's command tokens, which glmkit never matches in text
// (a literal "<mask>" is text), special or not.
func hfTextTokens(t testing.TB, src, dst string, commands map[int32]bool) {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(must(os.ReadFile(src)), &obj); err != nil {
		t.Fatal(err)
	}
	var keep []any
	for _, a := range obj["added_tokens"].([]any) {
		a := a.(map[string]any)
		id, _ := a["id"].(float64)
		if sp, _ := a["special"].(bool); !sp && !commands[int32(id)] {
			keep = append(keep, a)
		}
	}
	obj["added_tokens"] = append([]any{}, keep...)
	if err := os.WriteFile(dst, must(json.Marshal(obj)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

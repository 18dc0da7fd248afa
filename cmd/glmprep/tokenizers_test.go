package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/sharding"
)

// gpt2Ranks returns GPT-2's vocabulary as tiktoken ranks (r50k_base): the
// bytes of each byte-level token, by id.
func gpt2Ranks(t *testing.T) [][]byte {
	t.Helper()
	var vocab map[string]int
	if err := json.Unmarshal(must(os.ReadFile(glmtest.Shared(t, "tokenizers/gpt2/vocab.json"))), &vocab); err != nil {
		t.Skipf("shared tokenizers not available: %v", err)
	}
	// bytes_to_unicode, inverted.
	dec := map[rune]byte{}
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			dec[rune(b)] = byte(b)
		} else {
			dec[rune(0x100+n)] = byte(b)
			n++
		}
	}
	ranks := make([][]byte, 50256)
	for s, id := range vocab {
		if id >= len(ranks) {
			continue // <|endoftext|>
		}
		var raw []byte
		for _, r := range s {
			raw = append(raw, dec[r])
		}
		ranks[id] = raw
	}
	return ranks
}

func writeTiktoken(t *testing.T, path string, ranks [][]byte) {
	t.Helper()
	var sb strings.Builder
	for id, tok := range ranks {
		fmt.Fprintf(&sb, "%s %d\n", base64.StdEncoding.EncodeToString(tok), id)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestTokenizerFamiliesEndToEnd builds, verifies and inspects a small
// multilingual corpus with a tokenizer.json (Split + ByteLevel), a
// .tiktoken recognised by its hash, a tiktoken file that needs
// --tokenizer-pattern, GLM's own SentencePiece .model, and a cased
// vocab.txt with its tokenizer_config.json: every build verifies, inspect
// shows Chinese and Japanese as text, and the manifest records the family
// and every special id.
func TestTokenizerFamiliesEndToEnd(t *testing.T) {
	dir := t.TempDir()
	in := familiesInput(t, dir)
	for _, c := range familyCases(t, dir) {
		t.Run(c.name, func(t *testing.T) {
			checkFamilyBuild(t, filepath.Join(dir, "out-"+strings.ReplaceAll(c.name, " ", "-")), in, c)
		})
	}
}

// familiesInput writes dir/in.txt: 60 lines each of Chinese, Japanese and
// English text.
func familiesInput(t *testing.T, dir string) string {
	t.Helper()
	var docs []string
	for _, rel := range []string{"zh/ud_chinese_gsdsimp-dev.txt", "gutenberg-aozora/wagahaiwa_nekodearu.txt", "wikitext-2-raw/wiki.valid.raw"} {
		data := must(os.ReadFile(glmtest.Corpus(t, rel)))
		lines := strings.Split(string(data), "\n")
		n := 0
		for _, l := range lines {
			if l = strings.TrimSpace(l); len(l) > 20 && n < 60 {
				docs = append(docs, l)
				n++
			}
		}
	}
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, []byte(strings.Join(docs, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return in
}

// A familyCase is a tokenizer of one family and what a build with it must
// show.
type familyCase struct {
	name, tok string
	extra     []string
	family    string
	note      string
	text      []string // what inspect must show
}

// familyCases writes the tokenizers that the shared ones do not hold as
// such into dir and returns a case for each family.
func familyCases(t *testing.T, dir string) []familyCase {
	t.Helper()
	tokDir := glmtest.Shared(t, "tokenizers")

	// tokenizer.json: GPT-2 as Split(regex) + ByteLevel(use_regex false).
	var tj map[string]any
	if err := json.Unmarshal(must(os.ReadFile(filepath.Join(tokDir, "gpt2/tokenizer.json"))), &tj); err != nil {
		t.Fatal(err)
	}
	tj["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{
		map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`}, "behavior": "Isolated", "invert": false},
		map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}}}
	splitJSON := filepath.Join(dir, "gpt2-split.json")
	if err := os.WriteFile(splitJSON, must(json.Marshal(tj)), 0o644); err != nil {
		t.Fatal(err)
	}
	ranks := gpt2Ranks(t)
	r50k := filepath.Join(dir, "r50k_base.tiktoken")
	writeTiktoken(t, r50k, ranks)
	glm4Like := filepath.Join(dir, "glm4", "tokenizer.model") // a tiktoken file under GLM-4's name
	os.MkdirAll(filepath.Dir(glm4Like), 0o755)
	writeTiktoken(t, glm4Like, ranks)
	cased := filepath.Join(dir, "chinese-cased")
	os.MkdirAll(cased, 0o755)
	os.WriteFile(filepath.Join(cased, "vocab.txt"), must(os.ReadFile(filepath.Join(tokDir, "bert-base-chinese/vocab.txt"))), 0o644)
	os.WriteFile(filepath.Join(cased, "tokenizer_config.json"), []byte(`{"do_lower_case": false}`), 0o644)

	return []familyCase{
		{"tokenizer.json", splitJSON, nil, "bpe/gpt2", "", []string{"中国", "吾輩", "猫"}},
		{"tiktoken", r50k, nil, "bpe/gpt2", "r50k_base (recognised by its SHA-256)", []string{"中国", "吾輩", "猫"}},
		{"tiktoken+pattern", glm4Like, []string{"--tokenizer-pattern", "r50k_base"}, "bpe/gpt2", "--tokenizer-pattern", []string{"中国", "吾輩", "猫"}},
		// GLM's Chinese model knows Chinese and kana; WordPiece decodes with spaces between CJK characters.
		{"sentencepiece", filepath.Join(tokDir, "glm-chinese-sentencepiece/cog-pretrain.model"), nil, "sentencepiece", "", []string{"中国", "猫"}},
		{"vocab.txt cased", filepath.Join(cased, "vocab.txt"), nil, "wordpiece", "lowercase=false", []string{"中 国", "吾 輩", "猫"}},
	}
}

// checkFamilyBuild builds in into out with c's tokenizer, verifies it, and
// checks the summary, the manifest's family and special ids, and the text
// inspect shows.
func checkFamilyBuild(t *testing.T, out, in string, c familyCase) {
	args := append([]string{"build", "--input", in, "--out", out, "--tokenizer", c.tok, "--seq-len", "128", "--workers", "2"}, c.extra...)
	_, stderr, err := glmprep(t, args...)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "tokenizer ") || (c.note != "" && !strings.Contains(stderr, c.note)) {
		t.Errorf("summary does not say how the tokenizer was read (want %q):\n%s", c.note, stderr)
	}
	mustGlmprep(t, "verify", out)
	m, err := sharding.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m.Meta.TokenizerFamily, c.family) {
		t.Errorf("manifest tokenizer_family %q, want %s…", m.Meta.TokenizerFamily, c.family)
	}
	s := m.Meta.Special
	ids := []int32{s.Pad, s.EOS, s.CLS, s.Mask, s.Sep, s.Unk, s.SOP, s.EOP, s.GMask, s.SMask}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		if id < 0 || int(id) >= m.Meta.VocabSize {
			t.Errorf("special id %d outside the model vocabulary %d: %+v", id, m.Meta.VocabSize, s)
		}
	}
	text := mustGlmprep(t, "inspect", out, "--rows", "400", "--color", "never")
	for _, want := range c.text {
		if !strings.Contains(text, want) {
			t.Errorf("inspect does not show %q as text", want)
		}
	}
}

// TestTokenizerErrors: every unsupported or malformed tokenizer file is a
// one-line error naming the file and the component, and nothing is written.
func TestTokenizerErrors(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	os.WriteFile(in, []byte("hello world\n"), 0o644)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	model := `"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}`
	r50k := filepath.Join(dir, "ranks", "mystery.tiktoken")
	os.MkdirAll(filepath.Dir(r50k), 0o755)
	writeTiktoken(t, r50k, gpt2Ranks(t)[:50000]) // not r50k_base itself: neither its hash nor its name is known
	for _, c := range []struct {
		path  string
		extra []string
		want  []string
	}{
		{write("pre/tokenizer.json", `{"pre_tokenizer": {"type": "UnicodeScripts"}, `+model+`}`), nil, []string{"pre/tokenizer.json", `pre_tokenizer.type "UnicodeScripts" is not supported`}},
		{write("norm/tokenizer.json", `{"normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Frobnicate"}]}, `+model+`}`), nil, []string{`normalizer.normalizers[1].type "Frobnicate" is not supported`}},
		{write("model/tokenizer.json", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1}}`), nil, []string{"model.dropout"}},
		{write("regex/tokenizer.json", `{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a)\\1"}, "behavior": "Isolated", "invert": false}, `+model+`}`), nil, []string{"pre_tokenizer.pattern.Regex", `\1`}},
		{write("trunc/tokenizer.json", `{"model": {"type": "BPE", "vocab": {"a": 0`), nil, []string{"trunc/tokenizer.json", "not valid JSON"}},
		{write("bad.tiktoken", "YQ== 0\nnot base64! 1\n"), nil, []string{"bad.tiktoken", "line 2"}},
		{r50k, nil, []string{"mystery.tiktoken", "--tokenizer-pattern"}},
		{write("bare/vocab.json", `{"a": 0}`) + "\x00" + write("bare/merges.txt", "#version: 0.2\n"), nil, []string{"bare/vocab.json", "--tokenizer-pattern"}},
		{write("bad.model", "\x0a\x05\x0a\x01"), nil, []string{"bad.model"}},
		{write("lower/vocab.txt", "[UNK]\na\n"), []string{"--lowercase", "maybe"}, []string{"--lowercase"}},
		{filepath.Join(dir, "pre/tokenizer.json"), []string{"--tokenizer-pattern", "gpt2"}, []string{"--tokenizer-pattern applies"}},
	} {
		path, _, _ := strings.Cut(c.path, "\x00")
		out := filepath.Join(dir, "out", filepath.Base(filepath.Dir(path))+"-"+filepath.Base(path))
		args := append([]string{"build", "--input", in, "--out", out, "--tokenizer", path}, c.extra...)
		_, _, err := glmprep(t, args...)
		if err == nil {
			t.Errorf("%s: no error", path)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") {
			t.Errorf("%s: error is not one line: %q", path, msg)
		}
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: error %q does not mention %q", path, msg, w)
			}
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: %s was created", path, out)
		}
	}
}

// TestLargeVocabulary builds with a tiktoken vocabulary of more than 65,536
// ids (GPT-2's, padded, then two-letter tokens above 65,536) and finds ids
// above 65,535 in the shards, intact.
func TestLargeVocabulary(t *testing.T) {
	dir := t.TempDir()
	ranks := gpt2Ranks(t)
	have := map[string]bool{}
	for _, r := range ranks {
		have[string(r)] = true
	}
	for len(ranks) < 70000 { // padding tokens nothing in the text spells
		i := len(ranks)
		ranks = append(ranks, []byte{0, byte(i >> 8), byte(i)})
	}
	var words []string
	for a := 'a'; a <= 'z'; a++ {
		for b := 'a'; b <= 'z'; b++ {
			if w := string([]rune{a, b}); !have[" "+w] && !have[w] {
				ranks = append(ranks, []byte(" "+w))
				words = append(words, w)
			}
		}
	}
	if len(words) < 20 {
		t.Fatalf("only %d two-letter words to add", len(words))
	}
	tik := filepath.Join(dir, "big.tiktoken")
	writeTiktoken(t, tik, ranks)
	in := filepath.Join(dir, "in.txt")
	var lines []string
	for i := 0; i+10 <= len(words); i += 10 {
		lines = append(lines, "x "+strings.Join(words[i:i+10], " "))
	}
	os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	out := filepath.Join(dir, "out")
	mustGlmprep(t, "build", "--input", in, "--out", out, "--tokenizer", tik, "--tokenizer-pattern", "gpt2", "--seq-len", "64", "--quiet")
	mustGlmprep(t, "verify", out)
	r, err := sharding.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	maxID := int32(0)
	for i := int64(0); i < r.Len(); i++ {
		v, err := r.Row(i)
		if err != nil {
			t.Fatal(err)
		}
		for j := range v.Input.Len() {
			maxID = max(maxID, v.Input.At(j))
		}
	}
	if m := r.Meta(); maxID < 70000 || m.VocabSize < 70000+len(words) {
		t.Errorf("largest id %d, model vocabulary %d: want ids above 70000", maxID, m.VocabSize)
	}
}

// A build whose tokenizer needed --tokenizer-pattern is resumed from
// plan.json alone: the pattern comes from the plan, as every other flag
// does, and the result is the uninterrupted build's bytes.
func TestResumeTakesTokenizerOptionsFromPlan(t *testing.T) {
	dir := t.TempDir()
	ranks := filepath.Join(dir, "ranks", "mystery.tiktoken")
	os.MkdirAll(filepath.Dir(ranks), 0o755)
	writeTiktoken(t, ranks, gpt2Ranks(t)[:50000]) // neither its hash nor its name is known
	_, flags := smallInputs(t)
	for i, f := range flags {
		if f == "--tokenizer" {
			flags[i+1] = ranks
		}
	}
	flags = append(flags, "--tokenizer-pattern", "r50k_base")
	ref := filepath.Join(dir, "ref")
	mustGlmprep(t, append([]string{"build", "--out", ref}, flags...)...)
	out := filepath.Join(dir, "out")
	cmd, log := glmprepProcess(t, []string{"GLMKIT_TEST_CRASH=shard-committed:0/3"}, append([]string{"build", "--out", out}, flags...)...)
	waitKilled(t, cmd, log)
	if _, stderr, code := glmprepBin(t, nil, "build", "--out", out, "--resume", "--quiet"); code != 0 {
		t.Fatalf("build --out %s --resume: exit %d: %s", out, code, stderr)
	}
	glmtest.SameFiles(t, "resumed build", readDir(t, ref), readDir(t, out))
	// A pattern other than the plan's is named.
	_, stderr, code := glmprepBin(t, nil, "build", "--out", out, "--resume", "--quiet", "--tokenizer-pattern", "gpt2")
	if code != 1 || !strings.Contains(stderr, "--tokenizer-pattern") {
		t.Errorf("resume with another --tokenizer-pattern: exit %d: %s", code, stderr)
	}
}

// A task run where the plan's vocab.txt lies without the tokenizer_config.json
// that made it cased (a copy on another node) is refused: the same file
// would tokenize otherwise, and the build would hold two tokenizations.
func TestRunTaskRefusesAnotherTokenization(t *testing.T) {
	dir := t.TempDir()
	vocab := must(os.ReadFile(glmtest.Shared(t, "tokenizers/bert-base-uncased/vocab.txt")))
	cased, bare := filepath.Join(dir, "cased"), filepath.Join(dir, "bare")
	for _, d := range []string{cased, bare} {
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "vocab.txt"), vocab, 0o644)
	}
	os.WriteFile(filepath.Join(cased, "tokenizer_config.json"), []byte(`{"do_lower_case": false}`), 0o644)
	in := filepath.Join(dir, "in.txt")
	os.WriteFile(in, []byte(strings.Repeat("Hello World, a Cased Line.\n", 200)), 0o644)
	out := filepath.Join(dir, "plan")
	mustGlmprep(t, "plan", "--input", in, "--out", out, "--tokenizer", filepath.Join(cased, "vocab.txt"), "--seq-len", "64")
	_, stderr, err := glmprep(t, "run-task", out, "--task", "0", "--tokenizer", filepath.Join(bare, "vocab.txt"))
	if err == nil || !strings.Contains(err.Error(), "loads here as wordpiece, the plan was made with it as wordpiece/lowercase=false") {
		t.Errorf("run-task with the vocab.txt alone: %v\n%s", err, stderr)
	}
	mustGlmprep(t, "run-task", out, "--task", "0", "--tokenizer", filepath.Join(cased, "vocab.txt"))
}

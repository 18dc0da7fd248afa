package tokenizer

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// FuzzEncode checks, for both built-in tokenizers and any input: no panic,
// the same ids from a fresh and a reused Encoder, from the ASCII fast path
// and the general path, and (BPE) with and without the word cache.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", "Hello, world!", "don't 'S ''s", "a \n\nb  ", "------", "Café e\u0301 İ",
		"中文 テスト 한국어", "\v\f\x00\x7f\u200b\ufeff", "\xff\xe4\xb8", "[MASK] <|endoftext|>", "1½ ٣٤ ①"} {
		f.Add([]byte(s))
	}
	bert := loadBuiltin(f, BuiltinBERT)
	gpt2 := loadBuiltin(f, BuiltinGPT2)
	reused := []*Encoder{bert.NewEncoder(), gpt2.NewEncoder()}
	f.Fuzz(func(t *testing.T, text []byte) {
		for i, tk := range []*Tokenizer{bert, gpt2} {
			want, err := tk.NewEncoder().Encode(nil, text)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := reused[i].Encode(nil, text)
			if !slices.Equal(got, want) {
				t.Fatalf("%s: reused encoder %v, fresh %v", tk.Name(), got, want)
			}
			general := tk.NewEncoder()
			general.general = true
			if got, _ := general.Encode(nil, text); !slices.Equal(got, want) {
				t.Fatalf("%s: general path %v, fast path %v", tk.Name(), got, want)
			}
			nocache := tk.NewEncoder()
			nocache.noCache = true
			if got, _ := nocache.Encode(nil, text); !slices.Equal(got, want) {
				t.Fatalf("%s: uncached %v, cached %v", tk.Name(), got, want)
			}
			for _, id := range want {
				if id < 0 || int(id) >= tk.BaseVocabSize() {
					t.Fatalf("%s: id %d out of the base vocabulary", tk.Name(), id)
				}
			}
			_ = tk.Decode(want)
		}
	})
}

// fuzzTokenizerJSONSeeds are small tokenizer.json files, one per model
// kind and with every component, that the parser fuzzer mutates.
var fuzzTokenizerJSONSeeds = []string{
	`{"version":"1.0","added_tokens":[{"id":3,"content":"<x>","single_word":true,"lstrip":true,"rstrip":true,"normalized":false,"special":false}],
	  "normalizer":{"type":"Sequence","normalizers":[{"type":"NFKC"},{"type":"Lowercase"},{"type":"Replace","pattern":{"Regex":"\\s+"},"content":" "}]},
	  "pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"(?i:'s)|\\p{L}+|\\s+(?!\\S)|\\s+"},"behavior":"Isolated","invert":false},
	    {"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]},
	  "decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},
	  "model":{"type":"BPE","dropout":null,"unk_token":null,"byte_fallback":false,"ignore_merges":true,"vocab":{"a":0,"b":1,"ab":2},"merges":[["a","b"]]}}`,
	`{"normalizer":{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true},
	  "pre_tokenizer":{"type":"BertPreTokenizer"},"model":{"unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,"vocab":{"[UNK]":0,"a":1,"##b":2}}}`,
	`{"normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]},
	  "model":{"type":"BPE","unk_token":"<unk>","fuse_unk":true,"byte_fallback":true,"vocab":{"<unk>":0,"<0x61>":1,"▁":2,"b":3,"▁b":4},"merges":["▁ b"]},
	  "decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}}`,
	`{"pre_tokenizer":{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":true},
	  "model":{"type":"Unigram","unk_id":0,"byte_fallback":true,"vocab":[["<unk>",0],["▁a",-1.5],["b",-2],["<0x62>",-9]]}}`,
	`{"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Whitespace"},{"type":"Digits","individual_digits":true},{"type":"Punctuation","behavior":"Contiguous"}]},
	  "model":{"type":"WordLevel","unk_token":"u","vocab":{"u":0,"a":1}}}`,
}

// FuzzTokenizerJSON: any bytes as a tokenizer.json are an error or a
// tokenizer that encodes text without panicking.
func FuzzTokenizerJSON(f *testing.F) {
	for _, s := range fuzzTokenizerJSONSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		tk, err := buildTokenizerJSON(data)
		if err != nil {
			return
		}
		tk.name = "fuzz"
		e := tk.NewEncoder()
		for _, s := range []string{"", "a b ab", "Ab's 12 <x> \u00e9\u0301 中文", "\xff ▁▁ b<0x62>"} {
			ids, err := e.Encode(nil, []byte(s))
			if err != nil {
				continue
			}
			for _, id := range ids {
				if id < 0 || int(id) >= tk.VocabSize() {
					t.Fatalf("id %d outside the vocabulary (%d)", id, tk.VocabSize())
				}
			}
			_ = tk.Decode(ids)
		}
	})
}

// FuzzTiktoken: any bytes as a .tiktoken file are an error or a tokenizer
// that encodes text.
func FuzzTiktoken(f *testing.F) {
	var sb strings.Builder
	for b := range 256 {
		fmt.Fprintf(&sb, "%s %d\n", base64.StdEncoding.EncodeToString([]byte{byte(b)}), b)
	}
	sb.WriteString("aGU= 256\nbGw= 257\naGVsbA== 258\n")
	f.Add([]byte(sb.String()))
	f.Add([]byte("YQ== 0\nYg== 2\n"))
	f.Add([]byte("YQ== 0\r\n\r\nYQ== 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		tk, err := fromTiktoken("fuzz.tiktoken", data, LoadOptions{Pattern: "cl100k_base"})
		if err != nil {
			return
		}
		ids, err := tk.NewEncoder().Encode(nil, []byte("hello world 'S 123 中文"))
		if err != nil {
			t.Fatal(err)
		}
		_ = tk.Decode(ids)
	})
}

// FuzzRegex: any pattern compiles or is an error, and a compiled one
// matches text without panicking.
func FuzzRegex(f *testing.F) {
	for _, s := range []string{patGPT2, patCL100K, patO200K, `(?<=a)b|(?!c)\s*$`, `[\p{L}&&[^a-z]]+?`, `(?>a|ab)c{2,3}+`, `(?i:'s)\b|\B.`, `[a-\p]`, `[a-\p{`, `[a-\pL]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pat string) {
		if len(pat) > 512 {
			return
		}
		re, err := compileRegex(pat)
		if err != nil {
			return
		}
		var m reMatcher
		_ = m.findAll(re, []byte("Hello, world! 'S don't 123\n\n  中文 ǅ\u0301"), func(s, e int) {
			if s > e {
				t.Fatalf("match %d..%d", s, e)
			}
		})
	})
}

// A class escape where a range ends is an error naming it, not a crash or
// a misleading message.
func TestRegexBadRangeEnd(t *testing.T) {
	for pat, want := range map[string]string{
		`[a-\p]`: "", `[a-\p{`: "", `[a-\p{Foo}]`: "Foo", `[a-\pL]`: "needs {NAME}", `[a-\d]`: "bad range end", `[a-\x{7A}]`: "-",
	} {
		re, err := compileRegex(pat)
		switch {
		case want == "-":
			n := 0
			var m reMatcher
			if err != nil {
				t.Errorf("%s: %v", pat, err)
			} else if m.findAll(re, []byte("az{"), func(int, int) { n++ }) != nil || n != 2 {
				t.Errorf("%s: %d matches in \"az{\"; want 2", pat, n)
			}
		case err == nil:
			t.Errorf("%s compiled; want an error", pat)
		case !strings.Contains(err.Error(), want):
			t.Errorf("%s: %v; want it to say %q", pat, err, want)
		}
	}
}

// TestFuzzSeedsLoad keeps the fuzzers' seeds valid, so that fuzzing starts
// from tokenizers that encode.
func TestFuzzSeedsLoad(t *testing.T) {
	for i, s := range fuzzTokenizerJSONSeeds {
		tk, err := buildTokenizerJSON([]byte(s))
		if err != nil {
			t.Errorf("seed %d: %v", i, err)
			continue
		}
		if ids, err := tk.NewEncoder().Encode(nil, []byte("a b ab")); err != nil || len(ids) == 0 {
			t.Errorf("seed %d: %v %v", i, ids, err)
		}
	}
}

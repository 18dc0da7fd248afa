package tokenizer

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCharsmap: any blob is a valid charsmap or an error, never a panic,
// and a valid one normalizes anything (both semantics) to valid UTF-8 when
// its strings are.
func FuzzCharsmap(f *testing.F) {
	if data, err := os.ReadFile(cogPretrainPath); err == nil {
		if m, err := parseModelProto(data); err == nil {
			f.Add(m.normalizer.precompiledCharsmap) // nmt_nfkc
		}
	}
	f.Add([]byte{4, 0, 0, 0, 0, 0, 0, 0, 'x', 0})
	f.Add(binary.LittleEndian.AppendUint32(nil, 1<<31))
	f.Fuzz(func(t *testing.T, blob []byte) {
		c, err := newCharsmap(blob)
		if err != nil {
			return
		}
		for _, s := range []string{"", "abc", "ｶﾞ①½ Ａ\u0301", "\r\n\x00\xff", strings.Repeat("e\u0301", 20)} {
			_ = c.normalize(nil, []byte(s))
			if utf8.ValidString(s) {
				_ = c.normalizeHF(nil, []byte(s))
			}
		}
	})
}

// TestCharsmapErrors: broken blobs are errors.
func TestCharsmapErrors(t *testing.T) {
	for _, c := range []struct {
		blob []byte
		want string
	}{
		{nil, "too short"},
		{[]byte{1, 2, 3, 4}, "too short"},
		{[]byte{9, 0, 0, 0, 1}, "exceeds the blob"},
		{[]byte{0, 0, 0, 0, 1}, "empty trie"},
	} {
		if _, err := newCharsmap(c.blob); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.blob, err, c.want)
		}
	}
	// A leaf whose value points past the strings.
	data, err := os.ReadFile(cogPretrainPath)
	if err != nil {
		t.Skipf("cog-pretrain.model: %v", err)
	}
	m, err := parseModelProto(data)
	if err != nil {
		t.Fatal(err)
	}
	blob := append([]byte{}, m.normalizer.precompiledCharsmap...)
	size := binary.LittleEndian.Uint32(blob)
	bad := append(blob[:4+size:4+size], 'x') // strings cut to one byte without NUL
	if _, err := newCharsmap(bad); err == nil {
		t.Error("charsmap with truncated strings loaded")
	}
}

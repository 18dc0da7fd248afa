package tokenizer

import "testing"

func TestSmoke(t *testing.T) {
	for _, name := range []string{"bert-base-uncased", "gpt2"} {
		tk, err := Load(name)
		if err != nil {
			t.Fatal(err)
		}
		e := tk.NewEncoder()
		ids, err := e.Encode(nil, []byte("Hello, world! Café [MASK] <|endoftext|> don't   stop\n\nnow 中文字 ------ 12345"))
		t.Log(tk, tk.Special(), ids, err)
		t.Logf("%q", tk.Decode(ids))
	}
}

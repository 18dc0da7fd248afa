package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

type cut struct {
	line   int64
	off    int64
	text   string
	reason Reason
}

// drain reads the records of next, a record source's next, to its end
// (errEnd), reusing one arena as the pipeline does, and returns them with
// their texts; err is the first other error, with the records before it.
func drain(next func(arena []byte) (record, []byte, error)) (recs []record, texts []string, err error) {
	var arena []byte
	for {
		rec, a, err := next(arena[:0])
		arena = a
		if err == errEnd {
			return recs, texts, nil
		}
		if err != nil {
			return recs, texts, err
		}
		recs = append(recs, rec)
		texts = append(texts, string(arena[rec.start:rec.end]))
	}
}

func readAll(t *testing.T, cfg readerConfig, src io.Reader) ([]cut, error) {
	t.Helper()
	r := &reader{cfg: cfg, br: bufio.NewReaderSize(src, 16)}
	recs, texts, err := drain(r.next)
	var out []cut
	for i, rec := range recs {
		if rec.index != int64(i) {
			t.Fatalf("record index %d, want %d", rec.index, i)
		}
		out = append(out, cut{rec.line, rec.off, texts[i], rec.reason})
	}
	if err != nil {
		return out, err
	}
	return out, r.inErr
}

func TestReaderBoundaries(t *testing.T) {
	input := "\xef\xbb\xbfone\r\ntwo words\n \n\nthree\nfour\n\n\nfive"
	for _, tc := range []struct {
		name string
		cfg  readerConfig
		want []cut
	}{
		{"line", readerConfig{Format: "text", DocBoundary: "line", MaxDocBytes: 100}, []cut{
			{1, 0, "one", OK}, {2, 8, "two words", OK}, {3, 18, " ", Blank}, {4, 20, "", Blank},
			{5, 21, "three", OK}, {6, 27, "four", OK}, {7, 32, "", Blank}, {8, 33, "", Blank}, {9, 34, "five", OK}}},
		{"blank", readerConfig{Format: "text", DocBoundary: "blank", MaxDocBytes: 100}, []cut{
			{1, 0, "one\ntwo words", OK}, {5, 21, "three\nfour", OK}, {9, 34, "five", OK}}},
		{"file", readerConfig{Format: "text", DocBoundary: "file", MaxDocBytes: 100}, []cut{
			{1, 0, "one\ntwo words\n \n\nthree\nfour\n\n\nfive", OK}}},
		{"line too long", readerConfig{Format: "text", DocBoundary: "line", MaxDocBytes: 4}, []cut{
			{1, 0, "one", OK}, {2, 8, "", TooLong}, {3, 18, " ", Blank}, {4, 20, "", Blank},
			{5, 21, "", TooLong}, {6, 27, "four", OK}, {7, 32, "", Blank}, {8, 33, "", Blank}, {9, 34, "five", OK}}},
		{"block too long", readerConfig{Format: "text", DocBoundary: "blank", MaxDocBytes: 12}, []cut{
			{1, 0, "", TooLong}, {5, 21, "three\nfour", OK}, {9, 34, "five", OK}}},
	} {
		for name, wrap := range map[string]func(io.Reader) io.Reader{
			"plain": func(r io.Reader) io.Reader { return r }, "one byte": iotest.OneByteReader, "half": iotest.HalfReader,
		} {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				got, err := readAll(t, tc.cfg, wrap(strings.NewReader(input)))
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("records\n got %v\nwant %v", got, tc.want)
				}
			})
		}
	}
}

func TestReaderHugeLine(t *testing.T) {
	big := bytes.Repeat([]byte("word "), 2<<20) // a 10 MB line
	input := "short\n" + string(big) + "\nafter\n"
	for _, max := range []int{64 << 20, 1 << 20} {
		got, err := readAll(t, readerConfig{Format: "text", DocBoundary: "line", MaxDocBytes: max}, strings.NewReader(input))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].text != "short" || got[2].text != "after" || got[2].line != 3 {
			t.Fatalf("max %d: records %d: %.40v", max, len(got), got)
		}
		if max > len(big) && (got[1].reason != OK || len(got[1].text) != len(big)) {
			t.Errorf("10 MB line cut: %d bytes, %v", len(got[1].text), got[1].reason)
		}
		if max < len(big) && got[1].reason != TooLong {
			t.Errorf("10 MB line over a 1 MB cap: %v, want too_long", got[1].reason)
		}
	}
}

// Damage found by a decoder cuts the record it is in (truncated); any other
// read error is no verdict on the data and stops the reader.
func TestReaderInputError(t *testing.T) {
	for _, cfg := range []readerConfig{
		{Format: "jsonl", MaxDocBytes: 100},
		{Format: "text", DocBoundary: "blank", MaxDocBytes: 100},
		{Format: "text", DocBoundary: "file", MaxDocBytes: 100},
	} {
		src := io.MultiReader(strings.NewReader("complete\n\npart"), iotest.ErrReader(&damageError{42, "zstd frame at byte 42 is corrupt"}))
		got, err := readAll(t, cfg, src)
		if !isDamage(err) || len(got) == 0 || got[len(got)-1].reason != Truncated {
			t.Errorf("%+v: records %v, err %v; want the records before the damage, then a truncated one", cfg, got, err)
		}
		eio := &ioError{"in.txt", errors.New("input/output error")}
		src = io.MultiReader(strings.NewReader("complete\n\npart"), iotest.ErrReader(eio))
		_, err = readAll(t, cfg, src)
		if !errors.Is(err, eio) {
			t.Errorf("%+v: an I/O error gave %v, want it returned", cfg, err)
		}
	}
}

func TestMapOrdered(t *testing.T) {
	for _, workers := range []int{1, 2, 7} {
		n := 0
		var got []int
		err := mapOrdered(context.Background(), workers,
			func(context.Context) (int, bool, error) { n++; return n, n <= 1000, nil },
			func(i int) (int, error) { return i * i, nil },
			func(v int) error { got = append(got, v); return nil })
		if err != nil || len(got) != 1000 {
			t.Fatalf("workers %d: %d results, %v", workers, len(got), err)
		}
		for i, v := range got {
			if v != (i+1)*(i+1) {
				t.Fatalf("workers %d: result %d = %d, out of order", workers, i, v)
			}
		}
	}
	boom := errors.New("boom")
	for name, tc := range map[string]struct {
		f    func(int) (int, error)
		emit func(int) error
		want string
	}{
		"worker error": {func(i int) (int, error) {
			if i == 50 {
				return 0, boom
			}
			return i, nil
		}, func(int) error { return nil }, "boom"},
		"worker panic": {func(i int) (int, error) {
			if i == 50 {
				panic("bad")
			}
			return i, nil
		}, func(int) error { return nil }, "panic in worker: bad"},
		"emit error": {func(i int) (int, error) { return i, nil }, func(v int) error {
			if v == 70 {
				return boom
			}
			return nil
		}, "boom"},
	} {
		n := 0
		err := mapOrdered(context.Background(), 3,
			func(context.Context) (int, bool, error) { n++; return n, true, nil }, // endless input
			tc.f, tc.emit)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", name, err, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	k := 0
	err := mapOrdered(ctx, 2, func(context.Context) (int, bool, error) { k++; return k, true, nil },
		func(i int) (int, error) { return i, nil },
		func(v int) error {
			if v == 10 {
				cancel()
			}
			return nil
		})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err %v", err)
	}
}

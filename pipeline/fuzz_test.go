package pipeline

import (
	"bytes"
	"compress/bzip2"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Fuzz tests of every parser of a file glmkit reads back from a build
// directory (plan.json; task progress and complete records, stats
// included), and of the frame-by-frame decoder of compressed input. Their
// seeds (below, and testdata/fuzz/) run in every go test.

// seedBuild makes a small real build and returns its plan and task record
// bytes.
func seedBuild(f testing.TB) (plan []byte, records [][]byte) {
	f.Helper()
	dir := f.TempDir()
	in := filepath.Join(dir, "in.txt")
	os.WriteFile(in, testLines(800), 0o644)
	out := filepath.Join(dir, "out")
	o := options(f, "gpt2", out, in)
	o.Config.ShardRows = 10
	o.Config.TaskBytes = 20 << 10
	if _, err := Build(context.Background(), o); err != nil {
		f.Fatal(err)
	}
	plan, _ = os.ReadFile(filepath.Join(out, PlanName))
	for i := 0; ; i++ {
		b, err := os.ReadFile(recordPath(out, i))
		if err != nil {
			break
		}
		records = append(records, b)
	}
	return plan, records
}

func FuzzParsePlan(f *testing.F) {
	plan, _ := seedBuild(f)
	f.Add(plan)
	f.Add(bytes.Replace(plan, []byte(`"input": 0`), []byte(`"input": 9`), 1))
	f.Add(bytes.Replace(plan, []byte(`"seq_len": 512`), []byte(`"seq_len": -1`), 1))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format_version": 1, "inputs": [], "tasks": [{"input": -1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parsePlan("plan.json", data)
		if err != nil {
			if !strings.Contains(err.Error(), "plan.json") {
				t.Fatalf("the error does not name the file: %v", err)
			}
			return
		}
		// A plan that passes can be used: every index is in range.
		for _, task := range p.Tasks {
			_ = p.Inputs[task.Input]
			_ = expectedSum(p, task.Index)
		}
		// And it reads back the same after a round trip.
		b, _ := json.Marshal(p)
		if _, err := parsePlan("plan.json", b); err != nil {
			t.Fatalf("a plan that passed fails after a round trip: %v", err)
		}
	})
}

func FuzzParseTaskRecord(f *testing.F) {
	planBytes, records := seedBuild(f)
	plan, err := parsePlan("plan.json", planBytes)
	if err != nil {
		f.Fatal(err)
	}
	for i, r := range records {
		f.Add(r, i, true)
		f.Add(bytes.Replace(r, []byte(`"complete": true`), []byte(`"complete": false`), 1), i, false)
	}
	f.Add(bytes.Replace(records[0], []byte("shard-000000-0000.arrow"), []byte("../../etc/passwd"), 1), 0, true)
	f.Add([]byte(`{"task": 0, "complete": false, "shards": [], "resume": {"line": 1}, "stats": {"records": -1}}`), 0, false)
	f.Fuzz(func(t *testing.T, data []byte, task int, complete bool) {
		if task < 0 || task >= len(plan.Tasks) {
			task = 0
		}
		for _, pl := range []*Plan{nil, plan} {
			r, err := parseTaskRecord("rec.json", data, pl, task, complete)
			if err != nil {
				if !strings.Contains(err.Error(), "rec.json") {
					t.Fatalf("the error does not name the file: %v", err)
				}
				continue
			}
			for i, sf := range r.Shards {
				if sf.Name != shardName(task, i) || filepath.Base(sf.Name) != sf.Name {
					t.Fatalf("shard name %q accepted", sf.Name)
				}
			}
			var s Stats
			s.Add(r.Stats)
			_ = whyEmpty(&s)
		}
	})
}

// referenceDecode decodes data of the given compression with the
// whole-stream readers FuzzDecompress compares with.
func referenceDecode(kind string, data []byte) ([]byte, error) {
	switch kind {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	case "bzip2":
		return io.ReadAll(bzip2.NewReader(bytes.NewReader(data)))
	}
	d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow))
	defer d.Close()
	return d.DecodeAll(data, nil)
}

// The decoder gives exactly what klauspost's whole-stream readers give for
// any valid stream, and for any other input a located damage note or the
// verified prefix; it never panics.
func FuzzDecompress(f *testing.F) {
	text := testLines(50)
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(text)
	zw.Close()
	gz := b.Bytes()
	enc, _ := zstd.NewWriter(nil)
	zs := enc.EncodeAll(text, nil)
	enc.Close()
	f.Add(gz)
	f.Add(append(append([]byte{}, gz...), gz...))
	f.Add(zs)
	f.Add(append(skippable([]byte("x")), zs...))
	f.Add(zs[:len(zs)/2])
	f.Add(gz[:len(gz)-3])
	if _, err := exec.LookPath("bzip2"); err == nil {
		cmd := exec.Command("bzip2", "-c")
		cmd.Stdin = bytes.NewReader(text)
		bz, err := cmd.Output()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bz)
		f.Add(append(bytes.Clone(bz), bz...))
		f.Add(append(bytes.Clone(bz), "X"...))
		f.Add(append(bytes.Clone(bz), 0, 0, 0))
		f.Add(append(bytes.Clone(bz), bz[:len(bz)/2]...))
		f.Add(bz[:len(bz)-2])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kind, err := sniff(data)
		if err != nil || kind == "none" {
			return
		}
		p := filepath.Join(t.TempDir(), "in")
		os.WriteFile(p, data, 0o644)
		in := Input{Path: p, Size: int64(len(data)), Compression: kind, Format: "text"}
		st, _ := os.Stat(p)
		in.ModTime = st.ModTime().UnixNano()
		s, err := openStream(context.Background(), nil, in, Task{End: -1, Line: 1}, 0, t.TempDir(), nil)
		if err != nil {
			return
		}
		defer s.Close()
		got, rerr := io.ReadAll(s)
		want, werr := referenceDecode(kind, data)
		if rerr == nil && werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("decoded %d bytes, the reference %d", len(got), len(want))
		}
		if rerr == nil && werr != nil && len(bytes.TrimRight(data, "\x00")) == len(data) {
			t.Fatalf("read %d bytes without complaint; the reference fails: %v", len(got), werr)
		}
		var ue *unsupportedError
		if errors.As(rerr, &ue) {
			return // a dictionary or a huge window: an error, not a guess
		}
		if rerr != nil && !isDamage(rerr) {
			t.Fatalf("a file in memory gave a non-damage error: %v", rerr)
		}
		if rerr != nil && werr == nil {
			t.Fatalf("damage %v in what the reference reads (%d bytes)", rerr, len(want))
		}
		if rerr != nil && !bytes.HasPrefix(want, got) && werr == nil {
			t.Fatalf("the verified bytes are not a prefix of the stream")
		}
	})
}

package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/pipeline/parquettext"
)

// Class 2 of issue 11: only what a decoder finds bad is bad data. Any other
// read error stops the task with an error naming the file, nothing is
// recorded complete, and a rerun (--resume) gives the build an
// uninterrupted run gives.

// faultFile is an input that fails with EIO once a read reaches byte at.
type faultFile struct {
	*os.File
	at     int64
	pos    int64
	fails  *int // failures so far; the fault stops after limit of them
	limit  int
	onlyAt bool // only ReadAt fails (the second reading of a frame)
}

func (f *faultFile) fail(end int64) bool {
	if end > f.at && *f.fails < f.limit {
		*f.fails++
		return true
	}
	return false
}

func (f *faultFile) Read(p []byte) (int, error) {
	if !f.onlyAt && f.fail(f.pos+int64(len(p))) {
		return 0, &os.PathError{Op: "read", Path: f.Name(), Err: syscall.EIO}
	}
	n, err := f.File.Read(p)
	f.pos += int64(n)
	return n, err
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	if f.fail(off + int64(len(p))) {
		return 0, &os.PathError{Op: "read", Path: f.Name(), Err: syscall.EIO}
	}
	return f.File.ReadAt(p, off)
}

func (f *faultFile) Seek(off int64, whence int) (int64, error) {
	n, err := f.File.Seek(off, whence)
	f.pos = n
	return n, err
}

// faulty opens name with a fault at byte at (other files are fine), for at
// most limit failed reads.
func faulty(name string, at int64, limit int, onlyAt bool) (opener, *int) {
	fails := new(int)
	return func(path string) (inputFile, error) {
		f, err := os.Open(path)
		if err != nil || filepath.Base(path) != name {
			return f, err
		}
		return &faultFile{File: f, at: at, fails: fails, limit: limit, onlyAt: onlyAt}, nil
	}, fails
}

func TestIOErrorsStopTheTask(t *testing.T) {
	src := t.TempDir()
	text := testLines(2000)
	var zs, gz []byte
	for k := 0; k < len(text); k += 40000 {
		c := text[k:min(k+40000, len(text))]
		zs = append(zs, zstdFrame(t, c)...)
		gz = append(gz, gzipBytes(t, c)...)
	}
	var rows [][]byte
	for _, l := range bytes.Split(text[:60000], []byte("\n")) {
		rows = append(rows, l)
	}
	pq := filepath.Join(src, "rows.parquet")
	if err := parquettext.WriteTexts(pq, "text", rows, 300); err != nil {
		t.Fatal(err)
	}
	pqSize := int64(len(glmtest.ReadFile(t, pq)))
	refs := map[string]BuildOptions{} // the uninterrupted build of each input
	top := t
	cases := []ioErrorCase{
		{"text", "plain.txt", text, int64(len(text) / 2), 1, false},
		{"text, failing for good", "plain.txt", text, int64(len(text) / 2), 1 << 30, false},
		{"text at the first byte", "plain.txt", text, 0, 1, false},
		{"zstd", "frames.txt.zst", zs, int64(len(zs) / 2), 1, false},
		{"zstd, failing for good", "frames.txt.zst", zs, int64(len(zs) / 2), 1 << 30, false},
		{"zstd, when a frame is read again", "frames.txt.zst", zs, int64(len(zs) / 2), 1, true},
		{"gzip, when a member is read again", "members.txt.gz", gz, int64(len(gz) / 2), 1, true},
		{"gzip", "members.txt.gz", gz, int64(len(gz) * 2 / 3), 1, false},
		{"gzip, failing for good", "members.txt.gz", gz, int64(len(gz) * 2 / 3), 1 << 30, false},
		{"parquet", "rows.parquet", nil, pqSize / 2, 1, false},
	}
	if _, err := exec.LookPath("bzip2"); err == nil {
		// A byte after the stream: its end is found by decoding it again.
		bz := append(cli(t, text, "bzip2", "-c"), 'X')
		cases = append(cases, ioErrorCase{"bzip2 with a byte after its stream, when the stream is decoded again to find its end", "trailing.txt.bz2", bz, int64(len(bz) / 2), 1, true})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := pq
			if tc.data != nil {
				in = filepath.Join(src, tc.file)
				if _, err := os.Stat(in); err != nil {
					writeFile(t, src, tc.file, tc.data)
				}
			}
			ref, ok := refs[in]
			if !ok {
				ref = options(t, "gpt2", top.TempDir(), in)
				ref.Config.ShardRows = 50
				if _, err := Build(context.Background(), ref); err != nil {
					t.Fatal(err)
				}
				refs[in] = ref
			}
			readErrorThenRetry(t, ref, tc)
		})
	}
}

// An ioErrorCase fails the reads of file at byte at, limit times (only at
// that byte, with onlyAt).
type ioErrorCase struct {
	name, file string
	data       []byte
	at         int64
	limit      int
	onlyAt     bool
}

// readErrorThenRetry builds ref's input again with tc's read errors: the
// build must stop with an error naming the file, record nothing complete
// and write no manifest; retried with --resume, it must give ref's bytes
// (unless the disk keeps failing).
func readErrorThenRetry(t *testing.T, ref BuildOptions, tc ioErrorCase) {
	o := ref
	o.Out = t.TempDir()
	var fails *int
	o.open, fails = faulty(tc.file, tc.at, tc.limit, tc.onlyAt)
	_, err := Build(context.Background(), o)
	if err == nil || !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), tc.file) {
		t.Fatalf("a read error gave %v, want an error naming %s", err, tc.file)
	}
	if *fails == 0 {
		t.Fatal("the fault never fired")
	}
	plan, perr := ReadPlan(o.Out)
	if perr != nil {
		t.Fatal(perr)
	}
	for _, task := range plan.Tasks {
		if rec, _ := ReadTaskRecord(o.Out, task.Index); rec != nil && rec.Complete && task.Input == 0 {
			// A Parquet input's other row groups may be complete;
			// the failed one may not.
			if tc.data != nil {
				t.Fatalf("task %d recorded complete after a read error", task.Index)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(o.Out, "manifest.json")); err == nil {
		t.Fatal("a manifest was written after a read error")
	}
	// The retry: what is left of the fault may fire again.
	o.Resume = true
	for range 3 {
		if _, err = Build(context.Background(), o); err == nil {
			break
		}
	}
	if err != nil {
		if tc.limit > 1 {
			return // a disk that keeps failing keeps failing
		}
		t.Fatal(err)
	}
	if tc.limit > 1 {
		t.Fatal("a read error that never goes away was not reported")
	}
	glmtest.SameFiles(t, "build retried after a read error", dirBytes(t, ref.Out), dirBytes(t, o.Out))
}

// A Parquet row group whose pages are damaged is a counted skip, located by
// file, row group and row, and the other row groups are read whole.
func TestParquetDamage(t *testing.T) {
	src := t.TempDir()
	var rows [][]byte
	for i := range 900 {
		rows = append(rows, fmt.Appendf(nil, "row %d: a line of text with %x inside it to fill the page a little.", i, i*7919))
	}
	pq := filepath.Join(src, "rows.parquet")
	if err := parquettext.WriteTexts(pq, "text", rows, 300); err != nil {
		t.Fatal(err)
	}
	f, err := parquettext.Open(pq, "text")
	if err != nil {
		t.Fatal(err)
	}
	off := f.ChunkOffset(1)
	next := f.ChunkOffset(2)
	f.Close()
	data := glmtest.ReadFile(t, pq)
	for i := off + (next-off)/2; i < off+(next-off)/2+64; i++ {
		data[i] ^= 0xa5
	}
	bad := writeFile(t, src, "damaged.parquet", data)
	o := options(t, "gpt2", t.TempDir(), bad)
	res, warnings := buildWarned(t, o)
	d := res.Stats.Doc
	if d.Records != 900 {
		t.Errorf("%d records; every row of the file is counted (900)", d.Records)
	}
	if d.Reasons[Truncated] == 0 || d.Documents+d.Reasons[Truncated] != 900 || d.Documents < 600 {
		t.Errorf("documents %d, truncated %d: want the two intact row groups whole and the damaged rows counted", d.Documents, d.Reasons[Truncated])
	}
	if len(res.Stats.Damage) != 1 || res.Stats.Damage[0].Offset != off || !strings.Contains(res.Stats.Damage[0].Detail, "row group 1") {
		t.Errorf("damage %+v, want row group 1 at byte %d", res.Stats.Damage, off)
	}
	if !strings.Contains(strings.Join(warnings, "\n"), "damaged.parquet:") {
		t.Errorf("warnings %q", warnings)
	}
}

package sharding

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/masking"
)

// A bit flipped anywhere in a shard is caught: at Open when it is in the
// schema, dictionary or footer or breaks the structure, else on the first
// touch of its record batch, by Row, View and Widen (the loader's path)
// and Check, each naming the shard and the batch.
func TestEveryFlippedByteIsCaught(t *testing.T) {
	rows := glmtest.Rows(t, 60)
	src := t.TempDir()
	m := writeBuild(t, src, rows, 60, Options{BatchRows: 16})
	name := m.Shards[0].Name
	orig, err := os.ReadFile(filepath.Join(src, name))
	if err != nil {
		t.Fatal(err)
	}
	step := max(len(orig)/97, 1)
	for at := 0; at < len(orig); at += step {
		dir := t.TempDir()
		b := slices.Clone(orig)
		b[at] ^= 1 << (at % 8)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		writeJSON(t, filepath.Join(dir, ManifestName), m)
		r, err := Open(dir)
		if err != nil {
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("byte %d: Open error does not name the shard: %v", at, err)
			}
			continue
		}
		// Open passed: the flip is inside a record batch, which every
		// reader must refuse to serve.
		var rowErr error
		for i := range r.Len() {
			if _, err := r.Row(i); err != nil {
				rowErr = err
				break
			}
		}
		_, checkErr := r.Check(context.Background())
		widenErr := widenAll(r)
		r.Close()
		for what, err := range map[string]error{"Row": rowErr, "Check": checkErr, "View and Widen": widenErr} {
			if err == nil || err == io.EOF {
				t.Fatalf("byte %d flipped: %s read every row without an error", at, what)
			}
			if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "record batch") {
				t.Fatalf("byte %d: %s error does not name the shard and the batch: %v", at, what, err)
			}
		}
	}
}

// A rowDamage breaks a row in one way; want is what the error it causes
// must say.
type rowDamage struct {
	name   string
	break_ func(s *masking.Sample)
	want   string
}

// on returns a copy of s, with columns of its own, as d breaks it.
func (d rowDamage) on(s masking.Sample) masking.Sample {
	for _, c := range s.Ints() {
		*c = slices.Clone(*c)
	}
	s.LossMask = slices.Clone(s.LossMask)
	d.break_(&s)
	return s
}

// Rows that the format can store but that break the invariants every
// reader relies on are refused as they are served, with the shard, the
// batch, the row and what is wrong.
func TestRowChecks(t *testing.T) {
	base := glmtest.Rows(t, 30)
	for _, c := range []rowDamage{
		{"position past Part A", func(s *masking.Sample) { s.Pos[len(s.Pos)-1] = s.Sep + 3 }, "outside Part A"},
		{"block position past Part B", func(s *masking.Sample) { s.BlockPos[len(s.Pos)-1] = int32(len(s.Pos)) }, "outside Part B"},
		{"sep past the row", func(s *masking.Sample) { s.Sep = int32(len(s.Input)) }, "sep"},
		{"sep of 0", func(s *masking.Sample) { s.Sep = 0 }, "sep"},
		{"n_source of the row's length", func(s *masking.Sample) { s.NSource = int32(len(s.Input)) }, "n_source"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows := slices.Clone(base)
			rows[21] = c.on(base[21])
			dir := t.TempDir()
			writeBuild(t, dir, rows, 30, Options{BatchRows: 8})
			r := mustOpen(t, dir)
			if _, err := r.Row(20); err != nil {
				t.Fatalf("Row(20): %v", err)
			}
			_, err := r.Row(21)
			want := "record batch 2, row 5 (shard row 21, global row 21): "
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Row(21) = %v; want an error with %q and %q", err, want, c.want)
			}
			if err := widenAll(r); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("View and Widen = %v; want %q and %q", err, want, c.want)
			}
			if _, err := r.Check(context.Background()); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Check = %v", err)
			}
			// Unchecked, the row is served as it is.
			u := mustOpen(t, dir, Unchecked())
			if _, err := u.Row(21); err != nil {
				t.Errorf("unchecked Row(21): %v", err)
			}
		})
	}
	// An id outside the vocabulary (which the writer refuses to store) is
	// refused by the same check.
	r := mustOpen(t, func() string { d := t.TempDir(); writeBuild(t, d, base, 30, Options{}); return d }())
	v, _ := r.Row(3)
	if err := r.checkMax(loc{0, 0, 3}, 3, &v, uint32(r.vocab), 0, 0); err == nil || !strings.Contains(err.Error(), "outside the vocabulary") {
		t.Errorf("an id of the vocabulary's size: %v", err)
	}
	if err := r.checkMax(loc{0, 0, 3}, 3, &v, 1<<31, 0, 0); err == nil || !strings.Contains(err.Error(), "token id -2147483648") {
		t.Errorf("a negative id: %v", err)
	}
	// So is a row of more source tokens than seq_len (which the writer
	// refuses too): a reader of a build of a shorter seq_len.
	r.seqLen = v.NSource - 1
	if err := r.checkRow(loc{0, 0, 3}, 3, &v); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("n_source %d past seq_len %d", v.NSource, v.NSource-1)) {
		t.Errorf("n_source past seq_len: %v", err)
	}
}

// The writer refuses values the format cannot store, and keeps the rows
// before them.
func TestWriterRefusesWhatItCannotStore(t *testing.T) {
	rows := glmtest.Rows(t, 3)
	for _, c := range []rowDamage{
		{"id of the vocabulary's size", func(s *masking.Sample) { s.Input[1] = 30592 }, "outside the vocabulary"},
		{"negative target", func(s *masking.Sample) { s.Target[2] = -4 }, "outside the vocabulary"},
		{"position past 16 bits", func(s *masking.Sample) { s.Pos[3] = 70000 }, "16 bits"},
		{"loss mask of 2", func(s *masking.Sample) { s.LossMask[len(s.LossMask)-1] = 2 }, "loss mask"},
		{"column lengths", func(s *masking.Sample) { s.Pos = s.Pos[:len(s.Pos)-1] }, "positions"},
		{"more source tokens than seq_len", func(s *masking.Sample) { s.NSource = int32(testMeta().SeqLen) + 1 }, "more than seq_len"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := Create(dir, Options{Meta: testMeta()})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			bad := c.on(rows[1])
			if err := w.Write(&rows[0], 0); err != nil {
				t.Fatal(err)
			}
			if err := w.Write(&bad, 1); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Write = %v; want %q", err, c.want)
			}
			if err := w.Write(&rows[2], 2); err != nil {
				t.Fatal(err)
			}
			sf, err := w.Commit("shard-000000-0000.arrow")
			if err != nil {
				t.Fatal(err)
			}
			m := &Manifest{FormatVersion: FormatVersion, Meta: testMeta(), Config: []byte("{}"), Stats: []byte("{}"), Shards: []ShardFile{sf}}
			m.Sum()
			writeJSON(t, filepath.Join(dir, ManifestName), m)
			r := mustOpen(t, dir)
			if _, err := r.Verify(context.Background()); err != nil || r.Len() != 2 {
				t.Fatalf("the shard after a refused row: %d rows, %v", r.Len(), err)
			}
			for i, want := range []*masking.Sample{&rows[0], &rows[2]} {
				v, _ := r.Row(int64(i))
				if err := equalRow(v, want, uint64(2*i)); err != nil {
					t.Errorf("row %d: %v", i, err)
				}
			}
		})
	}
}

// Edited manifests are refused when they are read: unsealed edits by
// their checksum, resealed ones by the checks behind it, the shards'
// structure and checksums, or (a resealed sha256) by VerifyHashes.
func TestEditedManifestsAreRefused(t *testing.T) {
	dir := t.TempDir()
	m := writeBuild(t, dir, glmtest.Rows(t, 12), 5, Options{BatchRows: 2})
	for name, b := range editedManifests(t, m) {
		t.Run(name, func(t *testing.T) {
			d := t.TempDir()
			for _, s := range m.Shards {
				data, err := os.ReadFile(filepath.Join(dir, s.Name))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(d, s.Name), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(d, ManifestName), b, 0o644); err != nil {
				t.Fatal(err)
			}
			var opts []OpenOption
			if name == "sha256-resealed" {
				opts = append(opts, VerifyHashes())
			}
			r, err := Open(d, opts...)
			if err == nil {
				_, err = r.Check(context.Background())
				r.Close()
			}
			if err == nil {
				t.Fatalf("a manifest with %s was accepted", name)
			}
			if !strings.Contains(err.Error(), d) {
				t.Errorf("error does not name the build: %v", err)
			}
			if !strings.HasSuffix(name, "resealed") && !strings.Contains(err.Error(), "checksum") && name != "format" {
				t.Errorf("an unsealed edit not caught by the checksum: %v", err)
			}
		})
	}
}

// A manifest may not lead a reader out of its directory: a shard that is
// a symbolic link to a file elsewhere is refused, one to a file inside
// the directory is fine.
func TestShardLinks(t *testing.T) {
	dir := t.TempDir()
	m := writeBuild(t, dir, glmtest.Rows(t, 20), 10, Options{})
	p := filepath.Join(dir, m.Shards[1].Name)
	inside := filepath.Join(dir, "kept.arrow")
	if err := os.Rename(p, inside); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("kept.arrow", p); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, dir)
	outside := filepath.Join(t.TempDir(), "elsewhere.arrow")
	if err := os.Rename(inside, outside); err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	if err := os.Symlink(outside, p); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "outside the build directory") {
		t.Errorf("Open with a link out of the directory = %v", err)
	}
	// Not a regular file.
	os.Remove(p)
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), m.Shards[1].Name) {
		t.Errorf("Open with a directory for a shard = %v", err)
	}
}

// A named pipe in place of a shard or the manifest, or a manifest that is
// a link to a device, is refused at once: opening a pipe would wait for a
// writer for ever, and /dev/zero never ends.
func TestSpecialFilesRefused(t *testing.T) {
	within := func(what string, f func() error) error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- f() }()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: still waiting after 20 s", what)
			return nil
		}
	}
	dir := t.TempDir()
	m := writeBuild(t, dir, glmtest.Rows(t, 20), 10, Options{})
	shard := filepath.Join(dir, m.Shards[1].Name)
	os.Remove(shard)
	if err := glmtest.Mkfifo(shard); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	if err := within("a pipe for a shard", func() error { _, err := Open(dir); return err }); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Open with a pipe for a shard = %v", err)
	}
	man := filepath.Join(dir, ManifestName)
	os.Remove(man)
	if err := glmtest.Mkfifo(man); err != nil {
		t.Fatal(err)
	}
	if err := within("a pipe for the manifest", func() error { _, err := ReadManifest(dir); return err }); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("ReadManifest with a pipe = %v", err)
	}
	os.Remove(man)
	if err := os.Symlink("/dev/zero", man); err != nil {
		t.Fatal(err)
	}
	if err := within("a link to /dev/zero", func() error { _, err := ReadManifest(dir); return err }); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("ReadManifest with a link to /dev/zero = %v", err)
	}
}

// A format 1 build (the committed one, written by glmkit before format 2)
// reads, verifies and loads, its shards' sha256 checked on first touch, and
// mixes with a format 2 build of the same tokenizer.
func TestFormat1Build(t *testing.T) {
	v1dir := filepath.Join("..", "testdata", "v1-build")
	r := mustOpen(t, v1dir)
	if r.Meta().FormatVersion != 1 || r.Manifest().Checksum != "" {
		t.Fatalf("testdata/v1-build is format %d with checksum %q", r.Meta().FormatVersion, r.Manifest().Checksum)
	}
	if _, err := r.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := mustRow(t, r, 0).Input.Int32(); !ok {
		t.Error("format 1 ids are not int32")
	}
	// The same rows written as format 2 read back identically.
	v2dir := t.TempDir()
	meta := r.Meta()
	meta.FormatVersion = 2
	w, err := Create(v2dir, Options{Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	var s masking.Sample
	for i := range r.Len() {
		if err := r.Sample(i, &s); err != nil {
			t.Fatal(err)
		}
		if err := w.Write(&s, mustRow(t, r, i).DocID); err != nil {
			t.Fatal(err)
		}
	}
	sf, err := w.Commit("shard-000000-0000.arrow")
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	m2 := &Manifest{FormatVersion: 2, Meta: meta, Config: []byte("{}"), Stats: []byte("{}"), Shards: []ShardFile{sf}}
	m2.Sum()
	if err := WriteManifest(v2dir, m2); err != nil {
		t.Fatal(err)
	}
	r2 := mustOpen(t, v2dir)
	if _, err := r2.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	var s2 masking.Sample
	for i := range r.Len() {
		r.Sample(i, &s)
		r2.Sample(i, &s2)
		if err := equalSample(&s2, &s); err != nil {
			t.Fatalf("row %d differs between format 1 and 2: %v", i, err)
		}
	}
	if got, want := float64(m2.Totals.Bytes)/float64(m2.Totals.Tokens), float64(r.Manifest().Totals.Bytes)/float64(r.Manifest().Totals.Tokens); got > want/1.8 {
		t.Errorf("format 2: %.2f bytes per position; format 1 %.2f", got, want)
	}
	if err := widenAll(r); err != nil {
		t.Fatalf("format 1 through View and Widen: %v", err)
	}
	// A flipped byte in a format 1 shard is caught on first read.
	dir := t.TempDir()
	for _, f := range []string{ManifestName, "shard-000000-0000.arrow", "shard-000000-0001.arrow"} {
		data, err := os.ReadFile(filepath.Join(v1dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "shard-000000-0001.arrow" {
			data[len(data)/2] ^= 4
		}
		os.WriteFile(filepath.Join(dir, f), data, 0o644)
	}
	bad := mustOpen(t, dir)
	if _, err := bad.Row(bad.Len() - 1); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("Row of a damaged format 1 shard: %v", err)
	}
	if _, err := bad.Row(0); err != nil {
		t.Errorf("Row of the intact format 1 shard: %v", err)
	}
}

// widenAll reads every row of r as the loader does, View then Widen, and
// checks what Widen copied against the views; it returns the first error.
func widenAll(r *Reader) error {
	n := r.MaxRowLen()
	dst := masking.Columns[[]int32, []uint8]{Input: make([]int32, n), Target: make([]int32, n),
		LossMask: make([]uint8, n), Pos: make([]int32, n), BlockPos: make([]int32, n)}
	for i := range r.Len() {
		v, err := r.View(i)
		if err == nil {
			err = v.Widen(dst)
		}
		if err != nil {
			return err
		}
		L := v.Len()
		if !slices.Equal(dst.Input[:L], v.Input.AppendTo(nil)) || !slices.Equal(dst.Target[:L], v.Target.AppendTo(nil)) ||
			!slices.Equal(dst.LossMask[:L], v.LossMask.AppendTo(nil)) || !slices.Equal(dst.Pos[:L], v.Pos.AppendTo(nil)) ||
			!slices.Equal(dst.BlockPos[:L], v.BlockPos.AppendTo(nil)) {
			return fmt.Errorf("row %d: Widen copied other values than the view holds", i)
		}
	}
	return nil
}

func mustRow(t *testing.T, r *Reader, i int64) RowView {
	t.Helper()
	v, err := r.Row(i)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The manifest's checksum is that of its contents, whatever the
// indentation, and any edit of a field changes it.
func TestManifestChecksum(t *testing.T) {
	dir := t.TempDir()
	writeBuild(t, dir, glmtest.Rows(t, 10), 5, Options{})
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseManifest(b); err != nil {
		t.Fatal(err)
	}
	compact := strings.Join(strings.Fields(string(b)), "")
	if _, err := ParseManifest([]byte(compact)); err != nil {
		t.Errorf("the compacted manifest: %v", err)
	}
	for i, edit := range []string{`"rows": 5`, `"seq_len": 512`, `"loss_tokens": `} {
		j := strings.Index(string(b), edit)
		if j < 0 {
			t.Fatalf("no %q in the manifest", edit)
		}
		e := slices.Clone(b)
		if i == 2 { // the first digit of the number
			e[j+len(edit)] = '1' + (e[j+len(edit)]-'0'+1)%9
		} else {
			e[j+len(edit)-1]++
		}
		if _, err := ParseManifest(e); err == nil || !strings.Contains(err.Error(), "checksum") {
			t.Errorf("edit %d (%s): %v", i, edit, err)
		}
	}
	if !errors.Is(func() error { _, err := ReadManifest(t.TempDir()); return err }(), ErrNoManifest) {
		t.Error("ReadManifest of an empty directory is not ErrNoManifest")
	}
}

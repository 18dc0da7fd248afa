package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/glmkit/glmkit/internal/glmtest"
)

// Class 1 of issue 11: compressed input in every frame layout that zstd,
// pzstd, gzip and pigz write reads exactly; a damaged frame or member keeps
// the records before it, is counted with its offset, and nothing after it
// is read.

// testLines is n distinct lines of text.
func testLines(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "line %05d of the test text, with %x in it and some words.\n", i, i*2654435761)
	}
	return b.Bytes()
}

// fileInput describes path as a plan would.
func fileInput(t *testing.T, path string) Input {
	t.Helper()
	ins, err := resolveInputs([]string{path}, "text", "line", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := hashInputs(context.Background(), ins, 2, nil, nil); err != nil {
		t.Fatal(err)
	}
	return ins[0]
}

// readInput reads every record of a whole-file task of path and returns
// the texts of the good ones, the damage found and the first other error.
func readInput(t *testing.T, path string, open opener) ([]string, *Damage, string, error) {
	t.Helper()
	in := fileInput(t, path)
	task := Task{Start: 0, End: -1, Line: 1}
	r, err := openRecords(context.Background(), open, in, DefaultConfig(), task, ResumePoint{Line: 1}, t.TempDir(), nil, nil)
	if err != nil {
		return nil, nil, "", err
	}
	defer r.close()
	recs, texts, err := drain(r.next)
	var good []string
	for i, rec := range recs {
		if rec.reason == OK {
			good = append(good, texts[i])
		}
	}
	if err != nil {
		return good, nil, "", err
	}
	sum, err := r.finish()
	return good, r.damage(), sum, err
}

func lines(b []byte) []string { return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") }

// completeLines are the lines that end inside prefix.
func completeLines(prefix []byte) []string {
	i := bytes.LastIndexByte(prefix, '\n')
	if i < 0 {
		return nil
	}
	return lines(prefix[:i+1])
}

func zstdFrame(t *testing.T, data []byte, opts ...zstd.EOption) []byte {
	t.Helper()
	w, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return w.EncodeAll(data, nil)
}

func gzipMember(t *testing.T, data []byte, hdr gzip.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Header = hdr
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func skippable(payload []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0x184D2A53)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

// cli runs a compressor on data, skipping the test when it is missing.
func cli(t *testing.T, data []byte, name string, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed (.ci/run installs it)", name)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return out
}

func TestCompressedLayoutsReadExactly(t *testing.T) {
	text := testLines(3000)
	chunks := [][]byte{text[:70001], text[70001:150000], text[150000:]} // frames cut mid-line
	var frames, framesNoCheck, members []byte
	for _, c := range chunks {
		frames = append(frames, zstdFrame(t, c)...)
		framesNoCheck = append(framesNoCheck, zstdFrame(t, c, zstd.WithEncoderCRC(false))...)
		members = append(members, gzipMember(t, c, gzip.Header{})...)
	}
	big := testLines(60000) // over 4 MB: pzstd writes several frames
	cases := []struct {
		name string
		data []byte
		want []byte
	}{
		{"zstd cli", cli(t, text, "zstd", "-q", "-c"), text},
		{"zstd cli no checksum", cli(t, text, "zstd", "-q", "-c", "--no-check"), text},
		{"zstd cli level 19 long window", cli(t, text, "zstd", "-q", "-c", "-19", "--long=27"), text},
		{"pzstd", cli(t, big, "pzstd", "-q", "-c", "-1", "-p", "3"), big},
		{"zstd many frames", frames, text},
		{"zstd frames without checksums", framesNoCheck, text},
		{"zstd skippable frame first", append(skippable([]byte("pzstd says hello")), frames...), text},
		{"zstd skippable frames between and after", bytes.Join([][]byte{zstdFrame(t, chunks[0]), skippable(nil), zstdFrame(t, chunks[1]), skippable(bytes.Repeat([]byte{7}, 1000)), zstdFrame(t, chunks[2]), skippable([]byte("end"))}, nil), text},
		{"zstd empty frames", bytes.Join([][]byte{zstdFrame(t, nil), zstdFrame(t, chunks[0]), zstdFrame(t, nil), zstdFrame(t, chunks[1]), zstdFrame(t, chunks[2])}, nil), text},
		{"gzip cli", cli(t, text, "gzip", "-c"), text},
		{"gzip cli best", cli(t, text, "gzip", "-c", "-9"), text},
		{"pigz", cli(t, big, "pigz", "-c", "-p", "3"), big},
		{"pigz independent blocks", cli(t, big, "pigz", "-c", "-i", "-p", "3"), big},
		{"gzip many members", members, text},
		{"gzip name comment extra", bytes.Join([][]byte{gzipMember(t, chunks[0], gzip.Header{Name: "a.txt", Comment: "first"}), gzipMember(t, chunks[1], gzip.Header{Extra: []byte("xyz")}), gzipMember(t, chunks[2], gzip.Header{Name: "c"})}, nil), text},
		{"gzip empty members", bytes.Join([][]byte{gzipMember(t, nil, gzip.Header{}), members, gzipMember(t, nil, gzip.Header{})}, nil), text},
		{"gzip zero padding", append(append([]byte{}, members...), make([]byte, 512)...), text},
		{"bzip2 cli", cli(t, text, "bzip2", "-c"), text},
		{"bzip2 cli fastest (100k blocks: several)", cli(t, big, "bzip2", "-c", "-1"), big},
		{"bzip2 streams joined (cat a.bz2 b.bz2, as pbzip2 writes)", append(cli(t, chunks[0], "bzip2", "-c"), append(cli(t, chunks[1], "bzip2", "-c"), cli(t, chunks[2], "bzip2", "-c")...)...), text},
		{"bzip2 empty stream first", append(cli(t, nil, "bzip2", "-c"), cli(t, text, "bzip2", "-c")...), text},
		{"bzip2 zero padding", append(cli(t, text, "bzip2", "-c"), make([]byte, 512)...), text},
		{"bzip2 one zero byte after", append(cli(t, text, "bzip2", "-c"), 0), text},
		{"bzip2 streams joined, zero padded", append(append(cli(t, chunks[0], "bzip2", "-c"), cli(t, chunks[1], "bzip2", "-c")...), make([]byte, 3)...), text[:150000]},
	}
	dir := t.TempDir()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, dir, fmt.Sprintf("in%d.txt", i), tc.data)
			got, dmg, sum, err := readInput(t, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			if dmg != nil {
				t.Fatalf("damage reported in a valid file: %+v", *dmg)
			}
			want := lines(tc.want)
			if len(got) != len(want) || strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
			if sum != fileInput(t, p).SHA256 {
				t.Errorf("the hash of the bytes read differs from the file's")
			}
		})
	}
}

func TestCompressedDamage(t *testing.T) {
	text := testLines(3000)
	cuts := []int{0, 40001, 90000, 140003, len(text)}
	var zs, gz []byte
	var zOff, gOff []int // raw offset of each frame or member
	for k := range len(cuts) - 1 {
		zOff, gOff = append(zOff, len(zs)), append(gOff, len(gz))
		zs = append(zs, zstdFrame(t, text[cuts[k]:cuts[k+1]])...)
		gz = append(gz, gzipMember(t, text[cuts[k]:cuts[k+1]], gzip.Header{})...)
	}
	type tc = damageCase
	cases := []tc{
		{"zstd block data flipped in frame 2", flip(zs, zOff[2]+(zOff[3]-zOff[2])/2), 2, zOff[2]},
		{"zstd checksum flipped in frame 1", flip(zs, zOff[2]-2), 1, zOff[1]},
		{"zstd frame 0 corrupt", flip(zs, zOff[0]+40), 0, 0},
		{"zstd cut inside frame 3", zs[:zOff[3]+(len(zs)-zOff[3])/2], 3, zOff[3]},
		{"zstd cut inside frame 2's header", zs[:zOff[2]+3], 2, zOff[2]},
		{"zstd garbage after the last frame", append(bytes.Clone(zs), "not zstd at all"...), 4, len(zs)},
		{"zstd skippable frame cut", append(bytes.Clone(zs[:zOff[2]]), skippable(make([]byte, 100))[:50]...), 2, zOff[2]},
		{"gzip deflate data flipped in member 2", flip(gz, gOff[2]+(gOff[3]-gOff[2])/2), 2, gOff[2]},
		{"gzip crc flipped in member 1", flip(gz, gOff[2]-6), 1, gOff[1]},
		{"gzip length flipped in member 3", flip(gz, len(gz)-2), 3, gOff[3]},
		{"gzip header flipped in member 2", flip(gz, gOff[2]+2), 2, gOff[2]},
		{"gzip cut inside member 3", gz[:gOff[3]+(len(gz)-gOff[3])/3], 3, gOff[3]},
		{"gzip cut inside member 0", gz[:gOff[1]/2], 0, 0},
		{"gzip garbage after the last member", append(bytes.Clone(gz), "trailing text"...), 4, len(gz)},
	}
	if _, err := exec.LookPath("zstd"); err == nil {
		// One frame, as zstd writes it: damage loses the frame, and
		// everything is in it.
		one := cli(t, text, "zstd", "-q", "-c")
		cases = append(cases, tc{"zstd cli single frame cut", one[:len(one)*3/4], 0, 0})
	}
	if _, err := exec.LookPath("bzip2"); err == nil {
		cases = append(cases, bzip2DamageCases(t, text, cuts[2])...)
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, dir, fmt.Sprintf("bad%d.txt", i), c.data)
			got, dmg, _, err := readInput(t, p, nil)
			if err != nil {
				t.Fatalf("damage is bad data, not an error: %v", err)
			}
			if dmg == nil {
				t.Fatalf("no damage reported")
			}
			if dmg.Offset != int64(c.offset) || !strings.Contains(dmg.Detail, fmt.Sprint(c.offset)) {
				t.Errorf("damage at byte %d (%s), want byte %d", dmg.Offset, dmg.Detail, c.offset)
			}
			want := completeLines(text[:cuts[c.frame]])
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("kept %d records, want exactly the %d of the frames before the damaged one", len(got), len(want))
			}
		})
	}
}

// damageCase is a damaged compressed input of TestCompressedDamage.
type damageCase struct {
	name   string
	data   []byte
	frame  int // the damaged frame: everything in the frames before it is kept
	offset int // its raw offset, as reported
}

// flip is b with the byte at at changed.
func flip(b []byte, at int) []byte {
	c := bytes.Clone(b)
	c[at] ^= 0x55
	return c
}

// bzip2DamageCases are TestCompressedDamage's bzip2 inputs: text in two
// streams, the second from byte cut of the text (frame 2 of the test's
// cuts), and in one. A bzip2 input is one frame while it decodes whole;
// damage keeps the whole streams before it, and a damaged single stream
// keeps nothing.
func bzip2DamageCases(t *testing.T, text []byte, cut int) []damageCase {
	type tc = damageCase
	bz1 := cli(t, text[:cut], "bzip2", "-c")
	bz := append(bytes.Clone(bz1), cli(t, text[cut:], "bzip2", "-c")...)
	one := cli(t, text, "bzip2", "-c")
	if len(bz)*3/4 <= len(bz1) {
		t.Fatalf("the second stream starts at byte %d of %d: the cuts below miss it", len(bz1), len(bz))
	}
	return []tc{
		{"bzip2 cut in the second stream", bz[:len(bz)*3/4], 2, len(bz1)},
		{"bzip2 second stream cut in its header", bz[:len(bz1)+3], 2, len(bz1)},
		{"bzip2 block data flipped in the second stream", flip(bz, len(bz)*3/4), 2, len(bz1)},
		{"bzip2 stream crc flipped in the second stream", flip(bz, len(bz)-3), 2, len(bz1)},
		{"bzip2 block data flipped in the first stream", flip(bz, len(bz1)/2), 0, 0},
		{"bzip2 first stream's crc flipped", flip(bz, len(bz1)-3), 0, 0},
		{"bzip2 single stream cut", one[:len(one)*3/4], 0, 0},
		{"bzip2 single stream cut in its crc", one[:len(one)-2], 0, 0},
		{"bzip2 garbage after the last stream", append(bytes.Clone(bz), "trailing text"...), 4, len(bz)},
		{"bzip2 one byte after the last stream", append(bytes.Clone(bz), '\n'), 4, len(bz)},
		{"bzip2 zeros then garbage after the last stream", append(bytes.Clone(bz), "\x00\x00\x00junk"...), 4, len(bz)},
		{"bzip2 garbage after a single stream", append(bytes.Clone(one), 'X'), 4, len(one)},
	}
}

// A .bz2 with bytes after its last complete stream (50 lines, then "X"):
// the streams' records are kept, and the bytes after them are damage at
// their offset, said to be trailing data (not a truncated file), counted
// as a truncated record and a damaged input; zero padding there is
// ignored without a word, as gzip's is. Workers 1 and 4 write the same
// bytes, and a read resumed part way through keeps the same records and
// reports the same damage.
func TestBzip2TrailingData(t *testing.T) {
	var text bytes.Buffer
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(&text, "line number %d\n", i)
	}
	bz := cli(t, text.Bytes(), "bzip2", "-c")
	want := lines(text.Bytes())
	dir := t.TempDir()
	other := writeFile(t, dir, "other.txt", testLines(200))
	for _, c := range []struct {
		name, tail string
		damaged    bool
	}{
		{"one byte", "X", true},
		{"text", "trailing text\n", true},
		{"zero padding", "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := writeFile(t, dir, strings.ReplaceAll(c.name, " ", "-")+".txt.bz2", append(bytes.Clone(bz), c.tail...))
			var ref map[string][]byte
			for _, workers := range []int{1, 4} {
				o := options(t, "gpt2", t.TempDir(), in, other)
				o.Workers = workers
				res, warnings := buildWarned(t, o)
				d := res.Stats.Doc
				if d.Documents != 250 {
					t.Fatalf("%d documents, want the 50 of the stream and the 200 of the other input", d.Documents)
				}
				said := strings.Join(warnings, "\n")
				if !c.damaged {
					if d.TruncatedIn != 0 || d.Reasons[Truncated] != 0 || len(res.Stats.Damage) != 0 || strings.Contains(said, in) {
						t.Fatalf("zero padding is damage: truncated inputs %d, damage %+v, warnings %q", d.TruncatedIn, res.Stats.Damage, warnings)
					}
				} else {
					if d.TruncatedIn != 1 || d.Reasons[Truncated] != 1 || len(res.Stats.Damage) != 1 {
						t.Fatalf("truncated inputs %d, truncated %d, damage %+v; want one of each", d.TruncatedIn, d.Reasons[Truncated], res.Stats.Damage)
					}
					dm := res.Stats.Damage[0]
					at := fmt.Sprintf("trailing data after the last bzip2 stream, at byte %d", len(bz))
					if dm.Input != in || dm.Offset != int64(len(bz)) || dm.Line != 51 || dm.Detail != at {
						t.Errorf("damage %+v; want %q at byte %d, line 51", dm, at, len(bz))
					}
					if !strings.Contains(said, in+":51: truncated: "+at+"; the records before it are kept") || strings.Contains(said, "the file is truncated") || strings.Contains(said, "nothing of the input is kept") {
						t.Errorf("warnings %q", warnings)
					}
				}
				files := dirBytes(t, o.Out)
				if ref == nil {
					ref = files
					continue
				}
				glmtest.SameFiles(t, "workers 1 vs 4", ref, files)
			}
			checkBzip2Resumed(t, in, text.Bytes(), want, c.damaged, int64(len(bz)))
		})
	}
}

// checkBzip2Resumed reads input in (text, of lines want) resumed at line
// 21: the rest of its records, then the same damage at byte at, if it is
// damaged.
func checkBzip2Resumed(t *testing.T, in string, text []byte, want []string, damaged bool, at int64) {
	t.Helper()
	rp := ResumePoint{Record: 20, Line: 21, Offset: int64(bytes.Index(text, []byte("line number 21\n")))}
	r, err := openRecords(context.Background(), nil, fileInput(t, in), DefaultConfig(), Task{Start: 0, End: -1, Line: 1}, rp, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	recs, texts, err := drain(r.next)
	if err != nil {
		t.Fatal(err)
	}
	var good []string
	for i, rec := range recs {
		if rec.reason == OK {
			good = append(good, texts[i])
		}
	}
	if strings.Join(good, "\n") != strings.Join(want[20:], "\n") {
		t.Errorf("resumed at line 21: %d records, want %d", len(good), len(want[20:]))
	}
	if _, err := r.finish(); err != nil {
		t.Fatal(err)
	}
	if dmg := r.damage(); damaged != (dmg != nil) || dmg != nil && dmg.Offset != at {
		t.Errorf("resumed: damage %+v", dmg)
	}
}

// Many bzip2 streams (as pbzip2 writes), together longer than the 64 KiB
// that bzip2Ends reads at a time: it finds every stream's end, latest
// first; a damaged stream among them keeps exactly the streams before it.
func TestBzip2StreamEnds(t *testing.T) {
	var b bytes.Buffer // hex digits that compress to about half
	for x, i := uint64(1), 0; b.Len() < 420000; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		fmt.Fprintf(&b, "%05d %016x %016x\n", i, x, x*0x9e3779b97f4a7c15)
	}
	text := b.Bytes()
	var bz []byte
	var ends []int64 // of each stream
	var cuts []int   // text offset of each stream's end
	for k := 0; k < len(text); k += 70000 {
		bz = append(bz, cli(t, text[k:min(k+70000, len(text))], "bzip2", "-c", "-1")...)
		ends = append(ends, int64(len(bz)))
		cuts = append(cuts, min(k+70000, len(text)))
	}
	if len(ends) < 4 || ends[len(ends)-1] < 3<<16 {
		t.Fatalf("%d streams in %d bytes: too few to test with", len(ends), len(bz))
	}
	fr := &frameReader{path: "streams.bz2", at: &readerAt{ctx: context.Background(), path: "streams.bz2", r: bytes.NewReader(bz)}}
	got, err := fr.bzip2Ends(0, int64(len(bz)), 100)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(ends)
	slices.Reverse(want)
	if !slices.Equal(got, want) {
		t.Errorf("stream ends %v, want %v", got, want)
	}
	if got, _ := fr.bzip2Ends(0, ends[2]-1, 100); !slices.Equal(got, []int64{ends[1], ends[0]}) {
		t.Errorf("stream ends before byte %d: %v, want %v", ends[2]-1, got, []int64{ends[1], ends[0]})
	}
	// The third stream's block data flipped: the first two are kept.
	bad := bytes.Clone(bz)
	bad[(ends[1]+ends[2])/2] ^= 0x55
	p := writeFile(t, t.TempDir(), "streams.txt.bz2", bad)
	good, dmg, _, err := readInput(t, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if dmg == nil || dmg.Offset != ends[1] || !strings.HasPrefix(dmg.Detail, fmt.Sprintf("bzip2 stream at byte %d is corrupt", ends[1])) {
		t.Errorf("damage %+v; want the stream at byte %d corrupt", dmg, ends[1])
	}
	if want := completeLines(text[:cuts[1]]); strings.Join(good, "\n") != strings.Join(want, "\n") {
		t.Errorf("kept %d records, want the %d of the first two streams", len(good), len(want))
	}
}

// bzip2Ends finds a stream end whatever its padding (0 to 7 bits), at the edges of
// the blocks it reads backwards (an end whose 11 bytes straddle two), and
// no nearer start than the smallest stream.
func TestBzip2EndsAtEdges(t *testing.T) {
	const n = 140000
	lo1 := int64(n - 1<<16) // the first block read: [lo1, n)
	lo2 := lo1 + 10 - 1<<16 // the second
	for _, start := range []int64{0, 100} {
		for _, end := range []int64{start + 13, start + 14, start + 15, lo2 + 10, lo2 + 11, lo1 + 1, lo1 + 10, lo1 + 11, n - 1, n} {
			for _, pad := range []int{0, 1, 6, 7} {
				b := make([]byte, n)
				// The magic and a CRC, ending pad bits before end.
				bits := [2]uint64{bzip2EOS, 0xdeadbeef}
				widths := [2]int{48, 32}
				at := int(end)*8 - pad - 80
				for k, v := range bits {
					for i := widths[k] - 1; i >= 0; i-- {
						if v>>i&1 == 1 {
							b[at/8] |= 0x80 >> (at % 8)
						}
						at++
					}
				}
				fr := &frameReader{path: "edges.bz2", at: &readerAt{ctx: context.Background(), path: "edges.bz2", r: bytes.NewReader(b)}}
				got, err := fr.bzip2Ends(start, n, 4)
				if err != nil {
					t.Fatal(err)
				}
				want := []int64{end}
				if end < start+14 {
					want = nil
				}
				if !slices.Equal(got, want) {
					t.Errorf("start %d, a stream end at byte %d with %d bits of padding: found %v", start, end, pad, got)
				}
			}
		}
	}
}

// A damaged input in a build: the records before the damaged frame are
// written, the damage is counted and located in the stats, and --strict
// makes it fatal.
func TestBuildCountsDamage(t *testing.T) {
	text := testLines(2000)
	half := bytes.Index(text, []byte("line 01000"))
	zs := append(zstdFrame(t, text[:half]), zstdFrame(t, text[half:])...)
	zs[len(zs)-10] ^= 0xff
	in := writeFile(t, t.TempDir(), "damaged.txt.zst", zs)
	o := options(t, "gpt2", t.TempDir(), in)
	res, warnings := buildWarned(t, o)
	d := res.Stats.Doc
	if d.Documents != 1000 || d.TruncatedIn != 1 || d.Reasons[Truncated] != 1 || len(res.Stats.Damage) != 1 {
		t.Fatalf("documents %d (want 1000), truncated inputs %d, truncated %d, damage %+v", d.Documents, d.TruncatedIn, d.Reasons[Truncated], res.Stats.Damage)
	}
	if dm := res.Stats.Damage[0]; dm.Input != in || dm.Offset == 0 || dm.Line != 1001 {
		t.Errorf("damage note %+v", dm)
	}
	var stats map[string]any
	b, _ := os.ReadFile(filepath.Join(o.Out, "manifest.json"))
	if !bytes.Contains(b, []byte(`"damaged"`)) {
		t.Errorf("the manifest's stats do not locate the damage")
	}
	_ = stats
	if len(warnings) == 0 || !strings.Contains(strings.Join(warnings, "\n"), "damaged.txt.zst") {
		t.Errorf("warnings %q", warnings)
	}
	o.Out, o.Strict, o.Warn = t.TempDir(), true, nil
	if _, err := Build(context.Background(), o); err == nil || !strings.Contains(err.Error(), "damaged.txt.zst:") {
		t.Errorf("strict: %v", err)
	}
}

// The warning of a damaged first frame or member says that nothing of the
// input is kept, and how to get at the rest by hand; a later one says
// that what came before it is kept.
func TestDamageNote(t *testing.T) {
	for _, c := range []struct {
		d           Damage
		compression string
		want        string
	}{
		{Damage{Offset: 0, Detail: "zstd frame at byte 0 is cut short"}, "zstd", "nothing of the input is kept: a frame's records are used only once its checksum vouches for them (zstd -dc writes out what is left, unchecked)"},
		{Damage{Offset: 0, Detail: "gzip member at byte 0 is corrupt"}, "gzip", "(gzip -dc writes out"},
		{Damage{Offset: 4096, Detail: "gzip member at byte 4096 is cut short"}, "gzip", "; the records before it are kept, nothing after it is read"},
		{Damage{Offset: 0, Detail: "invalid JSON at byte 0"}, "none", "; the records before it are kept"},
	} {
		if got := damageNote(&c.d, c.compression); !strings.HasPrefix(got, c.d.Detail) || !strings.Contains(got, c.want) {
			t.Errorf("damageNote(%+v, %s) = %q; want it to contain %q", c.d, c.compression, got, c.want)
		}
	}
}

// A zstd frame made with a dictionary, or with a window over what glmkit
// decodes, is an error naming the file and what it needs; the same header
// fields in a frame whose blocks are not whole (random bytes after a magic
// number) are damage, skipped and counted.
func TestZstdDictionaryAndWindow(t *testing.T) {
	dir := t.TempDir()
	var samples []string
	for i := range 200 {
		samples = append(samples, writeFile(t, dir, fmt.Sprintf("s%03d.txt", i), testLines(20 + i%7)[i*3:]))
	}
	dict := filepath.Join(dir, "dict")
	cli(t, nil, "zstd", append([]string{"-q", "--train", "--maxdict=4096", "-o", dict}, samples...)...)
	text := testLines(300)
	// A header with the window descriptor 0xa8 (2^31 bytes): zstd --long=31
	// writes one; klauspost's encoder refuses to, so it is set here.
	long := zstdFrame(t, text, zstd.WithSingleSegment(false))
	if long[4]&0x20 != 0 {
		t.Fatal("the frame is single-segment: it has no window descriptor")
	}
	long[5] = 0xa8
	garbage := append([]byte{0x28, 0xb5, 0x2f, 0xfd}, bytes.Repeat([]byte{0x03, 0x91, 0x49, 0x00, 0xff}, 400)...)
	for _, c := range []struct {
		name, want string
		data       []byte
	}{
		{"dictionary", "needs zstd dictionary", cli(t, text, "zstd", "-q", "-c", "-D", dict)},
		{"window", "needs a 2048 MiB window", long},
		{"damaged header", "", garbage},
	} {
		p := writeFile(t, dir, c.name+".txt.zst", c.data)
		good, dmg, _, err := readInput(t, p, nil)
		switch {
		case c.want != "":
			var ue *unsupportedError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("%s: %v; want an error naming %s and saying %q", c.name, err, p, c.want)
			}
		case err != nil || dmg == nil || len(good) != 0:
			t.Errorf("%s: %d records kept, damage %+v, %v; want the frame counted as damage", c.name, len(good), dmg, err)
		}
	}
}

// The compression is told by magic bytes; text that happens to start with
// "BZh" is text, and xz and lz4 are refused by name.
func TestSniff(t *testing.T) {
	for _, c := range []struct {
		head, want string
	}{
		{"\x1f\x8b\x08\x00", "gzip"},
		{"\x28\xb5\x2f\xfd\x00", "zstd"},
		{"\x50\x2a\x4d\x18\x04\x00\x00\x00", "zstd"},
		{"BZh91AY&SY\x00\x01", "bzip2"},
		{"BZh9\x17\x72\x45\x38\x50\x90\x00\x00\x00\x00", "bzip2"}, // an empty stream
		{"BZh9 is the name of a tune\n", "none"},
		{"BZh", "none"},
		{"plain text\n", "none"},
		{"\xfd7zXZ\x00\x00", "error: xz"},
		{"\x04\x22\x4d\x18", "error: lz4"},
	} {
		got, err := sniff([]byte(c.head))
		if err != nil {
			got = "error: " + strings.Fields(err.Error())[0]
		}
		if got != c.want {
			t.Errorf("sniff(%q) = %q; want %q", c.head, got, c.want)
		}
	}
}

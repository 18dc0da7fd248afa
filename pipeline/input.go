package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/glmkit/glmkit/pipeline/parquettext"
)

// Input is one input file of a build, as its plan records it.
type Input struct {
	Path        string `json:"path"`        // as given (or found under a given directory); "-" is stdin
	Size        int64  `json:"size"`        // bytes on disk; -1 for stdin
	ModTime     int64  `json:"mtime_ns"`    // modification time (Unix ns) when planned; 0 for stdin
	SHA256      string `json:"sha256"`      // of the bytes on disk; for stdin, filled in once read
	Format      string `json:"format"`      // "text", "jsonl" or "parquet"
	Compression string `json:"compression"` // "none", "gzip", "zstd" or "bzip2", from the magic bytes
}

// Stdin is the input path that reads standard input.
const Stdin = "-"

// inputExts are the names taken from a directory (after a .gz/.zst suffix).
var inputExts = []string{".txt", ".text", ".raw", ".jsonl", ".json", ".ndjson", ".parquet"}

// compressedExts are the endings of a compressed input, after its own.
var compressedExts = []string{".gz", ".zst", ".zstd", ".bz2"}

// uncompressedName is name in lower case without its compressedExts
// ending: "a.JSONL.gz" is "a.jsonl".
func uncompressedName(name string) string {
	name = strings.ToLower(name)
	for _, c := range compressedExts {
		name = strings.TrimSuffix(name, c)
	}
	return name
}

func isJSONName(name string) bool {
	name = uncompressedName(name)
	return strings.HasSuffix(name, ".jsonl") || strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".ndjson")
}

func isInputName(name string) bool {
	lower := uncompressedName(name)
	for _, e := range inputExts {
		if strings.HasSuffix(lower, e) {
			return true
		}
	}
	return false
}

// resolveInputs expands the --input values into a sorted list of files:
// "-" is stdin, a value with * ? or [ is a glob, a directory is searched
// recursively for text, JSON Lines and Parquet files (text and JSON Lines
// optionally .gz, .zst or .bz2; hidden entries skipped; symbolic links followed,
// each one that leads nowhere or back into a directory already searched
// reported through warn and skipped), anything else must be a file. A file
// reached twice (by two names) is read once. format is "auto" (Parquet for
// .parquet names or PAR1 magic, JSON Lines for .jsonl/.json/.ndjson names,
// plain text otherwise), "text", "jsonl" or "parquet". Sizes, modification
// times and compression are filled in; hashes are not (see Hash). An
// input that looks like text in a legacy encoding is reported through warn
// too (nil: not reported). docBoundary is --doc-boundary: an input read
// by lines (JSON Lines, text unless "file") whose lines end in CR alone is
// an error.
func resolveInputs(specs []string, format, docBoundary string, warn func(string)) ([]Input, error) {
	if warn == nil {
		warn = func(string) {}
	}
	switch format {
	case "", "auto", "text", "jsonl", "json", "parquet":
	default:
		return nil, fmt.Errorf("pipeline: unknown --format %q (want auto, text, jsonl, json or parquet)", format)
	}
	if len(specs) == 0 {
		return nil, errors.New("pipeline: no --input given")
	}
	paths, err := expandInputs(specs, warn)
	if err != nil {
		return nil, err
	}
	inputs := make([]Input, 0, len(paths))
	var seen []os.FileInfo // each input's, nil for stdin
	notes := 0             // inputs that look like a legacy encoding
	for _, p := range paths {
		in := Input{Path: p, Size: -1, Format: format, Compression: "none"}
		if in.Format == "" || in.Format == "auto" {
			in.Format = "text"
			if isJSONName(p) {
				in.Format = "jsonl"
			}
		}
		var st os.FileInfo
		if p != Stdin {
			var head []byte
			if st, head, err = statInput(p); err != nil {
				return nil, err
			}
			if i := slices.IndexFunc(seen, func(o os.FileInfo) bool { return os.SameFile(o, st) }); i >= 0 {
				warn(fmt.Sprintf("%s is the same file as %s; reading it once", p, inputs[i].Path))
				continue
			}
			note, err := in.describe(st, head, format, docBoundary)
			if err != nil {
				return nil, err
			}
			if note != "" {
				if notes++; notes <= maxEncodingNotes {
					warn(note)
				}
			}
		}
		seen = append(seen, st)
		inputs = append(inputs, in)
	}
	if notes > maxEncodingNotes {
		warn(fmt.Sprintf("%d more inputs do not look like UTF-8 either (%d in all)", notes-maxEncodingNotes, notes))
	}
	if n, size := bzip2Inputs(inputs); n > 0 {
		warn(fmt.Sprintf("%d bzip2 input%s (%.1f MB): Go's bzip2 decoder reads about 6 MB/s, and each input is decoded twice (checked, then read), so they build at about 3 MB/s; recompressed with zstd (bzip2 -dc IN.bz2 | zstd -o IN.zst) they build at full speed", n, plural(n), float64(size)/1e6))
	}
	return inputs, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// bzip2Inputs counts the bzip2 files among inputs, and their bytes.
func bzip2Inputs(inputs []Input) (n int, size int64) {
	for _, in := range inputs {
		if in.Compression == "bzip2" {
			n, size = n+1, size+in.Size
		}
	}
	return n, size
}

// maxEncodingNotes is how many inputs' encoding warnings are said one by
// one; the rest are counted in one line.
const maxEncodingNotes = 5

// expandInputs expands the --input values into a sorted list of paths
// without repeats (each repeat reported through warn): stdin, the files a
// glob matches, a file, the input files under a directory.
func expandInputs(specs []string, warn func(string)) ([]string, error) {
	var paths []string
	for _, spec := range specs {
		switch {
		case spec == Stdin:
			paths = append(paths, Stdin)
		case strings.ContainsAny(spec, "*?["):
			m, err := filepath.Glob(spec)
			if err != nil {
				return nil, fmt.Errorf("pipeline: bad glob %q: %w", spec, err)
			}
			var files []string
			for _, p := range m {
				switch st, err := os.Stat(p); {
				case err == nil && st.Mode().IsRegular():
					files = append(files, p)
				case err == nil && !st.IsDir():
					warn(fmt.Sprintf("skipping %s (matched by %s): it is %s, not a regular file", p, spec, fileKind(st.Mode())))
				}
			}
			if len(files) == 0 {
				return nil, fmt.Errorf("pipeline: no files match %q", spec)
			}
			paths = append(paths, files...)
		default:
			st, err := os.Stat(spec)
			if err != nil {
				return nil, fmt.Errorf("pipeline: input %w", err)
			}
			if !st.IsDir() {
				paths = append(paths, spec)
				continue
			}
			n := len(paths)
			if paths, err = walkInputs(spec, st, paths, warn); err != nil {
				return nil, err
			}
			if len(paths) == n {
				return nil, fmt.Errorf("pipeline: no input files in directory %s (looked for %s, optionally .gz, .zst or .bz2)", spec, strings.Join(inputExts, " "))
			}
		}
	}
	slices.Sort(paths)
	for i := 1; i < len(paths); i++ {
		if paths[i] == paths[i-1] && (i == 1 || paths[i-2] != paths[i]) {
			name := paths[i]
			if name == Stdin {
				name = "standard input (-)"
			}
			warn(fmt.Sprintf("%s is given more than once (by --input values, globs or directories); reading it once", name))
		}
	}
	return slices.Compact(paths), nil
}

// statInput opens an input file, which must be a regular file, and
// returns its FileInfo and its first bytes (up to headBytes). It looks
// before it opens: opening a named pipe that nothing writes to would wait
// for ever.
func statInput(p string) (os.FileInfo, []byte, error) {
	if st, err := os.Stat(p); err != nil {
		return nil, nil, fmt.Errorf("pipeline: input %w", err)
	} else if !st.Mode().IsRegular() {
		return nil, nil, notRegular(p, st.Mode())
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: input %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: input %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, nil, notRegular(p, st.Mode())
	}
	head := make([]byte, headBytes)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, nil, fmt.Errorf("pipeline: reading %s: %w", p, err)
	}
	return st, head[:n], nil
}

// headBytes is how much of an input's start its description looks at: its
// magic bytes, and whether it is UTF-8 text at all (wideText).
const headBytes = 4096

// describe fills in an input file's size, modification time, compression
// (from its magic bytes) and, for --format auto, whether it is Parquet; an
// input whose (decompressed) start is UTF-16 or UTF-32 is an error, as is
// one read by lines whose lines end in CR alone (see crLines), and one
// whose start looks like an 8-bit or other legacy encoding gets a note to
// warn with.
func (in *Input) describe(st os.FileInfo, magic []byte, format, docBoundary string) (note string, err error) {
	in.Size = st.Size()
	in.ModTime = st.ModTime().UnixNano()
	if in.Compression, err = sniff(magic); err != nil {
		return "", fmt.Errorf("pipeline: %s: %w", in.Path, err)
	}
	if (format == "" || format == "auto") && (strings.HasSuffix(strings.ToLower(in.Path), ".parquet") || bytes.HasPrefix(magic, []byte(parquettext.Magic))) {
		in.Format = "parquet"
	}
	if in.Format == "parquet" && in.Compression != "none" {
		return "", compressedParquet(in.Path, in.Compression)
	}
	if in.Format == "parquet" {
		return "", nil
	}
	if in.Compression != "none" {
		// A look at the decompressed start. A stream too damaged to start
		// is left to the build, which counts its damage.
		br, closeHead, err := peekInput(*in)
		if err != nil {
			return "", nil
		}
		magic, _ = br.Peek(headBytes)
		defer closeHead()
		if err := compressedTwice(in.Path, in.Compression, magic); err != nil {
			return "", err
		}
	}
	if err := notUTF8(in.Path, magic); err != nil {
		return "", err
	}
	if err := crLines(in.Path, in.Format, docBoundary, magic); err != nil {
		return "", err
	}
	return legacyNote(in.Path, magic), nil
}

// crLines is the error of an input read by lines (JSON Lines; text, unless
// docBoundary is "file") whose start ends its lines in CR alone, as classic
// Mac OS wrote them: two CRs or more that no LF follows, and no LF. Records
// are cut at LF (a CR before it is dropped), so all of such a file would be
// one record; Python's universal newlines would split it. nil for any
// other input.
func crLines(path, format, docBoundary string, head []byte) error {
	if format != "jsonl" && (format != "text" || docBoundary == "file") {
		return nil
	}
	head = head[:min(len(head), headBytes)]
	if bytes.IndexByte(head, '\n') >= 0 {
		return nil
	}
	crs := bytes.Count(head, []byte{'\r'})
	if len(head) == headBytes && head[len(head)-1] == '\r' {
		crs-- // an LF may follow it past the look
	}
	if crs < 2 {
		return nil
	}
	return fmt.Errorf("pipeline: %s ends its lines with CR alone (classic Mac OS line ends: %d CRs and no LF in its first %d bytes): records are cut at LF, so all of it would be one record; convert it first (tr '\\r' '\\n' < IN > OUT)", inputName(path), crs, len(head))
}

// compressedParquet is the error of a Parquet file (by its name, or by what
// it decompresses to) compressed as a whole.
func compressedParquet(path, compression string) error {
	return fmt.Errorf("pipeline: %s is a Parquet file compressed with %s; Parquet compresses its pages itself, so decompress the file", path, compression)
}

// compressedTwice is the error of a compressed input whose decompressed
// start is compressed again (a .gz inside a .zst) or is a Parquet file:
// read as text, every token of it would be noise.
func compressedTwice(path, outer string, head []byte) error {
	if bytes.HasPrefix(head, []byte(parquettext.Magic)) {
		return compressedParquet(path, outer)
	}
	inner, err := sniff(head)
	switch {
	case err != nil:
		return fmt.Errorf("pipeline: %s: %s data inside: %w", path, outer, err)
	case inner != "none":
		return fmt.Errorf("pipeline: %s is compressed twice (%s data inside %s): decompress it once first (e.g. %s -dc IN | %s -dc > OUT)", path, inner, outer, outer, inner)
	}
	return nil
}

// legacyNote is the warning for an input whose start looks like text in a
// legacy encoding (see eightBitText), "" for any other.
func legacyNote(path string, head []byte) string {
	if !eightBitText(head) {
		return ""
	}
	return fmt.Sprintf("%s does not look like UTF-8: its start has more bytes that are not UTF-8 than characters beyond ASCII that are, as Latin-1, Windows-1252, Shift-JIS or GBK text has; each such record is repaired, its other characters turned to U+FFFD, and counted as invalid_utf8 (convert it first, e.g. iconv -f WINDOWS-1252 -t UTF-8, or pass --strict to stop at the first)", inputName(path))
}

// inputName is how an input is named in a message: its path, or "standard
// input".
func inputName(path string) string {
	if path == Stdin {
		return "standard input"
	}
	return path
}

// notUTF8 is the error of an input whose decompressed head is UTF-16 or
// UTF-32 text (see wideText), nil for any other.
func notUTF8(path string, head []byte) error {
	enc, from := wideText(head)
	if enc == "" {
		return nil
	}
	return fmt.Errorf("pipeline: %s is %s, not UTF-8: read as UTF-8, every token of it would be wrong; convert it first (iconv -f %s -t UTF-8)", inputName(path), enc, from)
}

// eightBitText reports whether head looks like text in an 8-bit or other
// legacy encoding (Latin-1, Windows-1252, Shift-JIS, GBK) rather than
// UTF-8: a few bytes that are not UTF-8 (4 or more), and fewer multi-byte
// UTF-8 characters than such bytes (legacy double-byte text makes some by
// chance: Shift-JIS and GBK about one for every three bad bytes). Damaged
// UTF-8 has many more good characters than bad bytes; a start that is all
// ASCII says nothing.
func eightBitText(head []byte) bool {
	if len(head) >= headBytes {
		head = head[:len(head)-utf8.UTFMax] // a character the cut split is not bad
	}
	bad, good := 0, 0
	for i := 0; i < len(head); {
		if head[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(head[i:])
		if r == utf8.RuneError && size == 1 {
			bad++
		} else {
			good++
		}
		i += size
	}
	return bad >= 4 && bad > good
}

// wideText tells UTF-16 and UTF-32 text from UTF-8 by its first bytes: a
// byte order mark, or, without one, the zero bytes that UTF-16 puts beside
// ASCII characters (a quarter of the bytes or more, nearly all on one side
// of the byte pairs; or, in other scripts, line ends of UTF-16 and most
// zero bytes on their side) or UTF-32 and binary data hold (half the bytes
// or more). UTF-8 text has no zero bytes but damage. It returns the encoding
// found, in words and as iconv names it, or "" for UTF-8 (or too little to
// tell).
func wideText(head []byte) (desc, iconv string) {
	switch {
	case bytes.HasPrefix(head, []byte{0, 0, 0xfe, 0xff}):
		return "UTF-32 BE text (byte order mark 00 00 FE FF)", "UTF-32"
	case bytes.HasPrefix(head, []byte{0xff, 0xfe, 0, 0}):
		return "UTF-32 LE text (byte order mark FF FE 00 00)", "UTF-32"
	case bytes.HasPrefix(head, []byte{0xfe, 0xff}):
		return "UTF-16 BE text (byte order mark FE FF)", "UTF-16"
	case bytes.HasPrefix(head, []byte{0xff, 0xfe}):
		return "UTF-16 LE text (byte order mark FF FE)", "UTF-16"
	}
	head = head[:min(len(head), headBytes)&^3]
	n := len(head)
	if n < 32 {
		return "", ""
	}
	var zeros, breaks [2]int // zero bytes at even and odd offsets; line ends of UTF-16 LE and BE
	for i := 0; i < n; i += 2 {
		a, b := head[i], head[i+1]
		if a == 0 {
			zeros[0]++
		}
		if b == 0 {
			zeros[1]++
		}
		if a == '\n' && b == 0 {
			breaks[0]++
		} else if a == 0 && b == '\n' {
			breaks[1]++
		}
	}
	// UTF-16: in ASCII text, many zero bytes, nearly all on one side of the
	// pairs; in other scripts, line ends of UTF-16 and four in five zero
	// bytes on their side (Chinese has its share of characters like U+4E00,
	// whose other byte is zero).
	utf16 := func(z, other, ends int) bool { return 4*z >= n && 16*other <= z || ends >= 2 && 4*other <= z }
	switch {
	case utf16(zeros[1], zeros[0], breaks[0]):
		return "UTF-16 LE text without a byte order mark (zero bytes at odd offsets of its start)", "UTF-16LE"
	case utf16(zeros[0], zeros[1], breaks[1]):
		return "UTF-16 BE text without a byte order mark (zero bytes at even offsets of its start)", "UTF-16BE"
	case 2*(zeros[0]+zeros[1]) >= n:
		return "UTF-32 text or binary data (half its first bytes or more are zero)", "UTF-32"
	}
	return "", ""
}

// notRegular is the error of an input that is not a regular file. A pipe
// (<(zcat …) gives one) can be read only once, and a build reads an input
// twice (to plan it, then to build it); standard input is read once and
// kept.
func notRegular(p string, mode fs.FileMode) error {
	if mode&fs.ModeNamedPipe != 0 {
		return fmt.Errorf("pipeline: input %s is a pipe, which can be read only once (a build reads a file twice, to plan it and to build it): give the file itself, or pass the pipe's data on standard input (--input -)", p)
	}
	return fmt.Errorf("pipeline: input %s is %s, not a regular file", p, fileKind(mode))
}

// fileKind names what a file that is not regular is.
func fileKind(mode fs.FileMode) string {
	switch {
	case mode.IsDir():
		return "a directory"
	case mode&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

// walkInputs appends the input files under dir (whose FileInfo is root)
// to paths, following symbolic links. A link to a directory that is
// already being searched or was searched (a loop, or a second way to the
// same files) is reported and skipped, as is a link that leads nowhere.
func walkInputs(dir string, root os.FileInfo, paths []string, warn func(string)) ([]string, error) {
	visited := []os.FileInfo{root}
	var walk func(dir string, depth int) error
	walk = func(dir string, depth int) error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("pipeline: reading directory %s: %w", dir, err)
		}
		for _, e := range ents {
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				continue
			}
			p := filepath.Join(dir, name)
			typ := e.Type()
			if typ&fs.ModeSymlink != 0 {
				st, err := os.Stat(p)
				switch {
				case err != nil:
					warn(fmt.Sprintf("skipping %s: a symbolic link that leads nowhere (%v)", p, errors.Unwrap(err)))
					continue
				case st.Mode().IsRegular():
					if isInputName(name) {
						paths = append(paths, p)
					}
					continue
				case !st.IsDir():
					if isInputName(name) {
						warn(fmt.Sprintf("skipping %s: it leads to %s, not a regular file", p, fileKind(st.Mode())))
					}
					continue
				}
				typ = fs.ModeDir
			}
			if typ.IsDir() {
				st, err := os.Stat(p)
				if err != nil {
					return fmt.Errorf("pipeline: reading directory %s: %w", p, err)
				}
				if slices.ContainsFunc(visited, func(o os.FileInfo) bool { return os.SameFile(o, st) }) {
					warn(fmt.Sprintf("skipping %s: it leads to a directory already searched (a symbolic link loop, or a second way to the same files)", p))
					continue
				}
				if depth >= 256 {
					return fmt.Errorf("pipeline: %s: directories nested over 256 deep", p)
				}
				visited = append(visited, st)
				if err := walk(p, depth+1); err != nil {
					return err
				}
				continue
			}
			switch {
			case !isInputName(name):
			case typ.IsRegular():
				paths = append(paths, p)
			default:
				warn(fmt.Sprintf("skipping %s: it is %s, not a regular file", p, fileKind(typ)))
			}
		}
		return nil
	}
	return paths, walk(dir, 0)
}

// sniff names the compression of a stream from its first bytes.
func sniff(magic []byte) (string, error) {
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return "gzip", nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd", nil
	case len(magic) >= 4 && magic[0]&0xf0 == 0x50 && bytes.Equal(magic[1:4], []byte{0x2a, 0x4d, 0x18}):
		return "zstd", nil // a zstd skippable frame (pzstd starts with one)
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return "", errors.New("xz compression is not supported (decompress it, or recompress with zstd)")
	case bzip2Magic(magic):
		return "bzip2", nil
	case bytes.HasPrefix(magic, []byte{0x04, 0x22, 0x4d, 0x18}):
		return "", errors.New("lz4 compression is not supported (decompress it, or recompress with zstd)")
	}
	return "none", nil
}

// bzip2Magic reports whether a stream starts as bzip2 does: "BZh", the
// block size 1-9, then a block's magic (π) or, for an empty stream, the
// end-of-stream magic (√π); text that starts with "BZh" is text.
func bzip2Magic(b []byte) bool {
	if len(b) < 10 || string(b[:3]) != "BZh" || b[3] < '1' || b[3] > '9' {
		return false
	}
	m := string(b[4:10])
	return m == "\x31\x41\x59\x26\x53\x59" || m == "\x17\x72\x45\x38\x50\x90"
}

// hashInputs fills in the sha256 of every input file but stdin and those
// skip names (makePlan hashes an input it cuts into ranges while it looks
// for the cuts), reading up to workers files at a time, each once, and
// checks that no file changed while it was read. progress, if not nil, is
// told the bytes read, from several goroutines. Of several failures, the
// error is the first input's (see forEach).
func hashInputs(ctx context.Context, inputs []Input, workers int, skip func(Input) bool, progress func(int64)) error {
	bufs := readBuffers()
	return forEach(ctx, len(inputs), workers, func(ctx context.Context, i int) error {
		if in := inputs[i]; in.Path == Stdin || skip != nil && skip(in) {
			return nil
		}
		return hashInput(ctx, &inputs[i], bufs, progress)
	})
}

// hashInput fills in the sha256 of the input file in.
func hashInput(ctx context.Context, in *Input, bufs *sync.Pool, progress func(int64)) error {
	f, err := os.Open(in.Path)
	if err != nil {
		return fmt.Errorf("pipeline: input %w", err)
	}
	defer f.Close()
	sum, n, err := readSum(ctx, in.Path, f, bufs, progress)
	if err != nil {
		return err
	}
	if err := checkUnchanged(f, *in); err != nil {
		return err
	}
	if n != in.Size {
		return fmt.Errorf("pipeline: %s changed size while being read (%d, then %d bytes)", in.Path, in.Size, n)
	}
	in.SHA256 = sum
	return nil
}

// readSum reads r (of the input at path) to its end and returns the sha256
// of what it read and its length. progress, if not nil, is told the bytes.
func readSum(ctx context.Context, path string, r io.Reader, bufs *sync.Pool, progress func(int64)) (string, int64, error) {
	buf := bufs.Get().(*[]byte)
	defer bufs.Put(buf)
	raw := &rawReader{ctx: ctx, path: path, r: r, hash: sha256.New(), progress: progress}
	if _, err := io.CopyBuffer(io.Discard, raw, *buf); err != nil {
		return "", raw.n, err
	}
	return hexSum(raw.hash), raw.n, nil
}

// readBuffers is a pool of 1 MiB read buffers: one a goroutine that reads,
// not one an input (a plan of 20,000 small files allocated 20 GB).
func readBuffers() *sync.Pool {
	return &sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}
}

type progressWriter struct {
	w  io.Writer
	fn func(int64)
}

func (p progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.fn(int64(n))
	return n, err
}

package pipeline

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/glmkit/glmkit/sharding/parquettext"
)

// Input is one input file of a build, as its plan records it.
type Input struct {
	Path        string `json:"path"`        // as given (or found under a given directory); "-" is stdin
	Size        int64  `json:"size"`        // bytes on disk; -1 for stdin
	SHA256      string `json:"sha256"`      // of the bytes on disk; for stdin, filled in once read
	Format      string `json:"format"`      // "text", "jsonl" or "parquet"
	Compression string `json:"compression"` // "none", "gzip" or "zstd", from the magic bytes
}

// Stdin is the input path that reads standard input.
const Stdin = "-"

// inputExts are the names taken from a directory (after a .gz/.zst suffix).
var inputExts = []string{".txt", ".text", ".raw", ".jsonl", ".json", ".ndjson", ".parquet"}

func isJSONName(name string) bool {
	name = strings.ToLower(name)
	for _, c := range []string{".gz", ".zst", ".zstd"} {
		name = strings.TrimSuffix(name, c)
	}
	return strings.HasSuffix(name, ".jsonl") || strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".ndjson")
}

func isInputName(name string) bool {
	lower := strings.ToLower(name)
	for _, c := range []string{".gz", ".zst", ".zstd"} {
		lower = strings.TrimSuffix(lower, c)
	}
	for _, e := range inputExts {
		if strings.HasSuffix(lower, e) {
			return true
		}
	}
	return false
}

// ResolveInputs expands the --input values into a sorted list of files:
// "-" is stdin, a value with * ? or [ is a glob, a directory is searched
// recursively for text, JSON Lines and Parquet files (text and JSON Lines
// optionally .gz or .zst; hidden entries skipped), anything else must be a
// file. format is "auto" (Parquet for .parquet names or PAR1 magic, JSON
// Lines for .jsonl/.json/.ndjson names, plain text otherwise), "text",
// "jsonl" or "parquet". Sizes and compression are filled in; hashes are not (see Hash).
func ResolveInputs(specs []string, format string) ([]Input, error) {
	switch format {
	case "", "auto", "text", "jsonl", "parquet":
	default:
		return nil, fmt.Errorf("pipeline: unknown --format %q (want auto, text, jsonl or parquet)", format)
	}
	if len(specs) == 0 {
		return nil, errors.New("pipeline: no --input given")
	}
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
				if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
					files = append(files, p)
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
			err = filepath.WalkDir(spec, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if p != spec && strings.HasPrefix(d.Name(), ".") {
					if d.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
				if d.Type().IsRegular() && isInputName(d.Name()) {
					paths = append(paths, p)
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("pipeline: reading directory %s: %w", spec, err)
			}
			if len(paths) == n {
				return nil, fmt.Errorf("pipeline: no input files in directory %s (looked for %s, optionally .gz or .zst)", spec, strings.Join(inputExts, " "))
			}
		}
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	inputs := make([]Input, 0, len(paths))
	for _, p := range paths {
		in := Input{Path: p, Size: -1, Format: format, Compression: "none"}
		if in.Format == "" || in.Format == "auto" {
			in.Format = "text"
			if isJSONName(p) {
				in.Format = "jsonl"
			}
		}
		if p != Stdin {
			st, err := os.Stat(p)
			if err != nil {
				return nil, fmt.Errorf("pipeline: input %w", err)
			}
			if !st.Mode().IsRegular() {
				return nil, fmt.Errorf("pipeline: input %s is not a regular file", p)
			}
			in.Size = st.Size()
			f, err := os.Open(p)
			if err != nil {
				return nil, fmt.Errorf("pipeline: input %w", err)
			}
			var magic [6]byte
			n, _ := io.ReadFull(f, magic[:])
			f.Close()
			if in.Compression, err = sniff(magic[:n]); err != nil {
				return nil, fmt.Errorf("pipeline: %s: %w", p, err)
			}
			if (format == "" || format == "auto") && (strings.HasSuffix(strings.ToLower(p), ".parquet") || bytes.HasPrefix(magic[:n], []byte(parquettext.Magic))) {
				in.Format = "parquet"
			}
		}
		inputs = append(inputs, in)
	}
	return inputs, nil
}

// sniff names the compression of a stream from its first bytes.
func sniff(magic []byte) (string, error) {
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return "gzip", nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd", nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return "", errors.New("xz compression is not supported (decompress it, or recompress with zstd)")
	case bytes.HasPrefix(magic, []byte("BZh")):
		return "", errors.New("bzip2 compression is not supported (decompress it, or recompress with zstd)")
	}
	return "none", nil
}

// Hash fills in the sha256 of every input file (not stdin), reading each
// once. progress, if not nil, is told the bytes read.
func Hash(inputs []Input, progress func(int64)) error {
	buf := make([]byte, 1<<20)
	for i := range inputs {
		in := &inputs[i]
		if in.Path == Stdin {
			continue
		}
		f, err := os.Open(in.Path)
		if err != nil {
			return fmt.Errorf("pipeline: input %w", err)
		}
		h := sha256.New()
		var w io.Writer = h
		if progress != nil {
			w = progressWriter{h, progress}
		}
		n, err := io.CopyBuffer(w, f, buf)
		f.Close()
		if err != nil {
			return fmt.Errorf("pipeline: reading %s: %w", in.Path, err)
		}
		if n != in.Size {
			return fmt.Errorf("pipeline: %s changed size while being read (%d, then %d bytes)", in.Path, in.Size, n)
		}
		in.SHA256 = hex.EncodeToString(h.Sum(nil))
	}
	return nil
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

// countReader counts the raw (compressed) bytes read and reports them.
type countReader struct {
	r  io.Reader
	n  *int64
	fn func(int64)
}

func (c countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	*c.n += int64(n)
	if c.fn != nil && n > 0 {
		c.fn(int64(n))
	}
	return n, err
}

// stream is an open task input: the decompressed bytes of [start, end) of
// one input (compressed inputs are always read whole).
type stream struct {
	*bufio.Reader
	closers []io.Closer
	raw     int64 // raw bytes read
	hash    interface {
		io.Writer
		Sum([]byte) []byte
	} // stdin only: hashed while read
}

func (s *stream) Close() error {
	var err error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if cerr := s.closers[i].Close(); err == nil {
			err = cerr
		}
	}
	return err
}

type closerFunc func() error

func (f closerFunc) Close() error { f(); return nil }

// openStream opens in for reading its decompressed bytes [start, end)
// (end −1: to the end of the input). An uncompressed file seeks to start; a
// compressed one is decompressed from its beginning and start bytes are
// skipped. progress receives the raw bytes read.
func openStream(in Input, start, end int64, progress func(int64)) (*stream, error) {
	s := &stream{}
	var raw io.Reader
	if in.Path == Stdin {
		h := sha256.New()
		s.hash = h
		raw = io.TeeReader(os.Stdin, h)
	} else {
		f, err := os.Open(in.Path)
		if err != nil {
			return nil, fmt.Errorf("pipeline: input %w", err)
		}
		s.closers = append(s.closers, f)
		if st, err := f.Stat(); err == nil && in.Size >= 0 && st.Size() != in.Size {
			f.Close()
			return nil, fmt.Errorf("pipeline: %s changed since it was planned (%d bytes, planned %d)", in.Path, st.Size(), in.Size)
		}
		if in.Compression == "none" && start > 0 {
			if _, err := f.Seek(start, io.SeekStart); err != nil {
				f.Close()
				return nil, fmt.Errorf("pipeline: %s: %w", in.Path, err)
			}
		}
		raw = f
		if in.Compression == "none" && end >= 0 {
			raw = io.LimitReader(f, end-start)
		}
	}
	raw = countReader{raw, &s.raw, progress}
	var dec io.Reader = raw
	switch in.Compression {
	case "gzip":
		z, err := gzip.NewReader(bufio.NewReaderSize(raw, 1<<16))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("pipeline: %s: not a readable gzip stream: %w", in.Path, err)
		}
		s.closers = append(s.closers, z)
		dec = z
	case "zstd":
		z, err := zstd.NewReader(raw, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(false))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("pipeline: %s: %w", in.Path, err)
		}
		s.closers = append(s.closers, closerFunc(func() error { z.Close(); return nil }))
		dec = z
	}
	if (in.Compression != "none" || in.Path == Stdin) && start > 0 {
		if _, err := io.CopyN(io.Discard, dec, start); err != nil {
			s.Close()
			return nil, fmt.Errorf("pipeline: %s: skipping to byte %d to resume: %w", in.Path, start, err)
		}
	}
	s.Reader = bufio.NewReaderSize(dec, 1<<20)
	return s, nil
}

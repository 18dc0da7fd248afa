package pipeline

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/glmkit/glmkit/internal/atomicfile"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Reading inputs. Two kinds of failure are told apart:
//
//   - damage: a decoder found the data itself bad (a corrupt or truncated
//     gzip member or zstd frame). That is bad input: the records before the
//     damaged member or frame are kept, the damaged one is counted as
//     truncated with its byte offset, and nothing after it is read, because
//     finding the next intact frame would be a guess.
//   - an I/O error (EIO, a vanished file, an interrupt): the task stops
//     with an error and records nothing complete, so --resume retries it.
//
// Compressed input is decoded a member or frame at a time, and nothing of
// a member or frame is handed on before its checksum has been verified: a
// frame is first decoded to nowhere (which checks it), then decoded again
// for its records. The raw bytes of a file are read in one sequential pass
// that also hashes them; stdin's frames are spooled (in memory, or in a
// glmkit temporary beside the shards when large) so they can be read twice.

// damageError is bad data found by a decoder.
type damageError struct {
	offset int64 // raw byte offset of the damaged frame or member
	detail string
}

func (e *damageError) Error() string {
	return fmt.Sprintf("damaged at byte %d: %s", e.offset, e.detail)
}

// ioError is a failure to read an input that says nothing about its data.
type ioError struct {
	path string
	err  error
}

func (e *ioError) Error() string {
	err := e.err
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Sprintf("pipeline: reading %s: %v", e.path, err)
}
func (e *ioError) Unwrap() error { return e.err }

// unsupportedError is a valid compressed stream that glmkit cannot decode
// (a zstd dictionary, a huge window): the task stops with this error.
type unsupportedError struct {
	path string
	msg  string
}

func (e *unsupportedError) Error() string { return fmt.Sprintf("pipeline: %s: %s", e.path, e.msg) }

// rawReader reads an input's raw bytes for the sequential pass: it counts
// and hashes them, reports progress, stops at ctx, and turns every read
// error into an ioError. The spool, when set, gets a copy (stdin).
type rawReader struct {
	ctx      context.Context
	path     string
	r        io.Reader
	n        int64 // bytes read
	hash     hash.Hash
	spool    *spool
	progress func(int64)
	err      error // sticky ioError
}

func (r *rawReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if err := r.ctx.Err(); err != nil {
		r.err = &ioError{r.path, err}
		return 0, r.err
	}
	n, err := r.r.Read(p)
	if n > 0 {
		r.n += int64(n)
		r.hash.Write(p[:n])
		if r.spool != nil {
			if serr := r.spool.write(p[:n]); serr != nil {
				r.err = &ioError{r.path, serr}
				return n, r.err
			}
		}
		if r.progress != nil {
			r.progress(int64(n))
		}
	}
	if err != nil && err != io.EOF {
		r.err = &ioError{r.path, err}
		return n, r.err
	}
	return n, err
}

// readerAt is an io.ReaderAt over an input (or a spool) whose errors are
// ioErrors; it stops at ctx.
type readerAt struct {
	ctx  context.Context
	path string
	r    io.ReaderAt
	bad  bool // an ioError was returned
}

func (r *readerAt) ReadAt(p []byte, off int64) (int, error) {
	if err := r.ctx.Err(); err != nil {
		r.bad = true
		return 0, &ioError{r.path, err}
	}
	n, err := r.r.ReadAt(p, off)
	if err != nil && err != io.EOF {
		r.bad = true
		return n, &ioError{r.path, err}
	}
	return n, err
}

// spool holds the raw bytes of stdin from base on: in memory up to
// spoolMem bytes, then in a temporary file.
type spool struct {
	dir  string // for the temporary file
	base int64  // stdin offset of mem[0] / the file's first byte
	mem  []byte
	f    *os.File
	tmp  *atomicfile.Temp
	fn   int64 // bytes in f
}

const spoolMem = 32 << 20

func (s *spool) write(p []byte) error {
	if s.f == nil && len(s.mem)+len(p) <= spoolMem {
		s.mem = append(s.mem, p...)
		return nil
	}
	if s.f == nil {
		f, tmp, err := atomicfile.Create(s.dir, "stdin-spool")
		if err != nil {
			return err
		}
		s.f, s.tmp = f, tmp
		if _, err := f.Write(s.mem); err != nil {
			return err
		}
		s.fn = int64(len(s.mem))
		s.mem = s.mem[:0]
	}
	n, err := s.f.Write(p)
	s.fn += int64(n)
	return err
}

// ReadAt reads at a stdin offset.
func (s *spool) ReadAt(p []byte, off int64) (int, error) {
	off -= s.base
	if off < 0 {
		return 0, errors.New("spool: read before its start")
	}
	if s.f != nil {
		return s.f.ReadAt(p, off)
	}
	if off >= int64(len(s.mem)) {
		return 0, io.EOF
	}
	n := copy(p, s.mem[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// drop forgets the bytes before stdin offset keep (the frames done).
func (s *spool) drop(keep int64) error {
	k := keep - s.base
	if s.f == nil {
		s.mem = append(s.mem[:0], s.mem[k:]...)
		s.base = keep
		return nil
	}
	// Carry the tail (at most a read buffer) into memory.
	tail := make([]byte, s.fn-k)
	if _, err := s.f.ReadAt(tail, k); err != nil && err != io.EOF {
		return err
	}
	s.close()
	s.mem = append(s.mem[:0], tail...)
	s.base = keep
	return nil
}

func (s *spool) close() {
	if s.f != nil {
		s.f.Close()
		os.Remove(s.tmp.Path)
		s.tmp.Release()
		s.f, s.tmp, s.fn = nil, nil, 0
	}
}

// maxZstdWindow is the largest zstd window decoded: zstd's own default
// limit (a larger one needs zstd --long, and as much memory).
const maxZstdWindow = 1 << 27

// frame is one verified member or frame: its raw extent and decoded size.
type frame struct {
	off, end int64
	size     int64 // decompressed bytes
}

// frameReader is the decompressed stream of a gzip, zstd or bzip2 input,
// frame by frame, each verified before any of it is returned. A bzip2
// input is one frame: its streams end where only decoding finds them, and
// Go's decoder reads them all, checking each block's CRC and each
// stream's. Where that decode fails, the frame is the whole streams before
// the failure, found again by a decode that ends cleanly at their end (see
// bzip2Streams); nothing is kept when there are none.
type frameReader struct {
	ctx  context.Context
	path string
	kind string // "gzip", "zstd" or "bzip2"
	raw  *rawReader
	br   *bufio.Reader // over raw: the sequential pass
	at   *readerAt     // random access to the raw bytes (the file, or the spool)
	sp   *spool        // stdin

	zd   *zstd.Decoder
	gz   *gzip.Reader
	skip int64 // decompressed bytes still to skip (resume)

	after error // bzip2: the damage after the last frame, for the call after it

	cur   io.Reader // the current frame's decoded bytes
	left  int64     // of the current frame, still to come
	err   error     // sticky: io.EOF, a damageError or an ioError
	ended bool      // the sequential pass reached the end of the input
}

func newFrameReader(ctx context.Context, path, kind string, raw *rawReader, br *bufio.Reader, at io.ReaderAt, sp *spool, skip int64) (*frameReader, error) {
	fr := &frameReader{ctx: ctx, path: path, kind: kind, raw: raw, br: br,
		at: &readerAt{ctx: ctx, path: path, r: at}, sp: sp, skip: skip}
	if kind == "zstd" {
		zd, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(false),
			zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, err
		}
		fr.zd = zd
	} else if kind == "gzip" {
		fr.gz = new(gzip.Reader)
	}
	return fr, nil
}

func (fr *frameReader) close() {
	if fr.zd != nil {
		fr.zd.Close()
	}
	if fr.sp != nil {
		fr.sp.close()
	}
}

// pos is the raw offset the sequential pass has consumed up to.
func (fr *frameReader) pos() int64 { return fr.raw.n - int64(fr.br.Buffered()) }

func (fr *frameReader) Read(p []byte) (int, error) {
	for {
		if fr.cur != nil {
			n, err := fr.cur.Read(p)
			fr.left -= int64(n)
			if fr.left < 0 || err != nil && err != io.EOF || err == io.EOF && fr.left != 0 {
				// A frame that verified decodes differently now: it
				// changed on disk, or reading it failed.
				fr.cur = nil
				fr.err = fr.rereadError(err)
				return n, fr.err
			}
			if fr.left == 0 {
				fr.cur = nil
			}
			if n > 0 {
				return n, nil
			}
			continue
		}
		if fr.err != nil {
			return 0, fr.err
		}
		f, err := fr.next()
		if err != nil {
			fr.err = err
			return 0, err
		}
		if f.size <= fr.skip {
			fr.skip -= f.size
			continue
		}
		if err := fr.open(f); err != nil {
			fr.err = err
			return 0, err
		}
	}
}

func (fr *frameReader) rereadError(err error) error {
	var ie *ioError
	if errors.As(err, &ie) {
		return ie
	}
	return &ioError{fr.path, fmt.Errorf("a frame that verified reads differently the second time (the file changed while it was read?): %v", err)}
}

// open starts decoding f for the consumer, skipping fr.skip bytes of it.
func (fr *frameReader) open(f frame) error {
	sec := io.NewSectionReader(fr.at, f.off, f.end-f.off)
	var dec io.Reader
	switch fr.kind {
	case "bzip2":
		dec = bzip2.NewReader(bufio.NewReaderSize(sec, 1<<16))
	case "zstd":
		if err := fr.zd.Reset(sec); err != nil {
			return fr.rereadError(err)
		}
		dec = fr.zd
	default:
		if err := fr.gz.Reset(bufio.NewReaderSize(sec, 1<<16)); err != nil {
			return fr.rereadError(err)
		}
		fr.gz.Multistream(false)
		dec = fr.gz
	}
	fr.cur, fr.left = dec, f.size
	if fr.skip > 0 {
		n, err := io.CopyN(io.Discard, dec, fr.skip)
		fr.left -= n
		fr.skip = 0
		if err != nil {
			return fr.rereadError(err)
		}
	}
	return nil
}

// next finds, checks and returns the next data frame: io.EOF at a clean
// end, a damageError for bad data, an ioError for a failed read.
func (fr *frameReader) next() (frame, error) {
	for {
		if fr.sp != nil {
			if err := fr.sp.drop(fr.pos()); err != nil {
				return frame{}, &ioError{fr.path, err}
			}
		}
		if fr.after != nil {
			return frame{}, fr.after
		}
		start := fr.pos()
		head, err := fr.br.Peek(4)
		if len(head) == 0 && err == io.EOF {
			fr.ended = true
			return frame{}, io.EOF
		}
		if ie := asIOError(err); ie != nil {
			return frame{}, ie
		}
		var f frame
		var skippable bool
		switch fr.kind {
		case "bzip2":
			f, err = fr.bzip2Streams(start)
		case "zstd":
			f, skippable, err = fr.zstdFrame(start)
		default:
			f, err = fr.gzipMember(start)
		}
		if err != nil {
			return frame{}, err
		}
		if skippable || f.size == 0 {
			continue
		}
		return f, nil
	}
}

func asIOError(err error) *ioError {
	var ie *ioError
	if errors.As(err, &ie) {
		return ie
	}
	return nil
}

// classify turns a decoder's error at the frame starting at off into an
// ioError (when reading failed) or a damageError.
func (fr *frameReader) classify(off int64, what string, err error) error {
	if fr.raw.err != nil {
		return fr.raw.err
	}
	if ie := asIOError(err); ie != nil || fr.at.bad {
		if ie == nil {
			ie = &ioError{fr.path, err}
		}
		return ie
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return &damageError{off, what + " is cut short (the file is truncated)"}
	}
	return &damageError{off, fmt.Sprintf("%s is corrupt: %v", what, err)}
}

// gzipMember decodes the member at start to nowhere, which checks its
// CRC-32 and length, and returns its extent.
func (fr *frameReader) gzipMember(start int64) (frame, error) {
	what := fmt.Sprintf("gzip member at byte %d", start)
	if head, _ := fr.br.Peek(2); !bytes.Equal(head, []byte{0x1f, 0x8b}) {
		if start > 0 && fr.zeroTail() {
			return frame{}, nil
		}
		if ie := asIOError(fr.raw.err); ie != nil {
			return frame{}, ie
		}
		return frame{}, &damageError{start, fmt.Sprintf("no gzip member at byte %d (trailing data, or the file is damaged)", start)}
	}
	if err := fr.gz.Reset(fr.br); err != nil {
		return frame{}, fr.classify(start, what, err)
	}
	fr.gz.Multistream(false)
	n, err := io.Copy(io.Discard, fr.gz)
	if err != nil {
		return frame{}, fr.classify(start, what, err)
	}
	return frame{off: start, end: fr.pos(), size: n}, nil
}

// bzip2Streams decodes the input's bzip2 streams, from start to its end,
// to nowhere, which checks every block's CRC and every stream's, and
// returns their extent: one frame. When the decoder fails, the frame is
// the whole streams before the failure (see bzip2Kept), if there are any:
// zero padding after them is ignored, as gzip's is, and anything else
// there is damage at the byte after them, reported once their records are
// read. With none, the damage is at start and nothing is kept.
func (fr *frameReader) bzip2Streams(start int64) (frame, error) {
	what := fmt.Sprintf("bzip2 data at byte %d", start)
	if head, _ := fr.br.Peek(10); !bzip2Magic(head) {
		if ie := asIOError(fr.raw.err); ie != nil {
			return frame{}, ie
		}
		return frame{}, &damageError{start, fmt.Sprintf("no bzip2 stream at byte %d (the file is damaged)", start)}
	}
	n, err := io.Copy(io.Discard, bzip2.NewReader(fr.br))
	if err == nil {
		return frame{off: start, end: fr.pos(), size: n}, nil
	}
	whole := fr.classify(start, what, err)
	if _, ok := whole.(*damageError); !ok {
		return frame{}, whole
	}
	// The decoder reads a byte at a time from fr.br: it stopped at stop.
	stop := fr.pos()
	f, ok, kerr := fr.bzip2Kept(start, stop, n, err)
	if kerr != nil {
		return frame{}, kerr
	}
	if !ok {
		return frame{}, whole
	}
	// What follows the kept streams up to stop is at most two bytes,
	// unless it starts as a stream does, with "BZ".
	head := make([]byte, min(stop-f.end, 2))
	if err := fr.readAt(head, f.end); err != nil {
		return frame{}, err
	}
	if stop-f.end <= 2 && bytes.Count(head, []byte{0}) == len(head) {
		if fr.zeroTail() {
			return f, nil
		}
		if ie := asIOError(fr.raw.err); ie != nil {
			return frame{}, ie
		}
	}
	if string(head) == "BZ" {
		fr.after = fr.classify(f.end, fmt.Sprintf("bzip2 stream at byte %d", f.end), err)
	} else {
		fr.after = &damageError{f.end, fmt.Sprintf("trailing data after the last bzip2 stream, at byte %d", f.end)}
	}
	return f, nil
}

// bzip2ContinuationErr is what Go's decoder returns when a stream, its
// CRC checked, is followed by two bytes that are not "BZ".
const bzip2ContinuationErr = bzip2.StructuralError("bad magic value in continuation file")

// bzip2Tries is how many of the latest places a stream may end bzip2Kept
// decodes up to, latest first, before it gives up.
const bzip2Tries = 4

// bzip2Kept finds the whole streams from start that came before the
// decoder failed with err at raw offset stop, having handed out n bytes:
// their extent and decoded size, or ok false when there are none. Where
// the decoder failed looking for a next stream after one it checked (err
// is bzip2ContinuationErr), they end two bytes before stop, and n is
// theirs. Otherwise the latest places before stop where a stream may end
// (bzip2EndAt) are tried, each by decoding the input up to it again: a
// decode that ends cleanly there checked every block and stream CRC of
// those streams, and the read pass, decoding the same bytes, ends at the
// same place with the same bytes.
func (fr *frameReader) bzip2Kept(start, stop, n int64, err error) (frame, bool, error) {
	if err == bzip2ContinuationErr {
		return frame{off: start, end: stop - 2, size: n}, true, nil
	}
	ends, err := fr.bzip2Ends(start, stop, bzip2Tries)
	if err != nil {
		return frame{}, false, err
	}
	for _, end := range ends {
		dec := bzip2.NewReader(bufio.NewReaderSize(io.NewSectionReader(fr.at, start, end-start), 1<<16))
		n, err := io.Copy(io.Discard, dec)
		if ie := asIOError(err); ie != nil || fr.at.bad {
			if ie == nil {
				ie = &ioError{fr.path, err}
			}
			return frame{}, false, ie
		}
		if err == nil {
			return frame{off: start, end: end, size: n}, true, nil
		}
	}
	return frame{}, false, nil
}

// bzip2Ends returns the latest places, at most limit of them, latest first,
// in (start, stop] where a bzip2 stream from start may end: it reads the
// raw bytes backwards from stop.
func (fr *frameReader) bzip2Ends(start, stop int64, limit int) ([]int64, error) {
	const minStream = 14 // "BZh9", the end-of-stream magic and the CRC
	var ends []int64
	buf := make([]byte, 1<<16)
	for hi := stop; hi >= start+minStream && len(ends) < limit; {
		lo := max(hi-int64(len(buf)), start)
		b := buf[:hi-lo]
		if err := fr.readAt(b, lo); err != nil {
			return nil, err
		}
		for end := hi; end-11 >= lo && end >= start+minStream && len(ends) < limit; end-- {
			if bzip2EndAt(b[end-11-lo : end-lo]) {
				ends = append(ends, end)
			}
		}
		// The ends below lo+11 are checked with the bytes before lo.
		hi = lo + 10
		if lo == start {
			break
		}
	}
	return ends, nil
}

// readAt reads len(b) raw bytes at off, which the sequential pass has
// read already: an ioError when reading fails, and when they are not all
// there, the error of a file that changed while it was read.
func (fr *frameReader) readAt(b []byte, off int64) error {
	n, err := fr.at.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if ie := asIOError(err); ie != nil {
		return ie
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fr.rereadError(err)
}

// bzip2EOS is the 48-bit magic number that ends a bzip2 stream, before
// the stream's CRC (32 bits) and the padding to a byte boundary.
const bzip2EOS = 0x177245385090

// bzip2EndAt reports whether w, 11 bytes, ends as a bzip2 stream does:
// the end-of-stream magic, the CRC and 0 to 7 bits of padding. That is a
// candidate only: the magic can turn up inside block data too.
func bzip2EndAt(w []byte) bool {
	hi := uint64(w[0])<<16 | uint64(w[1])<<8 | uint64(w[2])
	lo := binary.BigEndian.Uint64(w[3:11])
	for k := uint(32); k < 40; k++ { // the CRC, then the padding
		if (lo>>k|hi<<(64-k))&(1<<48-1) == bzip2EOS {
			return true
		}
	}
	return false
}

// zeroTail consumes the rest of the input and reports whether it is all
// zero bytes (padding that gzip itself ignores).
func (fr *frameReader) zeroTail() bool {
	for {
		b, err := fr.br.ReadByte()
		if err != nil {
			return err == io.EOF
		}
		if b != 0 {
			return false
		}
	}
}

// zstdFrame walks the frame at start (header and block headers: the
// structure gives its end without decoding), then decodes it to nowhere,
// which checks its blocks and content checksum.
func (fr *frameReader) zstdFrame(start int64) (frame, bool, error) {
	w := &zstdWalk{fr: fr, start: start, what: fmt.Sprintf("zstd frame at byte %d", start)}
	b, err := w.read(4)
	if err != nil {
		return frame{}, false, err
	}
	magic := binary.LittleEndian.Uint32(b)
	if magic&0xFFFFFFF0 == 0x184D2A50 { // a skippable frame
		b, err := w.read(4)
		if err != nil {
			return frame{}, false, err
		}
		return frame{}, true, w.skip(int64(binary.LittleEndian.Uint32(b)))
	}
	if magic != 0xFD2FB528 {
		return frame{}, false, &damageError{start, fmt.Sprintf("no zstd frame at byte %d (trailing data, or the file is damaged)", start)}
	}
	checksum, refuse, err := w.header()
	if err != nil {
		return frame{}, false, err
	}
	if err := w.blocks(); err != nil {
		return frame{}, false, err
	}
	if checksum {
		if _, err := w.read(4); err != nil {
			return frame{}, false, err
		}
	}
	if refuse != nil {
		// Its blocks are whole: the header's dictionary or window is
		// meant, not damage.
		return frame{}, false, refuse
	}
	f := frame{off: start, end: fr.pos()}
	// Decode it to nowhere: blocks and checksum are checked.
	if err := fr.zd.Reset(io.NewSectionReader(fr.at, f.off, f.end-f.off)); err != nil {
		return frame{}, false, fr.classify(start, w.what, err)
	}
	n, err := io.Copy(io.Discard, fr.zd)
	if err != nil {
		return frame{}, false, fr.classify(start, w.what, err)
	}
	f.size = n
	return f, false, nil
}

// zstdWalk walks the structure of one zstd frame of a frameReader's input.
type zstdWalk struct {
	fr    *frameReader
	start int64  // the frame's offset
	what  string // "zstd frame at byte N", for errors
}

// read consumes the next n bytes and returns them (valid until the next
// read).
func (w *zstdWalk) read(n int) ([]byte, error) {
	b, err := w.fr.br.Peek(n)
	if err != nil {
		return nil, w.cut(err)
	}
	w.fr.br.Discard(n)
	return b, nil
}

// skip consumes the next n bytes.
func (w *zstdWalk) skip(n int64) error {
	for n > 0 {
		d, err := w.fr.br.Discard(int(min(n, 1<<20)))
		n -= int64(d)
		if err != nil {
			return w.cut(err)
		}
	}
	return nil
}

// cut is the error of a read that failed: the read error itself, or the
// damage of a frame that the file's end cut short.
func (w *zstdWalk) cut(err error) error {
	if ie := asIOError(err); ie != nil {
		return ie
	}
	return &damageError{w.start, w.what + " is cut short (the file is truncated)"}
}

// header reads the frame header after the magic number and reports
// whether the frame ends with a content checksum. A frame that needs a
// dictionary or a window over maxZstdWindow gets refuse, the error to
// return once its blocks are found whole (random bytes after a magic
// number name a dictionary or a huge window too, and are damage).
func (w *zstdWalk) header() (checksum bool, refuse, err error) {
	b, err := w.read(1)
	if err != nil {
		return false, nil, err
	}
	fhd := b[0]
	single := fhd&0x20 != 0
	if fhd&0x08 != 0 {
		return false, nil, &damageError{w.start, w.what + " is corrupt: reserved header bit set"}
	}
	checksum = fhd&0x04 != 0
	dictBytes := [4]int{0, 1, 2, 4}[fhd&3]
	fcsBytes := [4]int{0, 2, 4, 8}[fhd>>6]
	if fhd>>6 == 0 && single {
		fcsBytes = 1
	}
	window := uint64(0)
	if !single {
		if b, err = w.read(1); err != nil {
			return false, nil, err
		}
		exp := uint64(b[0]>>3) + 10
		base := uint64(1) << exp
		window = base + base/8*uint64(b[0]&7)
	}
	if dictBytes > 0 {
		if b, err = w.read(dictBytes); err != nil {
			return false, nil, err
		}
		if id := littleEndian(b); id != 0 {
			refuse = &unsupportedError{w.fr.path, fmt.Sprintf("%s needs zstd dictionary %d, which glmkit does not have (decompress it with the dictionary first)", w.what, id)}
		}
	}
	if fcsBytes > 0 {
		if b, err = w.read(fcsBytes); err != nil {
			return false, nil, err
		}
		if single {
			window = littleEndian(b)
			if fcsBytes == 2 {
				window += 256
			}
		}
	}
	if window > maxZstdWindow && refuse == nil {
		refuse = &unsupportedError{w.fr.path, fmt.Sprintf("%s needs a %d MiB window; glmkit decodes windows up to %d MiB (recompress it without --long, or decompress it first)", w.what, window>>20, maxZstdWindow>>20)}
	}
	return checksum, refuse, nil
}

// littleEndian is the unsigned little-endian number of up to 8 bytes.
func littleEndian(b []byte) uint64 {
	var x uint64
	for i := len(b) - 1; i >= 0; i-- {
		x = x<<8 | uint64(b[i])
	}
	return x
}

// blocks walks the frame's blocks, up to and including the last.
func (w *zstdWalk) blocks() error {
	for {
		if err := w.fr.ctx.Err(); err != nil {
			return &ioError{w.fr.path, err}
		}
		b, err := w.read(3)
		if err != nil {
			return err
		}
		h := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
		last, typ, size := h&1 != 0, (h>>1)&3, int64(h>>3)
		switch typ {
		case 1: // RLE: one byte stands for size bytes
			size = 1
		case 3:
			return &damageError{w.start, w.what + " is corrupt: a reserved block type"}
		}
		if size > 128<<10 {
			return &damageError{w.start, w.what + " is corrupt: a block over 128 KiB"}
		}
		if err := w.skip(size); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}

// drain reads the rest of the raw input (after damage or an early stop),
// so the hash covers all of it.
func (fr *frameReader) drain() error {
	if fr.sp != nil {
		fr.sp.close()
		fr.raw.spool = nil
	}
	if fr.ended {
		return nil
	}
	_, err := io.Copy(io.Discard, fr.br)
	return asErr(err)
}

func asErr(err error) error {
	if ie := asIOError(err); ie != nil {
		return ie
	}
	return err
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// stream is an open task input: the decompressed bytes of one task's range
// of one input.
type stream struct {
	*bufio.Reader // the decompressed bytes
	path          string
	raw           *rawReader
	fr            *frameReader // compressed input
	f             inputFile    // a file input
	compression   string       // as found (stdin is sniffed when opened)
}

func (s *stream) Close() error {
	if s.fr != nil {
		s.fr.close()
	}
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}

// finish reads the rest of the task's raw bytes (after damage, when the
// records stopped early) and returns the sha256 and count of every raw
// byte the task read.
func (s *stream) finish() (string, int64, error) {
	var err error
	if s.fr != nil {
		err = s.fr.drain()
	} else {
		_, err = io.Copy(io.Discard, s.raw)
	}
	if err != nil {
		return "", 0, asErr(err)
	}
	return hexSum(s.raw.hash), s.raw.n, nil
}

// openStream opens task t of in for reading its decompressed bytes from
// offset (a resume point; t.Start to start the task). An uncompressed
// file is read from t.Start to t.End (the bytes before offset only to
// hash them); a compressed input is read whole, frame by frame, and offset
// decompressed bytes are skipped. dir takes stdin's spool. progress
// receives the raw bytes read.
func openStream(ctx context.Context, open opener, in Input, t Task, offset int64, dir string, progress func(int64)) (*stream, error) {
	s := &stream{path: in.Path, compression: in.Compression}
	raw := &rawReader{ctx: ctx, path: in.Path, hash: sha256.New(), progress: progress}
	s.raw = raw
	var at io.ReaderAt
	var sp *spool
	if in.Path == Stdin {
		raw.r = os.Stdin
		sp = &spool{dir: dir}
		raw.spool = sp
		at = sp
	} else {
		f, err := open.open(in.Path)
		if err != nil {
			return nil, fmt.Errorf("pipeline: input %w", err)
		}
		s.f = f
		if err := checkUnchanged(f, in); err != nil {
			f.Close()
			return nil, err
		}
		at = f
		raw.r = f
		if in.Compression == "none" {
			if t.Start > 0 {
				if _, err := f.Seek(t.Start, io.SeekStart); err != nil {
					f.Close()
					return nil, fmt.Errorf("pipeline: %s: %w", in.Path, err)
				}
			}
			if t.End >= 0 {
				raw.r = io.LimitReader(f, t.End-t.Start)
			}
		}
	}
	br := bufio.NewReaderSize(raw, 1<<20)
	if in.Path == Stdin {
		head, err := br.Peek(10)
		if ie := asIOError(err); ie != nil {
			return nil, ie
		}
		if s.compression, err = sniff(head); err != nil {
			return nil, fmt.Errorf("pipeline: stdin: %w", err)
		}
		if s.compression == "none" {
			raw.spool = nil
			sp = nil
		}
	}
	if s.compression == "none" {
		s.Reader = br
		// Skip to the resume point, hashing what is skipped.
		if skip := offset - max(t.Start, 0); skip > 0 {
			if _, err := br.Discard(int(skip)); err != nil {
				s.Close()
				if ie := asIOError(err); ie != nil {
					return nil, ie
				}
				return nil, fmt.Errorf("pipeline: %s: skipping to byte %d to resume: %w", in.Path, offset, err)
			}
		}
		return s, nil
	}
	fr, err := newFrameReader(ctx, in.Path, s.compression, raw, br, at, sp, offset)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.fr = fr
	s.Reader = bufio.NewReaderSize(fr, 1<<20)
	return s, nil
}

// inputFile is an input file open for reading.
type inputFile interface {
	io.Reader
	io.ReaderAt
	io.Seeker
	io.Closer
	Stat() (os.FileInfo, error)
}

// opener opens input files; nil opens them with os.Open. (Tests put a
// reader that fails on purpose here.)
type opener func(path string) (inputFile, error)

func (o opener) open(path string) (inputFile, error) {
	if o != nil {
		return o(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// checkUnchanged compares an open input with what its plan recorded.
func checkUnchanged(f inputFile, in Input) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("pipeline: %s: %w", in.Path, err)
	}
	if st.Size() != in.Size || st.ModTime().UnixNano() != in.ModTime {
		return fmt.Errorf("pipeline: %s changed since it was planned (now %d bytes, modified %s; planned %d bytes, modified %s): plan the build again",
			in.Path, st.Size(), st.ModTime().UTC().Format(timeFormat), in.Size, time.Unix(0, in.ModTime).UTC().Format(timeFormat))
	}
	return nil
}

const timeFormat = "2006-01-02T15:04:05.000000000Z"

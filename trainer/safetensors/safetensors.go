// Package safetensors reads and writes the safetensors format
// (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON mapping each tensor name to its dtype, shape and
// [begin, end) data offsets (relative to the end of the header), an
// optional "__metadata__" map of strings, then the tensor data, little
// endian and row-major.
//
// Write puts tensors in sorted name order, writes the JSON with sorted keys
// and pads the header with spaces to a multiple of 8 bytes, so the same
// tensors always give the same bytes. PyTorch's safetensors.torch.load_file
// reads the result.
package safetensors

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
)

// DType is a safetensors element type name.
type DType string

// The element types this package converts.
const (
	F32 DType = "F32"
	F64 DType = "F64"
	I32 DType = "I32"
	I64 DType = "I64"
	U8  DType = "U8"
)

// Size is the byte size of one element, 0 for an unknown type.
func (d DType) Size() int {
	switch d {
	case F32, I32:
		return 4
	case F64, I64:
		return 8
	case U8:
		return 1
	}
	return 0
}

// Tensor is one tensor: its type, its shape, and its little-endian data.
type Tensor struct {
	DType DType
	Shape []int
	Data  []byte
}

// numel is the product of the shape (1 for a scalar).
func (t Tensor) numel() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// FromFloat32 makes an F32 tensor of the given shape.
func FromFloat32(shape []int, x []float32) Tensor {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return Tensor{DType: F32, Shape: slices.Clone(shape), Data: b}
}

// FromFloat64 makes an F64 tensor of the given shape.
func FromFloat64(shape []int, x []float64) Tensor {
	b := make([]byte, 8*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return Tensor{DType: F64, Shape: slices.Clone(shape), Data: b}
}

// FromInt32 makes an I32 tensor of the given shape.
func FromInt32(shape []int, x []int32) Tensor {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	}
	return Tensor{DType: I32, Shape: slices.Clone(shape), Data: b}
}

// FromUint8 makes a U8 tensor of the given shape.
func FromUint8(shape []int, x []uint8) Tensor {
	return Tensor{DType: U8, Shape: slices.Clone(shape), Data: slices.Clone(x)}
}

// Float32 returns the elements of an F32 or F64 tensor as float32.
func (t Tensor) Float32() ([]float32, error) { return floats[float32](t) }

// Float64 returns the elements of an F32 or F64 tensor as float64.
func (t Tensor) Float64() ([]float64, error) { return floats[float64](t) }

// floats decodes the elements of an F32 or F64 tensor as D.
func floats[D float32 | float64](t Tensor) ([]D, error) {
	var out []D
	switch t.DType {
	case F32:
		out = make([]D, len(t.Data)/4)
		for i := range out {
			out[i] = D(math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:])))
		}
	case F64:
		out = make([]D, len(t.Data)/8)
		for i := range out {
			out[i] = D(math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:])))
		}
	default:
		return nil, fmt.Errorf("safetensors: %s tensor is not a float tensor", t.DType)
	}
	return out, nil
}

// Int32 returns the elements of an I32 tensor.
func (t Tensor) Int32() ([]int32, error) {
	if t.DType != I32 {
		return nil, fmt.Errorf("safetensors: %s tensor is not I32", t.DType)
	}
	out := make([]int32, len(t.Data)/4)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return out, nil
}

// entry is one tensor's header record.
type entry struct {
	DType   DType    `json:"dtype"`
	Shape   []int    `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// maxHeader bounds the JSON header (the format's own limit is 100 MB).
const maxHeader = 100 << 20

// Write writes the tensors, in sorted name order, and the metadata (may be
// nil) to w.
func Write(w io.Writer, tensors map[string]Tensor, meta map[string]string) error {
	names := make([]string, 0, len(tensors))
	for name := range tensors {
		if name == "__metadata__" {
			return errors.New(`safetensors: "__metadata__" is not a tensor name`)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	header := make(map[string]any, len(names)+1)
	var off int64
	for _, name := range names {
		t := tensors[name]
		if t.DType.Size() == 0 {
			return fmt.Errorf("safetensors: tensor %q has unsupported dtype %q", name, t.DType)
		}
		if want := t.numel() * t.DType.Size(); want != len(t.Data) {
			return fmt.Errorf("safetensors: tensor %q of shape %v has %d bytes; want %d", name, t.Shape, len(t.Data), want)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[name] = entry{DType: t.DType, Shape: shape, Offsets: [2]int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
	}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	js, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("safetensors: encode header: %w", err)
	}
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(js)))
	if _, err := w.Write(n[:]); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	if _, err := w.Write(js); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	for _, name := range names {
		if _, err := w.Write(tensors[name].Data); err != nil {
			return fmt.Errorf("safetensors: write %s: %w", name, err)
		}
	}
	return nil
}

// WriteFile writes a safetensors file and syncs it to disk before closing.
func WriteFile(path string, tensors map[string]Tensor, meta map[string]string) error {
	_, err := WriteFileSum(path, tensors, meta)
	return err
}

// WriteFileSum is WriteFile that also returns the sha256 of the file's
// bytes, hex (ReadFile gives the same in File.SHA256).
func WriteFileSum(path string, tensors map[string]Tensor, meta map[string]string) (sum string, err error) {
	fh, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("safetensors: %w", err)
	}
	defer func() {
		if cerr := fh.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("safetensors: %w", cerr)
		}
	}()
	// One buffered write per file: checkpoints are large and mostly data.
	var buf bytes.Buffer
	if err := Write(&buf, tensors, meta); err != nil {
		return "", err
	}
	if _, err := fh.Write(buf.Bytes()); err != nil {
		return "", fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := fh.Sync(); err != nil {
		return "", fmt.Errorf("safetensors: sync %s: %w", path, err)
	}
	h := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(h[:]), nil
}

// File is a parsed safetensors file.
type File struct {
	Tensors  map[string]Tensor // Data slices point into the file's bytes
	Metadata map[string]string
	SHA256   string // of the file's bytes, hex; set by ReadFile
}

// Info describes one tensor of a header: its type, shape and the byte
// range of its data after the header.
type Info struct {
	DType   DType
	Shape   []int
	Offsets [2]int64
}

// Header is a parsed safetensors header.
type Header struct {
	Tensors  map[string]Info
	Metadata map[string]string
	// DataStart is the offset of the data in the file (8 + header length).
	DataStart int64
}

// maxElems bounds a tensor's element count (2^48: far beyond any file).
const maxElems = 1 << 48

// numel multiplies a shape out, refusing negative dimensions and overflow.
func numel(shape []int) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 || d > maxElems {
			return 0, false
		}
		if d != 0 && n > maxElems/int64(d) {
			return 0, false
		}
		n *= int64(d)
	}
	return n, true
}

// ParseHeader parses and checks the header at the start of data, for a
// file of fileSize bytes (data may hold just the header): every dtype is
// known, every shape is sane, every tensor's offsets hold exactly its
// shape and lie inside the file, and no two tensors overlap.
func ParseHeader(data []byte, fileSize int64) (Header, error) {
	if len(data) < 8 || fileSize < 8 {
		return Header{}, errors.New("safetensors: file shorter than its 8-byte header length")
	}
	n := binary.LittleEndian.Uint64(data[:8])
	if n > maxHeader || n > uint64(fileSize-8) || n > uint64(len(data)-8) {
		return Header{}, fmt.Errorf("safetensors: header length %d does not fit a file of %d bytes", n, fileSize)
	}
	js := data[8 : 8+n]
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(js, &raw); err != nil {
		return Header{}, fmt.Errorf("safetensors: header: %w", err)
	}
	if raw == nil {
		return Header{}, errors.New("safetensors: header is not a JSON object")
	}
	bodyLen := fileSize - 8 - int64(n)
	h := Header{Tensors: make(map[string]Info, len(raw)), DataStart: 8 + int64(n)}
	type span struct {
		lo, hi int64
		name   string
	}
	var spans []span
	for name, v := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(v, &h.Metadata); err != nil {
				return Header{}, fmt.Errorf("safetensors: metadata: %w", err)
			}
			continue
		}
		var e entry
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return Header{}, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		size := e.DType.Size()
		if size == 0 {
			return Header{}, fmt.Errorf("safetensors: tensor %q has unsupported dtype %q", name, e.DType)
		}
		if e.Shape == nil {
			return Header{}, fmt.Errorf("safetensors: tensor %q has no shape", name)
		}
		elems, ok := numel(e.Shape)
		lo, hi := e.Offsets[0], e.Offsets[1]
		if !ok || lo < 0 || hi < lo || hi > bodyLen || hi-lo != elems*int64(size) {
			return Header{}, fmt.Errorf("safetensors: tensor %q: offsets %v do not hold shape %v of %s in %d data bytes",
				name, e.Offsets, e.Shape, e.DType, bodyLen)
		}
		h.Tensors[name] = Info{DType: e.DType, Shape: e.Shape, Offsets: e.Offsets}
		if hi > lo {
			spans = append(spans, span{lo, hi, name})
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
	for i := 1; i < len(spans); i++ {
		if spans[i].lo < spans[i-1].hi {
			return Header{}, fmt.Errorf("safetensors: tensors %q and %q overlap", spans[i-1].name, spans[i].name)
		}
	}
	return h, nil
}

// ReadHeader reads and checks only the header of a safetensors file, so a
// caller can check the shapes before it allocates anything.
func ReadHeader(path string) (Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, fmt.Errorf("safetensors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Header{}, fmt.Errorf("safetensors: %w", err)
	}
	var lenb [8]byte
	if _, err := io.ReadFull(f, lenb[:]); err != nil {
		return Header{}, fmt.Errorf("safetensors: %s: file shorter than its 8-byte header length", path)
	}
	n := binary.LittleEndian.Uint64(lenb[:])
	if n > maxHeader || n > uint64(st.Size()-8) {
		return Header{}, fmt.Errorf("safetensors: %s: header length %d does not fit a file of %d bytes", path, n, st.Size())
	}
	buf := make([]byte, 8+n)
	copy(buf, lenb[:])
	if _, err := io.ReadFull(f, buf[8:]); err != nil {
		return Header{}, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	h, err := ParseHeader(buf, st.Size())
	if err != nil {
		return Header{}, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// Parse reads a safetensors file held in data. It checks the header (see
// ParseHeader).
func Parse(data []byte) (File, error) {
	h, err := ParseHeader(data, int64(len(data)))
	if err != nil {
		return File{}, err
	}
	body := data[h.DataStart:]
	f := File{Tensors: make(map[string]Tensor, len(h.Tensors)), Metadata: h.Metadata}
	for name, e := range h.Tensors {
		lo, hi := e.Offsets[0], e.Offsets[1]
		f.Tensors[name] = Tensor{DType: e.DType, Shape: e.Shape, Data: body[lo:hi:hi]}
	}
	return f, nil
}

// ReadFile reads and parses a safetensors file.
func ReadFile(path string) (File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("safetensors: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", path, err)
	}
	h := sha256.Sum256(data)
	f.SHA256 = hex.EncodeToString(h[:])
	return f, nil
}

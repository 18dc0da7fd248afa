package sharding

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// This file reads the framing of an Arrow IPC file in place: the messages of
// the stream inside it and the footer's block list. arrow-go decodes the
// messages themselves (ipc.NewReaderFromMessageReader), but allocates
// slices sized by flatbuffer vector lengths, so a corrupt length could ask
// for terabytes before any bounds check fails; every message's metadata is
// therefore checked here first, with every vector arrow-go sizes an
// allocation by bounded by the metadata's own size.

// Message header types (Arrow's MessageHeader union).
const (
	msgSchema     = 1
	msgDictionary = 2
	msgRecord     = 3
)

// block locates one message in the file, as the footer's Block does:
// meta counts the 8-byte prefix and the padded metadata.
type block struct {
	offset int64
	meta   int64
	body   int64
}

// fbTable is a flatbuffer table inside buf, with checked accessors.
type fbTable struct {
	buf []byte
	pos int // the table
	vt  int // its vtable
	nvt int // fields in the vtable
}

var errFlatbuffer = errors.New("flatbuffer reaches outside its buffer")

func u32(buf []byte, p int) (int, error) {
	if p < 0 || p > len(buf)-4 {
		return 0, errFlatbuffer
	}
	return int(binary.LittleEndian.Uint32(buf[p:])), nil
}

func u16(buf []byte, p int) (int, error) {
	if p < 0 || p > len(buf)-2 {
		return 0, errFlatbuffer
	}
	return int(binary.LittleEndian.Uint16(buf[p:])), nil
}

func fbTableAt(buf []byte, pos int) (fbTable, error) {
	so, err := u32(buf, pos)
	if err != nil {
		return fbTable{}, err
	}
	vt := pos - int(int32(uint32(so)))
	size, err := u16(buf, vt)
	if err != nil || size < 4 || size%2 != 0 || vt+size > len(buf) {
		return fbTable{}, errFlatbuffer
	}
	return fbTable{buf: buf, pos: pos, vt: vt, nvt: (size - 4) / 2}, nil
}

func fbRoot(buf []byte) (fbTable, error) {
	off, err := u32(buf, 0)
	if err != nil {
		return fbTable{}, err
	}
	return fbTableAt(buf, off)
}

// field returns the position of field slot, or 0 if it is absent.
func (t fbTable) field(slot int, size int) (int, error) {
	if slot >= t.nvt {
		return 0, nil
	}
	off, _ := u16(t.buf, t.vt+4+2*slot)
	if off == 0 {
		return 0, nil
	}
	p := t.pos + off
	if p+size > len(t.buf) {
		return 0, errFlatbuffer
	}
	return p, nil
}

func (t fbTable) scalar(slot, size int) (uint64, error) {
	p, err := t.field(slot, size)
	if err != nil || p == 0 {
		return 0, err
	}
	var b [8]byte
	copy(b[:], t.buf[p:p+size])
	return binary.LittleEndian.Uint64(b[:]), nil
}

// ref follows the offset in field slot; 0 if absent.
func (t fbTable) ref(slot int) (int, error) {
	p, err := t.field(slot, 4)
	if err != nil || p == 0 {
		return 0, err
	}
	off, _ := u32(t.buf, p)
	if off == 0 || p+off > len(t.buf)-4 {
		return 0, errFlatbuffer
	}
	return p + off, nil
}

func (t fbTable) table(slot int) (fbTable, bool, error) {
	p, err := t.ref(slot)
	if err != nil || p == 0 {
		return fbTable{}, false, err
	}
	sub, err := fbTableAt(t.buf, p)
	return sub, err == nil, err
}

// vector returns the first element and the length of the vector in field
// slot, whose elements have elem bytes, checking that it fits.
func (t fbTable) vector(slot, elem int) (start, n int, err error) {
	p, err := t.ref(slot)
	if err != nil || p == 0 {
		return 0, 0, err
	}
	n, _ = u32(t.buf, p)
	if n > (len(t.buf)-p-4)/elem {
		return 0, 0, fmt.Errorf("vector of %d elements in %d bytes of metadata: %w", n, len(t.buf), errFlatbuffer)
	}
	return p + 4, n, nil
}

// tables checks every table of a vector of tables with check.
func (t fbTable) tables(slot int, check func(fbTable) error) error {
	start, n, err := t.vector(slot, 4)
	if err != nil {
		return err
	}
	for i := range n {
		p := start + 4*i
		off, _ := u32(t.buf, p)
		sub, err := fbTableAt(t.buf, p+off)
		if err != nil {
			return err
		}
		if err := check(sub); err != nil {
			return err
		}
	}
	return nil
}

func checkKeyValues(t fbTable, slot int) error {
	return t.tables(slot, func(kv fbTable) error {
		for s := range 2 {
			if _, _, err := kv.vector(s, 1); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkField checks a schema Field and its children, depth levels deep at
// most.
func checkField(f fbTable, depth int) error {
	if depth > 32 {
		return errors.New("schema nests deeper than 32 levels")
	}
	if _, _, err := f.vector(0, 1); err != nil { // name
		return err
	}
	if err := checkKeyValues(f, 6); err != nil {
		return err
	}
	return f.tables(5, func(c fbTable) error { return checkField(c, depth+1) })
}

// parseMessage checks a message's metadata and returns its header type and
// body length.
func parseMessage(meta []byte) (typ int, bodyLen int64, err error) {
	m, err := fbRoot(meta)
	if err != nil {
		return 0, 0, err
	}
	ht, err := m.scalar(1, 1)
	if err != nil {
		return 0, 0, err
	}
	bl, err := m.scalar(3, 8)
	if err != nil {
		return 0, 0, err
	}
	if err := checkKeyValues(m, 4); err != nil {
		return 0, 0, err
	}
	h, ok, err := m.table(2)
	if err != nil || !ok {
		return 0, 0, errors.Join(errors.New("message has no header"), err)
	}
	switch ht {
	case msgSchema:
		// arrow-go byte-swaps big-endian buffers in place, which would
		// write to the read-only mapping: glmkit writes little-endian.
		if e, err := h.scalar(0, 2); err != nil || e != 0 {
			return 0, 0, errors.Join(fmt.Errorf("schema endianness %d is not little-endian", e), err)
		}
		if err := h.tables(1, func(f fbTable) error { return checkField(f, 0) }); err != nil {
			return 0, 0, err
		}
		if err := checkKeyValues(h, 2); err != nil {
			return 0, 0, err
		}
		if _, _, err := h.vector(3, 8); err != nil {
			return 0, 0, err
		}
	case msgDictionary, msgRecord:
		rb := h
		if ht == msgDictionary {
			if rb, ok, err = h.table(1); err != nil || !ok {
				return 0, 0, errors.Join(errors.New("dictionary batch has no data"), err)
			}
		}
		// nodes and buffers are vectors of 16-byte structs, variadic
		// buffer counts of int64.
		for _, v := range [...]struct{ slot, elem int }{{1, 16}, {2, 16}, {4, 8}} {
			if _, _, err := rb.vector(v.slot, v.elem); err != nil {
				return 0, 0, err
			}
		}
	default:
		return 0, 0, fmt.Errorf("unexpected message type %d", ht)
	}
	return int(ht), int64(bl), nil
}

// footerBlocks reads the record batch blocks of the file's footer.
func footerBlocks(data []byte) ([]block, error) {
	n := len(data)
	size, err := u32(data, n-10)
	if err != nil || size <= 0 || size > n-18 {
		return nil, errors.New("invalid footer length")
	}
	ft, err := fbRoot(data[n-10-size : n-10])
	if err != nil {
		return nil, fmt.Errorf("footer: %w", err)
	}
	start, nb, err := ft.vector(3, 24)
	if err != nil {
		return nil, fmt.Errorf("footer: %w", err)
	}
	blocks := make([]block, nb)
	for i := range blocks {
		p := ft.buf[start+24*i:]
		blocks[i] = block{
			offset: int64(binary.LittleEndian.Uint64(p)),
			meta:   int64(int32(binary.LittleEndian.Uint32(p[8:]))),
			body:   int64(binary.LittleEndian.Uint64(p[16:])),
		}
	}
	return blocks, nil
}

// mappedMessages is an ipc.MessageReader over the Arrow IPC stream inside
// a mapped file: each message's metadata and body are slices of the
// mapping, so the arrays that ipc.Reader builds on them point into the
// file. It records where each record batch message lies.
type mappedMessages struct {
	data    []byte
	pos     int
	records []block
	refs    atomic.Int64
	msg     *ipc.Message
}

// Message returns the next message; io.EOF at the end-of-stream marker.
func (m *mappedMessages) Message() (*ipc.Message, error) {
	data, pos := m.data, m.pos
	if pos > len(data)-8 {
		return nil, fmt.Errorf("stream truncated at offset %d (no end-of-stream marker)", pos)
	}
	if binary.LittleEndian.Uint32(data[pos:]) != 0xFFFFFFFF {
		return nil, fmt.Errorf("no message continuation marker at offset %d", pos)
	}
	n := int(int32(binary.LittleEndian.Uint32(data[pos+4:])))
	if n == 0 {
		return nil, io.EOF
	}
	start := pos + 8
	if n < 8 || n > len(data)-start || (start+n)%8 != 0 {
		return nil, fmt.Errorf("message at offset %d: invalid metadata length %d", pos, n)
	}
	typ, bodyLen, err := parseMessage(data[start : start+n])
	if err != nil {
		return nil, fmt.Errorf("message at offset %d: %w", pos, err)
	}
	start += n
	if bodyLen < 0 || bodyLen%8 != 0 || bodyLen > int64(len(data)-start) {
		return nil, fmt.Errorf("message at offset %d: invalid body length %d", pos, bodyLen)
	}
	end := start + int(bodyLen)
	if typ == msgRecord {
		m.records = append(m.records, block{offset: int64(pos), meta: int64(n + 8), body: bodyLen})
	}
	if m.msg != nil {
		m.msg.Release()
	}
	m.msg = ipc.NewMessage(memory.NewBufferBytes(data[pos+8:start:start]), memory.NewBufferBytes(data[start:end:end]))
	m.pos = end
	return m.msg, nil
}

// Retain adds a reference.
func (m *mappedMessages) Retain() { m.refs.Add(1) }

// Release drops a reference; the last one releases the current message.
func (m *mappedMessages) Release() {
	if m.refs.Add(-1) == 0 && m.msg != nil {
		m.msg.Release()
		m.msg = nil
	}
}

package safetensors

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	in := map[string]Tensor{
		"b.weight": FromFloat32([]int{2, 3}, []float32{1, 2, 3, 4, 5, -6.5}),
		"a.ids":    FromInt32([]int{3}, []int32{-1, 0, 7}),
		"c.mask":   FromUint8([]int{2, 2}, []uint8{0, 1, 1, 0}),
		"d.loss":   FromFloat64(nil, []float64{3.25}),
	}
	var buf bytes.Buffer
	if err := Write(&buf, in, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	n := binary.LittleEndian.Uint64(raw)
	if (8+n)%8 != 0 {
		t.Errorf("header length %d leaves the data unaligned", n)
	}
	hdr := string(raw[8 : 8+n])
	if !(strings.Index(hdr, `"a.ids"`) < strings.Index(hdr, `"b.weight"`) && strings.Index(hdr, `"b.weight"`) < strings.Index(hdr, `"c.mask"`)) {
		t.Errorf("header keys not sorted: %s", hdr)
	}
	var again bytes.Buffer
	Write(&again, in, map[string]string{"format": "pt"})
	if !bytes.Equal(raw, again.Bytes()) {
		t.Error("two writes of the same tensors differ")
	}
	f, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["format"] != "pt" || len(f.Tensors) != len(in) {
		t.Fatalf("parsed %+v", f)
	}
	for name, want := range in {
		got := f.Tensors[name]
		if got.DType != want.DType || !slices.Equal(got.Data, want.Data) || len(got.Shape) != len(want.Shape) {
			t.Errorf("%s: got %+v; want %+v", name, got, want)
		}
	}
	x, _ := f.Tensors["b.weight"].Float64()
	if !slices.Equal(x, []float64{1, 2, 3, 4, 5, -6.5}) {
		t.Errorf("Float64 = %v", x)
	}
	ids, _ := f.Tensors["a.ids"].Int32()
	if !slices.Equal(ids, []int32{-1, 0, 7}) {
		t.Errorf("Int32 = %v", ids)
	}
}

func TestParseErrors(t *testing.T) {
	var buf bytes.Buffer
	Write(&buf, map[string]Tensor{"x": FromFloat32([]int{2}, []float32{1, 2})}, nil)
	good := buf.Bytes()
	for name, data := range map[string][]byte{
		"short":     good[:4],
		"huge":      append([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, good[8:]...),
		"truncated": good[:len(good)-1],
		"badjson":   append(append([]byte{}, good[:8]...), bytes.Repeat([]byte{'{'}, len(good)-8)...),
	} {
		if _, err := Parse(data); err == nil {
			t.Errorf("%s: Parse accepted a bad file", name)
		}
	}
	if err := Write(&buf, map[string]Tensor{"x": {DType: F32, Shape: []int{3}, Data: make([]byte, 8)}}, nil); err == nil {
		t.Error("Write accepted data of the wrong size")
	}
}

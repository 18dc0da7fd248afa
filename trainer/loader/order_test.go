package loader

import (
	"math"
	"slices"
	"testing"
)

func TestPermBijection(t *testing.T) {
	check := func(n, key uint64) {
		p := NewPerm(n, key)
		seen := make([]bool, n)
		for i := range n {
			x := p.At(i)
			if x >= n || seen[x] {
				t.Fatalf("NewPerm(%d, %d).At(%d) = %d: out of range or repeated", n, key, i, x)
			}
			seen[x] = true
		}
	}
	for n := uint64(0); n <= 300; n++ {
		for key := uint64(0); key < 4; key++ {
			check(n, key)
		}
	}
	for _, n := range []uint64{1000, 4096, 4097, 65537, 1<<20 + 3} {
		check(n, n*31)
	}
}

// TestPermGolden pins the permutation: the shuffle order of every run is
// derived from it, so a change here changes what resumed runs read. Do not
// update these values to make the test pass; that is a format change.
func TestPermGolden(t *testing.T) {
	got := make([]uint64, 10)
	p := NewPerm(10, 42)
	for i := range got {
		got[i] = p.At(uint64(i))
	}
	if want := permGolden10; !slices.Equal(got, want) {
		t.Errorf("NewPerm(10, 42) = %v; want %v", got, want)
	}
	big := NewPerm(1_000_000_007, 7)
	for i, want := range permGoldenBig {
		if x := big.At(uint64(i)); x != want {
			t.Errorf("NewPerm(1e9+7, 7).At(%d) = %d; want %d", i, x, want)
		}
	}
}

var (
	permGolden10  = []uint64{2, 9, 1, 5, 3, 7, 0, 4, 8, 6}
	permGoldenBig = []uint64{587657501, 793835547, 215558164, 528325324, 730138491, 407656804}
)

// TestPermUniform checks that the position of an element is uniform over
// keys and that the order of two elements is a coin flip.
func TestPermUniform(t *testing.T) {
	const n, keys = 8, 32000
	var count [n]int
	less := 0
	for key := uint64(0); key < keys; key++ {
		p := NewPerm(n, key)
		count[p.At(0)]++
		if p.At(0) < p.At(1) {
			less++
		}
	}
	chi2 := 0.0
	for _, c := range count {
		d := float64(c) - keys/n
		chi2 += d * d / (keys / n)
	}
	if chi2 > 30 { // 7 degrees of freedom: p ≈ 1e-4
		t.Errorf("At(0) over %d keys lands at %v: χ² = %.1f", keys, count, chi2)
	}
	if f := float64(less) / keys; math.Abs(f-0.5) > 0.02 {
		t.Errorf("At(0) < At(1) for %.3f of keys; want 0.5", f)
	}
}

func TestQuantize(t *testing.T) {
	for _, c := range []struct {
		w    []float64
		want []uint64
	}{
		{[]float64{0.7, 0.3}, []uint64{7000, 3000}},
		{[]float64{7, 3}, []uint64{7000, 3000}},
		{[]float64{1, 1, 1}, []uint64{3334, 3333, 3333}},
		{[]float64{1, 1e-9}, []uint64{9999, 1}},
		{[]float64{5}, []uint64{10000}},
	} {
		got, err := quantize(c.w)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("quantize(%v) = %v, %v; want %v", c.w, got, err, c.want)
		}
	}
	for _, w := range [][]float64{{0, 1}, {-1, 2}, {math.NaN()}, {math.Inf(1)}} {
		if _, err := quantize(w); err == nil {
			t.Errorf("quantize(%v) did not fail", w)
		}
	}
}

// TestMixerExact checks that every block holds exactly each dataset's
// parts, and that each dataset's draws come in order 0, 1, 2, …, with none
// repeated or skipped.
func TestMixerExact(t *testing.T) {
	parts := []uint64{5000, 3000, 1999, 1}
	m := newMixer(9, parts)
	c := m.newCache()
	const blocks = 3
	draws := make([][]bool, len(parts))
	for d := range draws {
		draws[d] = make([]bool, blocks*parts[d])
	}
	for b := range uint64(blocks) {
		var n [4]uint64
		for o := range uint64(MixBlock) {
			d, k := m.at(b*MixBlock+o, c)
			n[d]++
			if k != b*parts[d]+n[d]-1 {
				t.Fatalf("position %d: dataset %d draw %d; want %d (draws in position order)", b*MixBlock+o, d, k, b*parts[d]+n[d]-1)
			}
			if k >= uint64(len(draws[d])) || draws[d][k] {
				t.Fatalf("position %d: dataset %d draw %d out of range or repeated", b*MixBlock+o, d, k)
			}
			draws[d][k] = true
		}
		if !slices.Equal(n[:], parts) {
			t.Fatalf("block %d holds %v; want %v", b, n, parts)
		}
	}
}

func TestOrderMaskCopies(t *testing.T) {
	o := order{seed: 3, ds: []dsOrder{{units: 50, copies: 4}}, epochLen: 50}
	for e := range uint64(6) {
		seen := make(map[int64]bool)
		for p := range uint64(50) {
			_, row := o.at(e*50+p, nil)
			if uint64(row)%4 != e%4 || seen[row] {
				t.Fatalf("epoch %d position %d: row %d (copy %d, want copy %d; repeated %v)", e, p, row, row%4, e%4, seen[row])
			}
			seen[row] = true
		}
	}
}

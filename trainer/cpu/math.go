package cpu

import "math"

// expInPlace sets x[i] = exp(x[i]). float64 uses math.Exp (the gradient
// checks need it exact); float32 uses exp32, which is several times faster
// and within 2 ulp.
func expInPlace[T Float](x []T) {
	switch v := any(x).(type) {
	case []float32:
		exp32s(v, v)
	case []float64:
		for i, e := range v {
			v[i] = math.Exp(e)
		}
	}
}

// exp32 is Cephes' expf: exp(x) = 2^n·e^r with n = round(x·log₂e),
// |r| ≤ ln2/2 and a degree-6 polynomial for e^r; within 2 ulp. It returns
// 0 below −87.3 (where expf underflows to subnormals) and +Inf above 88.7.
func exp32(x float32) float32 {
	switch {
	case x < -87.33654:
		return 0
	case x > 88.72283:
		return float32(math.Inf(1))
	case x != x:
		return x
	}
	y, n := expReduced(x)
	if n < -126 { // 2^n is subnormal: scale in two steps
		return y * math.Float32frombits(uint32(n+127+64)<<23) * 0x1p-64
	}
	if n > 127 {
		return y * 2 * math.Float32frombits(uint32(n-1+127)<<23)
	}
	return y * math.Float32frombits(uint32(n+127)<<23)
}

// expReduced is the body of exp32 and exp32s, small enough to be inlined
// into exp32s's loop: n = round(x·log₂e) and y = e^r for r = x − n·ln2
// (Cephes' two-part ln2 and degree-6 polynomial), so that exp(x) = 2^n·y.
func expReduced(x float32) (y float32, n int32) {
	// Adding 1.5·2²³ rounds x·log₂e to an integer, which lands in the low
	// mantissa bits.
	const magic = 12582912
	t := x*1.44269504088896341 + magic
	n = int32(math.Float32bits(t) - math.Float32bits(magic))
	nf := t - magic
	r := x - nf*0.693359375 - nf*-2.12194440e-4
	y = ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	return y*r*r + r + 1, n
}

// exp32s sets dst[i] = exp32(src[i]) (dst may alias src). exp32 is too
// large for the compiler to inline into a loop, so exp32s clamps the range
// itself around expReduced, which is inlined (its cost is just under the
// inliner's budget of 80: keep it so, or the loop makes a call per
// element). It returns +Inf from 88.38 (127.5·ln2) on, a little before
// expf overflows; softmax and tanh never come near.
func exp32s(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		under := x < -87.33654
		if x > 88.37626 {
			x = 88.72283 // n = 128: 2^n is +Inf
		}
		if under {
			x = 0
		}
		y, n := expReduced(x)
		y *= math.Float32frombits(uint32(n+127) << 23)
		if under {
			y = 0
		}
		dst[i] = y
	}
}

// is64 reports whether T is float64; ops test it once, outside their loops.
func is64[T Float]() bool {
	var z T
	_, ok := any(z).(float64)
	return ok
}

// tanhInPlace sets x[i] = tanh(x[i]): math.Tanh for float64, and
// 1 − 2/(exp(2x)+1) through exp32s for float32 (within a few ulp of 1 in
// absolute terms, which is what 0.5·x·(1+tanh) needs).
func tanhInPlace[T Float](x []T) {
	switch v := any(x).(type) {
	case []float32:
		for i, e := range v {
			v[i] = 2 * min(max(e, -9), 9)
		}
		exp32s(v, v)
		for i, e := range v {
			v[i] = 1 - 2/(e+1)
		}
	case []float64:
		for i, e := range v {
			v[i] = math.Tanh(e)
		}
	}
}

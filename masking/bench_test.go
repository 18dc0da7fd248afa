package masking

import "testing"

// BenchmarkMask masks packed 512-token samples, reusing one Sample.
func BenchmarkMask(b *testing.B) {
	data := make([]byte, 511)
	var r rng
	r.seed(9, 9, 9)
	for i := range data {
		data[i] = byte(r.intn(256))
		if data[i]%17 == 0 { // one long document: no eos inside
			data[i]++
		}
	}
	src := synth(data)[:512]
	for _, bc := range []struct {
		name string
		w    [3]float64
	}{{"token", [3]float64{1, 0, 0}}, {"sentence", [3]float64{0, 1, 0}}, {"document", [3]float64{0, 0, 1}}, {"mix", [3]float64{0.4, 0.3, 0.3}}} {
		b.Run(bc.name, func(b *testing.B) {
			m, err := New(testConfig(bc.w, true, 1))
			if err != nil {
				b.Fatal(err)
			}
			var s Sample
			b.ReportAllocs()
			b.SetBytes(int64(4 * len(src)))
			k := uint64(0)
			masked := 0
			for b.Loop() {
				if err := m.MaskTo(&s, k, 0, src); err != nil {
					b.Fatal(err)
				}
				masked += s.Masked()
				k++
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(k*uint64(len(src)))/sec, "tokens/s")
			b.ReportMetric(float64(k)/sec, "samples/s")
			b.ReportMetric(100*float64(masked)/float64(int(k)*len(src)), "mask%")
		})
	}
}

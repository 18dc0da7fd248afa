package masking_test

import (
	"fmt"

	"github.com/glmkit/glmkit/masking"
)

// A sample of two packed documents, masked with the token objective: Part A
// keeps the text with one [MASK] per span, Part B generates the spans after
// sop, and Source puts them back.
func Example() {
	ids := masking.SpecialIDs{Pad: 0, EOS: 0, CLS: 101, Mask: 103, Sep: 102, Unk: 100, SOP: 30522, EOP: 30523, GMask: 30524, SMask: 30525}
	cfg := masking.DefaultConfig()
	cfg.Weights = [3]float64{1, 0, 0} // token objective only
	cfg.IDs = ids
	cfg.Seed = 7
	m, err := masking.New(cfg)
	if err != nil {
		panic(err)
	}
	src := []int32{101, 2023, 2003, 1037, 2460, 6254, 1012, 0, 101, 2178, 2028, 2001, 2036, 2460, 1012, 0}
	s, err := m.Mask(0, 0, src)
	if err != nil {
		panic(err)
	}
	fmt.Println("valid:", s.Validate(ids, cfg.TaskMask) == nil)
	back, _ := s.Source(nil, ids)
	fmt.Println("source rebuilt:", fmt.Sprint(back) == fmt.Sprint(src))
	fmt.Printf("L=%d, length %d = L + 2·%d spans, sep %d\n", s.NSource, s.Len(), len(s.Spans), s.Sep)
	fmt.Print(s.String())
	// Output:
	// valid: true
	// source rebuilt: true
	// L=16, length 20 = L + 2·2 spans, sep 15
	// objective=token L=16 K=2 M=3 sep=15 len=20
	// idx    0   1   2    3    4    5   6 7   8    9    10   11   12   13   14 | 15    16    | 17    18   19
	// input  101 103 2003 1037 2460 103 0 101 2178 2028 2001 2036 2460 1012 0  | 30522 2023  | 30522 6254 1012
	// target 101 103 2003 1037 2460 103 0 101 2178 2028 2001 2036 2460 1012 0  | 2023  30523 | 6254  1012 30523
	// loss   0   0   0    0    0    0   0 0   0    0    0    0    0    0    0  | 1     1     | 1     1    1
	// pos    0   1   2    3    4    5   6 7   8    9    10   11   12   13   14 | 1     1     | 5     5    5
	// block  0   0   0    0    0    0   0 0   0    0    0    0    0    0    0  | 1     2     | 1     2    3
}

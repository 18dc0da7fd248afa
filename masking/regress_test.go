package masking

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the regression golden file (a change to it is a format change: bump FormatVersion)")

// TestRegression pins the seeded output of a fixed input, in the spirit of
// math/rand/v2's regress_test.go. Do not refresh the golden file to make a
// masking change pass: a change here changes every shard glmkit writes, so
// it must bump FormatVersion, which the file's first line records.
func TestRegression(t *testing.T) {
	src := synth([]byte("GLM: general language model pretraining with autoregressive blank infilling. " +
		"It masks spans; then it generates them. Packed documents follow each other"))
	var b strings.Builder
	fmt.Fprintf(&b, "format_version %d\n", FormatVersion)
	for _, tc := range []struct {
		w        [3]float64
		taskMask bool
	}{{[3]float64{1, 0, 0}, false}, {[3]float64{0, 1, 0}, true}, {[3]float64{0, 0, 1}, true}, {[3]float64{0.4, 0.3, 0.3}, true}} {
		m, err := New(testConfig(tc.w, tc.taskMask, 20221))
		if err != nil {
			t.Fatal(err)
		}
		for key := uint64(0); key < 3; key++ {
			for epoch := uint32(0); epoch < 2; epoch++ {
				s, err := m.Mask(key, epoch, src)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&b, "\n# weights=%v task_mask=%v key=%d epoch=%d\n%s", tc.w, tc.taskMask, key, epoch, s.String())
			}
		}
	}
	path := filepath.Join("..", "testdata", "golden", "masking", "regress.txt")
	got := b.String()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./masking -run TestRegression -update once to create it)", err)
	}
	if got != string(want) {
		_ = os.WriteFile(path+".got", []byte(got), 0o644)
		wantVersion, _, _ := strings.Cut(string(want), "\n")
		if wantVersion != fmt.Sprintf("format_version %d", FormatVersion) {
			t.Fatalf("golden file is for %q but FormatVersion is %d: refresh it with -update", wantVersion, FormatVersion)
		}
		t.Fatalf("seeded masking output changed; wrote %s.got. This is a format change: bump FormatVersion, then refresh with -update", path)
	}
}

package sharding

import (
	"fmt"
	"testing"

	"github.com/glmkit/glmkit/internal/glmtest"
)

// BenchmarkWrite writes rows of about 560 positions into one shard, in
// format 1 and 2, and reports row positions per second (the shard commit's
// fsync included).
func BenchmarkWrite(b *testing.B) {
	rows := glmtest.LongRows(b, 512, 500)
	for _, format := range []int{1, 2} {
		b.Run(fmt.Sprintf("format=%d", format), func(b *testing.B) {
			opts := Options{Meta: testMeta()}
			opts.Meta.FormatVersion = format
			var positions int64
			for b.Loop() {
				w, err := Create(b.TempDir(), opts)
				if err != nil {
					b.Fatal(err)
				}
				for i := range rows {
					if err := w.Write(&rows[i], uint64(i)); err != nil {
						b.Fatal(err)
					}
					positions += int64(rows[i].Len())
				}
				if _, err := w.Commit("shard-000000-0000.arrow"); err != nil {
					b.Fatal(err)
				}
				w.Close()
			}
			b.ReportMetric(float64(positions)/b.Elapsed().Seconds()/1e6, "Mpositions/s")
		})
	}
}

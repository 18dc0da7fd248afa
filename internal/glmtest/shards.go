package glmtest

import (
	"fmt"
	"testing"

	"github.com/glmkit/glmkit/masking"
)

// A ShardWriter is what WriteShards writes through: a *sharding.Writer
// (with F sharding.ShardFile), named by its methods because sharding's own
// tests use glmtest, which so cannot import it.
type ShardWriter[F any] interface {
	Write(s *masking.Sample, docID uint64) error
	Commit(name string) (F, error)
}

// WriteShards writes rows through w, row i with doc id docID(i), and
// commits a shard, named as a build names the shards of its task 0, after
// every perShard rows and after the last; it returns what each commit
// returned, in order: a test's build of made-up rows.
func WriteShards[F any](tb testing.TB, w ShardWriter[F], rows []masking.Sample, perShard int, docID func(i int) uint64) []F {
	tb.Helper()
	var shards []F
	for i := range rows {
		if err := w.Write(&rows[i], docID(i)); err != nil {
			tb.Fatal(err)
		}
		if (i+1)%perShard == 0 || i == len(rows)-1 {
			sf, err := w.Commit(fmt.Sprintf("shard-%06d-0000.arrow", len(shards)))
			if err != nil {
				tb.Fatal(err)
			}
			shards = append(shards, sf)
		}
	}
	return shards
}

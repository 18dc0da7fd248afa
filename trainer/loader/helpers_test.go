package loader

import (
	"testing"

	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/sharding"
)

func testMeta() sharding.Meta {
	c := masking.DefaultConfig()
	c.IDs = glmtest.IDs()
	return sharding.Meta{FormatVersion: sharding.FormatVersion, Tokenizer: "test", TokenizerSHA256: "00", VocabSize: 30592, Special: glmtest.IDs(), SeqLen: 512, MaskEpochs: 1, Masking: c}
}

// writeBuild writes rows as a build directory: shards of perShard rows and
// a manifest (meta: testMeta's unless opts sets one). Row i gets doc id i.
func writeBuild(tb testing.TB, dir string, rows []masking.Sample, perShard int, opts sharding.Options) *sharding.Manifest {
	tb.Helper()
	if opts.Meta.FormatVersion == 0 {
		opts.Meta = testMeta()
	}
	w, err := sharding.Create(dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Close()
	m := &sharding.Manifest{FormatVersion: opts.Meta.FormatVersion, Meta: opts.Meta, Config: []byte("{}"), Stats: []byte("{}"),
		Shards: glmtest.WriteShards(tb, w, rows, perShard, func(i int) uint64 { return uint64(i) })}
	m.Sum()
	if err := sharding.WriteManifest(dir, m); err != nil {
		tb.Fatal(err)
	}
	return m
}

func mustOpen(tb testing.TB, dir string, opts ...sharding.OpenOption) *sharding.Reader {
	tb.Helper()
	r, err := sharding.Open(dir, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

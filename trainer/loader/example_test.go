package loader_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/sharding"
	"github.com/glmkit/glmkit/trainer/loader"
)

// writeExampleBuild writes ten masked rows and a manifest into dir, as
// glmprep build does.
func writeExampleBuild(dir string) error {
	cfg := masking.DefaultConfig()
	cfg.IDs = masking.SpecialIDs{Pad: 0, EOS: 1, CLS: 2, Mask: 3, Sep: 4, Unk: 5, SOP: 6, EOP: 7, GMask: 8, SMask: 9}
	m, err := masking.New(cfg)
	if err != nil {
		return err
	}
	meta := sharding.Meta{FormatVersion: sharding.FormatVersion, Tokenizer: "example", TokenizerSHA256: "00",
		VocabSize: 128, Special: cfg.IDs, SeqLen: 64, MaskEpochs: 1, Masking: cfg}
	w, err := sharding.Create(dir, sharding.Options{Meta: meta})
	if err != nil {
		return err
	}
	defer w.Close()
	for i := range 10 {
		src := []int32{2}
		for j := range 20 + i {
			src = append(src, int32(10+j%50))
		}
		src = append(src, 1)
		s, err := m.Mask(uint64(i), 0, src)
		if err != nil {
			return err
		}
		if err := w.Write(&s, uint64(i)); err != nil {
			return err
		}
	}
	sf, err := w.Commit("shard-000000-0000.arrow")
	if err != nil {
		return err
	}
	man := &sharding.Manifest{FormatVersion: sharding.FormatVersion, Meta: meta, Shards: []sharding.ShardFile{sf}}
	man.Sum()
	return sharding.WriteManifest(dir, man)
}

func Example() {
	dir, err := os.MkdirTemp("", "glmkit-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := writeExampleBuild(dir); err != nil {
		log.Fatal(err)
	}

	r, err := sharding.Open(dir, sharding.VerifyHashes())
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	row, err := r.Row(3) // views of the mapped shard: no copy
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("row 3: %d positions, Part A %d, %v, first ids %v\n", row.Len(), row.Sep, row.Objective, row.Input.AppendTo(nil)[:3])

	// One epoch in batches of 4 on rank 0 of 1.
	l, err := loader.New(context.Background(), []loader.Source{{Reader: r}},
		loader.Options{Batch: 4, Seed: 1, Epochs: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	var b loader.Batch
	for {
		err := l.Next(&b)
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("batch of %d rows padded to %d\n", b.B, b.T)
	}
	// Output:
	// row 3: 31 positions, Part A 22, token, first ids [2 10 11]
	// batch of 4 rows padded to 33
	// batch of 4 rows padded to 33
	// batch of 2 rows padded to 32
}

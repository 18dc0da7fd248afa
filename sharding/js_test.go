package sharding

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/masking"
)

// wideIDs are special ids above 65,535, as a vocabulary of o200k's size has
// them: every row then holds ids that need 32 bits.
var wideIDs = masking.SpecialIDs{Pad: 0, EOS: 0, CLS: 101, Mask: 103, Sep: 102, Unk: 100, SOP: 200000, EOP: 200001, GMask: 200002, SMask: 200003}

// jsFormats writes one build for each way a shard can be stored: format 1,
// format 2 with narrow ids, format 2 with 32-bit ids (a vocabulary past
// 65,536), and format 2 with zstd and lz4 bodies.
func jsFormats(t *testing.T) map[string]string {
	t.Helper()
	builds := map[string]string{}
	for _, c := range []struct {
		name string
		meta func(*Meta)
		ids  masking.SpecialIDs
		comp string
	}{
		{"v1", func(m *Meta) { m.FormatVersion = 1 }, glmtest.IDs(), ""},
		{"v2", nil, glmtest.IDs(), ""},
		{"v2-wide", func(m *Meta) { m.VocabSize = 200064; m.Special = wideIDs; m.Masking.IDs = wideIDs }, wideIDs, ""},
		{"v2-zstd", nil, glmtest.IDs(), "zstd"},
		{"v2-lz4", nil, glmtest.IDs(), "lz4"},
	} {
		dir := t.TempDir()
		opts := Options{Meta: testMeta(), BatchRows: 16, Compression: c.comp}
		if c.meta != nil {
			c.meta(&opts.Meta)
		}
		writeBuild(t, dir, glmtest.RowsWithIDs(t, 40, c.ids, 90), 40, opts)
		builds[c.name] = dir
	}
	return builds
}

// TestArrowJSReadsEveryFormat reads every column of rows of each format
// with Apache Arrow JS and nodejs-polars and compares them with the Go
// reader, and shows that Arrow JS cannot read compressed bodies out of the
// box while polars can.
func TestArrowJSReadsEveryFormat(t *testing.T) {
	js := filepath.Join("..", "testdata", "js")
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed (.ci/run installs it)")
	}
	if _, err := os.Stat(filepath.Join(js, "node_modules", "apache-arrow")); err != nil {
		t.Skip("testdata/js/node_modules is missing: run `npm ci` in testdata/js (.ci/run does)")
	}
	types := map[string]string{
		"v1":      "input_ids:List<Int32> target_ids:List<Int32> loss_mask:List<Uint8> position_ids:List<Int32> block_position_ids:List<Int32>",
		"v2":      "input_ids:List<Uint16> target_ids:List<Uint16> loss_mask:List<Bool> position_ids:List<Uint16> block_position_ids:List<Uint16>",
		"v2-wide": "input_ids:List<Int32> target_ids:List<Int32> loss_mask:List<Bool> position_ids:List<Uint16> block_position_ids:List<Uint16>",
	}
	for name, dir := range jsFormats(t) {
		t.Run(name, func(t *testing.T) {
			r := mustOpen(t, dir)
			if _, err := r.Verify(t.Context()); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, r.Manifest().Shards[0].Name)
			compressed := strings.Contains(name, "zstd") || strings.Contains(name, "lz4")
			if compressed {
				b, err := exec.Command("node", filepath.Join(js, "read_arrow.js"), path, "0").CombinedOutput()
				if err == nil || !strings.Contains(string(b), "compressed but codec not found") {
					t.Errorf("Arrow JS on a %s shard: %v, %s; want the error that no codec is registered", name, err, b)
				}
			}
			rows := []int64{0, 5, 17, 39} // in the first, a middle and the last record batch
			args := []string{filepath.Join(js, "read_arrow.js"), path, "0,5,17,39", "polars"}
			if compressed {
				args[3] = "polars-only"
			}
			b, err := exec.Command("node", args...).Output()
			if err != nil {
				t.Fatalf("node %v: %v", args, err)
			}
			var all []struct {
				Fields []struct{ Name, Type string }
				Row    map[string]json.RawMessage
				Polars map[string]json.RawMessage
			}
			if err := json.Unmarshal(b, &all); err != nil || len(all) != len(rows) {
				t.Fatalf("node printed %d rows (%v)", len(all), err)
			}
			for k, row := range rows {
				got := all[k]
				var s masking.Sample
				if err := r.Sample(row, &s); err != nil {
					t.Fatal(err)
				}
				v, _ := r.Row(row)
				loss := make([]int, len(s.LossMask))
				for i, m := range s.LossMask {
					loss[i] = int(m)
				}
				want := map[string]any{"input_ids": s.Input, "target_ids": s.Target, "loss_mask": loss, "position_ids": s.Pos,
					"block_position_ids": s.BlockPos, "sep": s.Sep, "objective": s.Objective.String(), "doc_id": fmt.Sprint(v.DocID), "n_source": s.NSource}
				for col, w := range want {
					wj, _ := json.Marshal(w)
					if !compressed && string(got.Row[col]) != string(wj) {
						t.Errorf("row %d %s: Arrow JS %s, Go %s", row, col, got.Row[col], wj)
					}
					if string(got.Polars[col]) != string(wj) {
						t.Errorf("row %d %s: polars %s, Go %s", row, col, got.Polars[col], wj)
					}
				}
				if !compressed {
					var fields []string
					for _, f := range got.Fields[:5] {
						fields = append(fields, f.Name+":"+f.Type)
					}
					if w := strings.Fields(types[name]); !slices.Equal(fields, w) {
						t.Errorf("Arrow JS sees %v; want %v", fields, w)
					}
				}
			}
		})
	}
}

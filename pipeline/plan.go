package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/glmkit/glmkit/internal/atomicfile"
	"github.com/glmkit/glmkit/pipeline/parquettext"
	"github.com/glmkit/glmkit/sharding"
)

// Config is the part of a build's configuration that is not in
// sharding.Meta (tokenizer, seq_len, masking, mask epochs): how inputs are
// read, how shards are cut and how the build is split into tasks. Together
// with Meta it fixes the output bytes.
type Config struct {
	Tokenizer   string `json:"tokenizer"`             // the --tokenizer value (the manifest pins its sha256 in meta)
	Format      string `json:"format"`                // auto, text or jsonl
	DocBoundary string `json:"doc_boundary"`          // line, blank or file (plain text)
	TextField   string `json:"text_field"`            // JSON: dotted path of the text; several, comma-separated, are joined by a blank line
	MaxDocBytes int    `json:"max_doc_bytes"`         // longer records are skipped (counted as too_long)
	ShardRows   int64  `json:"shard_rows"`            // a new shard after this many rows (0: no limit)
	ShardBytes  int64  `json:"shard_bytes"`           // … or after this many bytes (0: no limit)
	Compression string `json:"compression"`           // none, zstd or lz4
	TaskBytes   int64  `json:"task_bytes"`            // uncompressed line-based files above this are split into byte ranges
	AllowEmpty  bool   `json:"allow_empty"`           // a build that writes no rows is complete (otherwise merge refuses it)
	MaxRecords  int64  `json:"max_records,omitempty"` // the first N records of the inputs only (0: all); see limitInputs
	JSONPath    string `json:"json_path,omitempty"`   // JSON documents: the dotted path to the records (see jsonDoc)
	// ValidFraction and Split make this build one of the two splits of a
	// held-out split: Split "valid" keeps the records whose split key
	// falls below ValidFraction, "train" the others (see splitRecords).
	ValidFraction float64 `json:"valid_fraction,omitempty"`
	Split         string  `json:"split,omitempty"`
}

// DefaultConfig returns the defaults of glmprep build.
func DefaultConfig() Config {
	return Config{Format: "auto", DocBoundary: "line", TextField: "text", MaxDocBytes: 64 << 20,
		ShardBytes: 256 << 20, Compression: "none", TaskBytes: 256 << 20}
}

// Validate reports the first thing wrong with c.
func (c *Config) Validate() error {
	switch {
	case c.DocBoundary != "line" && c.DocBoundary != "blank" && c.DocBoundary != "file":
		return fmt.Errorf("pipeline: --doc-boundary %q: want line, blank or file", c.DocBoundary)
	case !validFields(c.TextField):
		return fmt.Errorf("pipeline: --text-field %q: want field names or dotted paths such as meta.text, each once", c.TextField)
	case c.MaxDocBytes < 1:
		return fmt.Errorf("pipeline: --max-doc-bytes %d: want ≥ 1", c.MaxDocBytes)
	case c.ShardRows < 0 || c.ShardBytes < 0:
		return errors.New("pipeline: --shard-rows and --shard-bytes must be ≥ 0")
	case c.Compression != "none" && c.Compression != "zstd" && c.Compression != "lz4":
		return fmt.Errorf("pipeline: --compression %q: want none, zstd or lz4", c.Compression)
	case c.TaskBytes < 0:
		return errors.New("pipeline: --task-bytes must be ≥ 0 (0: one task per file)")
	case c.JSONPath != "" && !validFields(c.JSONPath) || strings.Contains(c.JSONPath, ","):
		return fmt.Errorf("pipeline: --json-path %q: want a dotted path of keys such as data or data.paragraphs", c.JSONPath)
	case c.Split != "" && c.Split != "train" && c.Split != "valid":
		return fmt.Errorf("pipeline: split %q: want train or valid", c.Split)
	case (c.Split != "") != (c.ValidFraction != 0) || c.ValidFraction < 0 || c.ValidFraction >= 1 || math.IsNaN(c.ValidFraction):
		return fmt.Errorf("pipeline: --valid-fraction %v: want a fraction between 0 and 1 (and a split, train or valid)", c.ValidFraction)
	case c.MaxRecords < 0:
		return fmt.Errorf("pipeline: --max-records %d: want ≥ 1 (0: every record)", c.MaxRecords)
	}
	return nil
}

// textFields are the paths of the text fields: TextField holds one, or
// several separated by commas, each a dotted path.
func (c *Config) textFields() [][]string {
	var fs [][]string
	for _, f := range strings.Split(c.TextField, ",") {
		fs = append(fs, strings.Split(f, "."))
	}
	return fs
}

func validFields(s string) bool {
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		if f == "" || strings.Contains(f, "..") || strings.HasPrefix(f, ".") || strings.HasSuffix(f, ".") || seen[f] {
			return false
		}
		seen[f] = true
	}
	return true
}

// Task is one independent unit of a build: a whole input, a byte range of
// a large uncompressed line-based input cut at line boundaries, or one row
// group of a Parquet input. Its output depends only on its range and the
// configuration.
type Task struct {
	Index int   `json:"index"`
	Input int   `json:"input"`      // index into Plan.Inputs
	Start int64 `json:"start"`      // first byte (Parquet: the row group)
	End   int64 `json:"end"`        // end byte, −1 for the end of the input (Parquet: row group + 1)
	Line  int64 `json:"first_line"` // line number of Start (Parquet: row number of the row group's first row)
	// SHA256 is the hash of the raw bytes the task reads, for a task that
	// reads part of its input (a byte range; a Parquet row group's column
	// chunk); a task of a whole input reads its input's SHA256.
	SHA256 string `json:"sha256,omitempty"`
	// MaxRecords, when > 0, ends the task after that many records (the
	// task where a --max-records build's N-th record falls).
	MaxRecords int64 `json:"max_records,omitempty"`
}

// Plan is a build planned before it runs (decisions.md §9): a pure function
// of the inputs and flags.
type Plan struct {
	FormatVersion int           `json:"format_version"`
	Meta          sharding.Meta `json:"meta"`
	Config        Config        `json:"config"`
	Inputs        []Input       `json:"inputs"`
	Tasks         []Task        `json:"tasks"`
	// Software is the binary that planned the build (BuildOptions.
	// Software): its tasks are run by the same one (sameSoftware).
	Software map[string]string `json:"software,omitempty"`

	// digest is the sha256 of the plan's compact JSON, set when it is
	// written or read back: each task record carries it, so a record
	// made under another plan (plan.json edited between tasks, a record
	// copied from another build) is not taken for this plan's.
	digest string
}

// setDigest sets p.digest from p's contents.
func (p *Plan) setDigest() error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	h := sha256.Sum256(b)
	p.digest = hex.EncodeToString(h[:])
	return nil
}

// PlanName is the plan's file name in a build directory.
const PlanName = "plan.json"

// makePlan cuts the inputs into tasks: one per input, except that an
// uncompressed text (line or blank boundaries) or JSON Lines input larger
// than 1.5 × TaskBytes is cut into ranges of nearly equal size close to
// TaskBytes, each ending just after a newline (after a blank line for blank
// boundaries), and a Parquet input gives a task per row group.
//
// An input it cuts gets its sha256 here, from the pass that finds the cuts
// (hashInputs leaves it out); the ranges are hashed by up to workers
// goroutines. progress, if not nil, is told the bytes of the first pass.
func makePlan(ctx context.Context, meta sharding.Meta, cfg Config, inputs []Input, workers int, progress func(int64)) (*Plan, error) {
	p := &Plan{FormatVersion: sharding.FormatVersion, Meta: meta, Config: cfg, Inputs: inputs}
	for i, in := range inputs {
		if in.Format == "parquet" {
			if strings.Contains(cfg.TextField, ",") {
				return nil, fmt.Errorf("pipeline: %s: Parquet input reads one string column; --text-field %q names several", in.Path, cfg.TextField)
			}
			f, err := parquettext.Open(in.Path, cfg.TextField)
			if err != nil {
				return nil, err
			}
			row := int64(1)
			for rg := range f.RowGroups() {
				h, err := f.HashChunk(ctx, rg)
				if err != nil {
					f.Close()
					return nil, err
				}
				p.Tasks = append(p.Tasks, Task{Index: len(p.Tasks), Input: i, Start: int64(rg), End: int64(rg + 1), Line: row, SHA256: h})
				row += f.Rows(rg)
			}
			f.Close()
			continue
		}
		if !cfg.splits(in) {
			p.Tasks = append(p.Tasks, Task{Index: len(p.Tasks), Input: i, Start: 0, End: -1, Line: 1})
			continue
		}
		cuts, lines, sums, err := lineCuts(ctx, &inputs[i], cfg.TaskBytes, in.Format == "text" && cfg.DocBoundary == "blank", workers, progress)
		if err != nil {
			return nil, err
		}
		for k := range cuts[:len(cuts)-1] {
			end := cuts[k+1]
			if k+1 == len(cuts)-1 {
				end = -1
			}
			p.Tasks = append(p.Tasks, Task{Index: len(p.Tasks), Input: i, Start: cuts[k], End: end, Line: lines[k], SHA256: sums[k]})
		}
	}
	if len(p.Tasks) >= 1<<23 {
		return nil, fmt.Errorf("pipeline: %d tasks; at most %d fit in a document id (raise --task-bytes)", len(p.Tasks), 1<<23)
	}
	return p, nil
}

// splits says whether makePlan cuts input in into byte ranges: an
// uncompressed file of text lines or JSON Lines over 1.5 × TaskBytes, unless
// --max-records is set.
func (cfg Config) splits(in Input) bool {
	return in.Path != Stdin && in.Compression == "none" && cfg.TaskBytes > 0 && cfg.MaxRecords == 0 && in.Format != "json" && in.Format != "parquet" &&
		in.Size > cfg.TaskBytes+cfg.TaskBytes/2 && !(in.Format == "text" && cfg.DocBoundary == "file")
}

// lineCuts splits an input of total bytes into n = round(total/size)
// tasks of nearly equal size: the k-th cut goes after the newline nearest
// to k·total/n (after a blank line when blank is set), so no record is
// split. It returns the cut offsets (the first is 0, the last the file
// size), the line number at each and the sha256 of each range, and sets
// in.SHA256 to the hash of the whole.
func lineCuts(ctx context.Context, in *Input, size int64, blank bool, workers int, progress func(int64)) ([]int64, []int64, []string, error) {
	total := in.Size
	n := max(1, (total+size/2)/size)
	f, err := os.Open(in.Path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pipeline: input %w", err)
	}
	defer f.Close()
	whole := sha256.New()
	raw := &rawReader{ctx: ctx, path: in.Path, r: f, hash: whole, progress: progress}
	cuts, lines := []int64{0}, []int64{1}
	buf := make([]byte, 1<<20)
	var off, line int64 = 0, 1
	want := func() int64 { return total * int64(len(cuts)) / n }
	var prevPos, prevLine int64 // the last boundary before the target
	lineHasText := false
	for {
		k, err := raw.Read(buf)
		for b, i := buf[:k], 0; i < len(b); {
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				j = len(b) - i
			}
			if blank && !lineHasText {
				lineHasText = bytes.ContainsFunc(b[i:i+j], func(c rune) bool { return c != ' ' && c != '\t' && c != '\r' })
			}
			if i += j; i == len(b) {
				break // the line goes on in the next read
			}
			i++
			pos := off + int64(i)
			line++
			blankLine := !lineHasText
			lineHasText = false
			if blank && !blankLine || pos >= total || int64(len(cuts)) >= n {
				continue
			}
			if w := want(); pos >= w {
				// Cut at whichever boundary is nearer the target.
				if prevPos > cuts[len(cuts)-1] && w-prevPos < pos-w {
					cuts, lines = append(cuts, prevPos), append(lines, prevLine)
				} else {
					cuts, lines = append(cuts, pos), append(lines, line)
				}
			}
			prevPos, prevLine = pos, line
		}
		off += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, nil, err
		}
	}
	if err := checkUnchanged(f, *in); err != nil {
		return nil, nil, nil, err
	}
	if off != total {
		return nil, nil, nil, fmt.Errorf("pipeline: %s changed size while being read (%d, then %d bytes)", in.Path, total, off)
	}
	in.SHA256 = hexSum(whole)
	cuts = append(cuts, total)
	sums, err := rangeSums(ctx, f, *in, cuts, workers)
	return cuts, lines, sums, err
}

// rangeSums hashes the ranges between cuts of the open input f, up to
// workers at a time, and checks that f did not change meanwhile.
func rangeSums(ctx context.Context, f *os.File, in Input, cuts []int64, workers int) ([]string, error) {
	sums := make([]string, len(cuts)-1)
	bufs := readBuffers()
	err := forEach(ctx, len(sums), workers, func(ctx context.Context, k int) error {
		sum, n, err := readSum(ctx, in.Path, io.NewSectionReader(f, cuts[k], cuts[k+1]-cuts[k]), bufs, nil)
		if err != nil {
			return err
		}
		if n != cuts[k+1]-cuts[k] {
			return fmt.Errorf("pipeline: %s changed size while being read (%d bytes, then %d)", in.Path, in.Size, cuts[k]+n)
		}
		sums[k] = sum
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The first pass hashed the whole; a change between the two passes
	// shows in the size or modification time.
	if err := checkUnchanged(f, in); err != nil {
		return nil, err
	}
	return sums, nil
}

// writePlan writes the plan to dir/plan.json atomically.
func writePlan(dir string, p *Plan) error {
	if err := p.setDigest(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, PlanName), append(b, '\n'))
}

// ReadPlan reads and checks dir/plan.json (see parsePlan).
func ReadPlan(dir string) (*Plan, error) {
	path := filepath.Join(dir, PlanName)
	b, err := readOwnFile(path, maxRecordBytes)
	if err != nil {
		return nil, err
	}
	return parsePlan(path, b)
}

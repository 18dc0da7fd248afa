package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/term"

	"github.com/glmkit/glmkit/cmd/internal/cli"
	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/pipeline"
	"github.com/glmkit/glmkit/pipeline/tokenizer"
	"github.com/glmkit/glmkit/sharding"
)

const inspectHelp = `Usage: glmprep inspect DIR [--rows N] [--start I] [--color auto|always|never] [--ids] [--tokens] [--check auto|all|shown]

Shows rows of a build as text: Part A with its numbered blanks, then every
Part B span in the order the model generates them, with its position.
Coloured on a terminal. --ids adds the row's columns as numbers (input and
target ids, loss mask, positions, block positions), one column of the
table per position; --tokens the same with each id as its token string.
Rows are numbered from 0 in the order the manifest lists the shards;
a --start past the last row is an error.

It checks what it reads first: the manifest, the structure of every shard,
and with --check all every record batch's checksum, every row's
invariants and each shard's counts against the manifest (as stats does);
with --check shown only the shards of the rows it shows. --check auto
(the default) is all for builds of up to 4 GiB of shards, shown beyond.
glmprep verify checks more (sha256, every row's whole GLM layout).

Examples:
  glmprep inspect out/demo
  glmprep inspect out/wiki --start 100 --rows 3 --ids
  glmprep inspect out/wiki --rows 1 --tokens --color never | less -S
`

// loadTokenizer loads the tokenizer a build recorded (or override) and
// checks it is the same one.
func loadTokenizer(meta sharding.Meta, override string) (*tokenizer.Tokenizer, error) {
	spec := meta.Tokenizer
	if override != "" {
		spec = override
	}
	opts, err := tokenizer.ParseLoadOptions(meta.TokenizerOptions)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.LoadWith(spec, opts)
	if err != nil {
		return nil, fmt.Errorf("loading the build's tokenizer: %w (pass --tokenizer to point at it)", err)
	}
	if tok.SHA256() != meta.TokenizerSHA256 {
		return nil, fmt.Errorf("tokenizer %s has sha256 %.12s…, the build used %.12s… (pass --tokenizer with the build's tokenizer)", spec, tok.SHA256(), meta.TokenizerSHA256)
	}
	return tok, nil
}

func cmdInspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.FlagSet("glmprep inspect", inspectHelp, stdout)
	rows := fs.Int("rows", 3, "rows to show")
	start := fs.Int64("start", 0, "first row")
	color := fs.String("color", "auto", "colour: auto, always or never")
	ids := fs.Bool("ids", false, "also print the row's columns as ids")
	tokens := fs.Bool("tokens", false, "also print the row's columns with each id as its token")
	tokSpec := fs.String("tokenizer", "", "tokenizer to decode with (default: the one the build recorded)")
	check := fs.String("check", "auto", "what to check before showing rows: all (every shard), shown (the shards shown) or auto")
	dir, err := parseDir(fs, args)
	if err != nil {
		return err
	}
	if *rows < 1 {
		return cli.Usagef(fs, "--rows %d: want at least 1", *rows)
	}
	if *start < 0 {
		return cli.Usagef(fs, "--start %d: rows are numbered from 0", *start)
	}
	if *color != "auto" && *color != "always" && *color != "never" {
		return cli.Usagef(fs, "--color %q: want auto, always or never", *color)
	}
	if *check != "auto" && *check != "all" && *check != "shown" {
		return cli.Usagef(fs, "--check %q: want auto, all or shown", *check)
	}
	r, err := sharding.Open(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	if n := r.Len(); *start >= n {
		if n == 0 {
			return fmt.Errorf("%s has no rows to show", dir)
		}
		return fmt.Errorf("--start %d is past the end: %s has %d rows (0–%d)", *start, dir, n, n-1)
	}
	if *check == "all" || *check == "auto" && r.Manifest().Totals.Bytes <= inspectCheckAll {
		if _, err := checkTotals(ctx, r); err != nil {
			return err
		}
	} else {
		for i := *start; i < *start+int64(*rows) && i < r.Len(); i++ {
			if err := r.CheckShardOf(i); err != nil {
				return err
			}
		}
	}
	tok, err := loadTokenizer(r.Meta(), *tokSpec)
	if err != nil {
		return err
	}
	paint := *color == "always"
	if *color == "auto" {
		if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			paint = true
		}
	}
	ins := inspector{tok: tok, ids: r.Meta().Special, paint: paint}
	fmt.Fprintf(stdout, "%s: %d rows in %d shards, tokenizer %s, seq_len %d\n\n", dir, r.Len(), len(r.Manifest().Shards), r.Meta().Tokenizer, r.Meta().SeqLen)
	var s masking.Sample
	for i := *start; i < *start+int64(*rows) && i < r.Len(); i++ {
		if err := r.Sample(i, &s); err != nil {
			return err
		}
		shard, row, _ := r.Locate(i)
		v, _ := r.Row(i)
		task, doc := pipeline.SplitKey(v.DocID)
		fmt.Fprintf(stdout, "row %d (%s row %d), doc %d:%d, %s\n", i, shard, row, task, doc, ins.header(&s))
		ins.render(stdout, &s)
		if *ids {
			fmt.Fprintln(stdout, s.Format(func(id int32) string { return strconv.Itoa(int(id)) }))
		}
		if *tokens {
			fmt.Fprintln(stdout, s.Format(func(id int32) string { return tok.Token(id) }))
		}
		fmt.Fprintln(stdout)
	}
	return nil
}

type inspector struct {
	tok   *tokenizer.Tokenizer
	ids   masking.SpecialIDs
	paint bool
}

func (in inspector) color(code, s string) string {
	if !in.paint {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (in inspector) header(s *masking.Sample) string {
	k := 0
	for i := int(s.Sep); i < len(s.Input); i++ {
		if s.Input[i] == in.ids.SOP {
			k++
		}
	}
	return fmt.Sprintf("objective %s, L=%d, %d spans, sep=%d, length %d", s.Objective, s.NSource, k, s.Sep, len(s.Input))
}

// render prints Part A as text with its blanks numbered in Part B order,
// then each span.
func (in inspector) render(w io.Writer, s *masking.Sample) {
	type span struct {
		pos        int32
		start, end int // Part B indices of the span's targets
	}
	var spans []span
	for i := int(s.Sep); i < len(s.Input); {
		j := i + 1
		for j < len(s.Input) && s.Input[j] != in.ids.SOP {
			j++
		}
		spans = append(spans, span{s.Pos[i], i, j})
		i = j
	}
	number := func(pos int32) int {
		return slices.IndexFunc(spans, func(sp span) bool { return sp.pos == pos }) + 1
	}
	var b strings.Builder
	b.WriteString("  A: ")
	last := 0
	flush := func(to int) {
		if to > last {
			b.WriteString(in.text(s.Input[last:to]))
		}
	}
	for i := 0; i < int(s.Sep); i++ {
		id := s.Input[i]
		if id == in.ids.Mask || id == in.ids.GMask || id == in.ids.SMask {
			flush(i)
			b.WriteString(in.color("1;33", fmt.Sprintf(" %s#%d ", in.tok.Token(id), number(int32(i)))))
			last = i + 1
		}
	}
	flush(int(s.Sep))
	fmt.Fprintln(w, b.String())
	for k, sp := range spans {
		tgt := s.Target[sp.start:sp.end]
		end := ""
		if len(tgt) > 0 && tgt[len(tgt)-1] == in.ids.EOP {
			tgt, end = tgt[:len(tgt)-1], in.color("2", " <|endofpiece|>")
		}
		fmt.Fprintf(w, "  B%d (blank at %d, %d tokens): %s%s\n", k+1, sp.pos, len(tgt), in.color("32", in.text(tgt)), end)
	}
}

// text decodes ids, showing [CLS] and eos so document boundaries stay
// visible.
func (in inspector) text(ids []int32) string {
	var parts []string
	last := 0
	for i, id := range ids {
		if id == in.ids.CLS || id == in.ids.EOS {
			if i > last {
				parts = append(parts, in.tok.Decode(ids[last:i]))
			}
			parts = append(parts, in.color("2", in.tok.Token(id)))
			last = i + 1
		}
	}
	if last < len(ids) {
		parts = append(parts, in.tok.Decode(ids[last:]))
	}
	return in.printable(strings.Join(parts, " "))
}

// printable is text with its control characters as escapes, dimmed with
// --color (see cli.Printable).
func (in inspector) printable(s string) string {
	return cli.Printable(s, func(esc string) string { return in.color("2", esc) })
}

const statsHelp = `Usage: glmprep stats DIR [--json]

Prints what a build read and wrote: records, documents, skipped and repaired
records by reason, samples, rows and tokens, the objective mix with the
masked fraction of each, and the token span-length histogram.

It reads every shard first (every record batch's checksum, every row's
invariants) and checks that the rows, tokens, loss and source tokens and
the rows and masked tokens of each objective it counts are what the
manifest says.

"Text tokens" are the tokenizer's output for the documents; "source
tokens" are the tokens of the samples before masking, [CLS] and eos
included: what --seq-len counts, the n_source column, and the manifest's
totals.source_tokens (every mask epoch's copy counted).

--json prints the manifest's stats object, indented.

Examples:
  glmprep stats out/demo
  glmprep stats out/demo --json | jq .skipped
`

// inspectCheckAll is the size of build up to which inspect --check auto
// reads every shard (about a second at the checksum's speed on 2 cores).
const inspectCheckAll = 4 << 30

// checkTotals reads every row of the build (Reader.Check) and compares
// what it counted with the manifest's totals and its recorded stats.
func checkTotals(ctx context.Context, r *sharding.Reader) (pipeline.Stats, error) {
	c, err := r.Check(ctx)
	return compareTotals(r, c, err)
}

// compareTotals compares the counts of a pass over every row (Check or
// Verify) with the manifest's totals and its recorded stats.
func compareTotals(r *sharding.Reader, c sharding.Counts, err error) (pipeline.Stats, error) {
	m := r.Manifest()
	var s pipeline.Stats
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(m.Stats, &s); err != nil {
		return s, fmt.Errorf("%s: stats: %w", filepath.Join(r.Dir(), sharding.ManifestName), err)
	}
	t := m.Totals
	bad := func(what string, got, want int64) error {
		return fmt.Errorf("%s: the shards hold %d %s; the manifest says %d (edited or damaged)", filepath.Join(r.Dir(), sharding.ManifestName), got, what, want)
	}
	switch {
	case c.Rows != t.Rows || c.Rows != s.Row.Rows:
		return s, bad("rows", c.Rows, max(t.Rows, s.Row.Rows))
	case c.Tokens != t.Tokens || c.Tokens != s.Row.RowTokens:
		return s, bad("row tokens", c.Tokens, max(t.Tokens, s.Row.RowTokens))
	case c.LossTokens != t.LossTokens || c.LossTokens != s.Row.LossTokens:
		return s, bad("loss tokens", c.LossTokens, max(t.LossTokens, s.Row.LossTokens))
	case c.SourceTokens != t.SourceTokens:
		return s, bad("source tokens", c.SourceTokens, t.SourceTokens)
	}
	for o, st := range s.Row.Objectives {
		name := masking.Objective(o).String()
		switch got := c.Objectives[o]; {
		case got.Rows != st.Rows || got.SourceTokens != st.SourceTokens:
			return s, bad(name+" rows", got.Rows, st.Rows)
		case got.Masked != st.Masked:
			return s, bad(name+" masked tokens", got.Masked, st.Masked)
		}
	}
	return s, nil
}

func cmdStats(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.FlagSet("glmprep stats", statsHelp, stdout)
	asJSON := fs.Bool("json", false, "print the manifest's stats as JSON")
	dir, err := parseDir(fs, args)
	if err != nil {
		return err
	}
	rd, err := sharding.Open(dir)
	if err != nil {
		return err
	}
	defer rd.Close()
	m := rd.Manifest()
	s, err := checkTotals(ctx, rd)
	if err != nil {
		return err
	}
	if *asJSON {
		return printStatsJSON(stdout, dir, m)
	}
	printDocStats(stdout, dir, m, s)
	printRowStats(stdout, m, s.Row)
	printSpanLengths(stdout, s.Row.SpanLen)
	return nil
}

// printStatsJSON prints the manifest's stats, indented.
func printStatsJSON(stdout io.Writer, dir string, m *sharding.Manifest) error {
	var b bytes.Buffer
	if err := json.Indent(&b, bytes.TrimSpace(m.Stats), "", "  "); err != nil {
		return fmt.Errorf("%s: stats: %w", filepath.Join(dir, sharding.ManifestName), err)
	}
	b.WriteByte('\n')
	_, err := stdout.Write(b.Bytes())
	return err
}

// printDocStats prints the build's settings and what became of its input:
// the records read, skipped and repaired by reason, the text and its
// tokens, and the samples made of them.
func printDocStats(stdout io.Writer, dir string, m *sharding.Manifest, s pipeline.Stats) {
	d, r := s.Doc, s.Row
	fmt.Fprintf(stdout, "build      %s (format %d, tokenizer %s, seq_len %d, seed %d, mask epochs %d)\n",
		dir, m.FormatVersion, m.Meta.Tokenizer, m.Meta.SeqLen, m.Meta.Masking.Seed, m.Meta.MaskEpochs)
	fmt.Fprintf(stdout, "inputs     %d files\n", len(m.Inputs))
	fmt.Fprintf(stdout, "records    %d: %d documents, %d blank, %d skipped", d.Records, d.Documents, d.Reasons[pipeline.Blank], s.Skipped())
	if n := d.Reasons[pipeline.HeldOut]; n > 0 {
		var c pipeline.Config
		json.Unmarshal(m.Config, &c)
		fmt.Fprintf(stdout, ", %d in the other split (this is the %s split of --valid-fraction %g)", n, c.Split, c.ValidFraction)
	}
	fmt.Fprintln(stdout)
	for reason := pipeline.BadJSON; reason < pipeline.HeldOut; reason++ {
		if n := d.Reasons[reason]; n > 0 {
			what := "skipped"
			if reason >= pipeline.InvalidUTF8 {
				what = "repaired"
			}
			fmt.Fprintf(stdout, "  %-16s %d %s\n", reason, n, what)
		}
	}
	if d.TruncatedIn > 0 {
		fmt.Fprintf(stdout, "  %d inputs damaged (a truncated or corrupt compressed frame, a broken JSON document, a bad Parquet row group): nothing after the damage was read, in that input or, for Parquet, that row group (see damaged in --json)\n", d.TruncatedIn)
	}
	fmt.Fprintf(stdout, "text       %s, %d text tokens (%.2f bytes/token)\n", humanBytes(float64(d.Bytes)), d.SourceTokens, float64(d.Bytes)/float64(max(d.SourceTokens, 1)))
	fmt.Fprintf(stdout, "samples    %d from %d document pieces (%.2f pieces/sample); %d source tokens in the rows ([CLS] and eos included, %.1f a row)\n", d.Samples, d.Pieces,
		float64(d.Pieces)/float64(max(d.Samples, 1)), m.Totals.SourceTokens, float64(m.Totals.SourceTokens)/float64(max(r.Rows, 1)))
}

// printRowStats prints the rows and shards, and each objective's share of
// the rows and how it masked them.
func printRowStats(stdout io.Writer, m *sharding.Manifest, r pipeline.RowStats) {
	fmt.Fprintf(stdout, "rows       %d in %d shards (%s), %d row tokens, %d with loss, longest row %d\n",
		r.Rows, m.Totals.Shards, humanBytes(float64(m.Totals.Bytes)), r.RowTokens, r.LossTokens, m.Totals.MaxRowLen)
	fmt.Fprintln(stdout, "objectives")
	for o, st := range r.Objectives {
		if st.Rows == 0 {
			continue
		}
		fmt.Fprintf(stdout, "  %-9s %6.2f%% of rows (weight %.2f), masked %.2f%% of source, %.2f spans/row, mean span %.1f\n",
			masking.Objective(o), 100*float64(st.Rows)/float64(max(r.Rows, 1)), m.Meta.Masking.Weights[o],
			100*float64(st.Masked)/float64(max(st.SourceTokens, 1)), float64(st.Spans)/float64(st.Rows), float64(st.Masked)/float64(max(st.Spans, 1)))
	}
	if r.Rebalanced > 0 || r.Shortfall > 0 || r.Fallback > 0 {
		fmt.Fprintf(stdout, "  token rows GLM would drop, kept: %d; short of the %g%% mask ratio: %d (%d tokens); sentence rows without a sentence: %d\n",
			r.Rebalanced, 100*m.Meta.Masking.Ratio, r.Shortfall, r.ShortTok, r.Fallback)
	}
	if r.SentShort > 0 {
		fmt.Fprintf(stdout, "  sentence rows whose sentences hold less than the %g%% mask ratio, all masked: %d (%d tokens short)\n",
			100*m.Meta.Masking.Ratio, r.SentShort, r.SentShortT)
	}
}

// printSpanLengths prints the histogram of the token objective's span
// lengths, when it has any.
func printSpanLengths(stdout io.Writer, spanLen []int64) {
	var total int64
	for _, n := range spanLen {
		total += n
	}
	if total == 0 {
		return
	}
	fmt.Fprintf(stdout, "token span lengths (%d spans)\n", total)
	peak := slices.Max(spanLen)
	for l, n := range spanLen {
		if n == 0 {
			continue
		}
		bar := strings.Repeat("█", int(40*n/max(peak, 1)))
		fmt.Fprintf(stdout, "  %3d %6.2f%% %s\n", l, 100*float64(n)/float64(total), bar)
	}
}

const verifyHelp = `Usage: glmprep verify DIR

Checks a build: the manifest (its checksum, every number, every shard
name), every shard's size and sha256 against the manifest, its structure,
schema and metadata, every record batch's checksum, and every row's whole
GLM layout (Part A and Part B, blanks, positions, block positions, loss
mask, lengths) and counts: rows, tokens, loss and source tokens, and the
rows and masked tokens of each objective, against the manifest's totals
and stats (as glmprep stats checks them). A build of no rows fails unless
it was built with --allow-empty. It reads every byte of every shard; the exit status is
0 only when everything checks.

Examples:
  glmprep verify out/demo
  glmprep verify /shared/crawl && echo ready to train
`

func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.FlagSet("glmprep verify", verifyHelp, stdout)
	dir, err := parseDir(fs, args)
	if err != nil {
		return err
	}
	r, err := sharding.Open(dir, sharding.VerifyHashes())
	if err != nil {
		return err
	}
	defer r.Close()
	m := r.Manifest()
	if r.Len() == 0 && !m.AllowsEmpty() {
		return fmt.Errorf("%s: the build has no rows%s; rebuild with --allow-empty if that is what you want", dir, emptyReason(m))
	}
	c, err := r.Verify(ctx)
	if _, err := compareTotals(r, c, err); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: OK: format %d, %d shards, %d rows, %d tokens: manifest, sha256 and checksums, schema, every row's invariants and the stats' counts check\n",
		dir, m.FormatVersion, len(m.Shards), r.Len(), m.Totals.Tokens)
	return nil
}

// emptyReason says why a build has no rows, from its stats: the reason
// most records were skipped for, or that there were no records.
func emptyReason(m *sharding.Manifest) string {
	var s pipeline.Stats
	if json.Unmarshal(m.Stats, &s) != nil {
		return ""
	}
	d := s.Doc
	if d.Records == 0 {
		return " (its inputs held no records)"
	}
	top, n := pipeline.Reason(0), int64(0)
	for reason, c := range d.Reasons {
		if c > n {
			top, n = pipeline.Reason(reason), c
		}
	}
	if n == 0 {
		return fmt.Sprintf(" (%d records, %d documents)", d.Records, d.Documents)
	}
	return fmt.Sprintf(" (%d of its %d records were %s)", n, d.Records, top)
}

// Command glmprep turns raw text corpora into GLM training shards: Arrow
// IPC files of blank-infilling rows (token, sentence and document
// objectives, 2D positions) plus a manifest. See `glmprep help`.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/glmkit/glmkit/cmd/internal/cli"
)

// title is the first line of glmprep's help.
const title = "glmprep prepares GLM pretraining data."

// commands are glmprep's subcommands (version and help are cli's), in the
// order its help lists them.
var commands = []cli.Subcommand{
	{Name: "build", Args: "--input PATH... --out DIR [flags]", Summary: "tokenize, pack, mask and shard a corpus", Run: cmdBuild},
	{Name: "inspect", Args: "DIR [--rows N]", Summary: "show rows as text: Part A with its blanks, then each span", Run: cmdInspect},
	{Name: "stats", Args: "DIR [--json]", Summary: "documents, samples, tokens, skips, objective mix, span lengths", Run: cmdStats},
	{Name: "verify", Args: "DIR", Summary: "check hashes, checksums, schema and every row's GLM layout", Run: cmdVerify},
	{Name: "bench-load", Args: "DIR [--batch 32] [--no-verify]", Summary: "measure the zero-copy loader, checked or not", Run: cmdBenchLoad},
	{Name: "plan", Args: "--input PATH... --out DIR [flags]", Summary: "plan a build as independent tasks (for Slurm or Kubernetes)", Run: cmdPlan},
	{Name: "run-task", Args: "DIR [--task I]", Summary: "run one task of a plan", Run: cmdRunTask},
	{Name: "merge", Args: "DIR", Summary: "check a plan's tasks and write the manifest", Run: cmdMerge},
	{Name: "status", Args: "DIR [--json]", Summary: "tasks done, started and left of a build or plan (no manifest needed)", Run: cmdStatus},
}

func main() {
	cli.Main("glmprep", run)
}

// run is glmprep without the process around it, so tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return cli.Dispatch(ctx, "glmprep", title, commands, args, stdout, stderr)
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// sizeFlag is a byte count written as 123, 64KiB, 256MiB, 1GiB, 10MB or 2GB.
type sizeFlag int64

func (s *sizeFlag) String() string { return formatBytes(int64(*s)) }

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

func parseSize(v string) (int64, error) {
	v = strings.TrimSpace(v)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("bad size %q (want a number of bytes such as 64MiB)", v)
	}
	return int64(f * float64(mult)), nil
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return strconv.FormatInt(n, 10)
}

func humanBytes(n float64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", n/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%.0f B", n)
}

// parseDir parses the flags of a command that takes one DIR, the build
// directory, and returns it.
func parseDir(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := cli.Parse(fs, args)
	switch {
	case err != nil:
		return "", err
	case len(pos) == 0:
		return "", cli.Usagef(fs, "missing DIR, the build directory")
	case len(pos) > 1:
		return "", cli.Usagef(fs, "one DIR, not %d arguments (%s)", len(pos), strings.Join(pos, " "))
	}
	return pos[0], nil
}

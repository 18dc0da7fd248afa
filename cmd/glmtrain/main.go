// Command glmtrain trains GLM models from glmprep's shards, evaluates them,
// fills blanks with them and plots their loss curves. See `glmtrain help`.
package main

import (
	"context"
	"io"

	"github.com/glmkit/glmkit/cmd/internal/cli"
)

const usage = `glmtrain trains GLM from glmprep shards.

Usage:
  glmtrain train  --data DIR --preset tiny|small|base|large --steps N --out DIR [flags]
  glmtrain eval   --ckpt DIR --data DIR                evaluation loss and perplexity per objective
  glmtrain infill --ckpt DIR "text with [MASK] blanks"  fill each blank with the model
  glmtrain plot   OUT [--png FILE]                      draw OUT/metrics.jsonl's loss curves
  glmtrain doctor                                       which backends this machine can run
  glmtrain version                                      the version and commit of this binary (also --version)

Run "glmtrain COMMAND --help" (or "glmtrain help COMMAND") for a command's
flags and examples.
`

// commands are glmtrain's subcommands (version and help are cli's).
var commands = []cli.Subcommand{
	{Name: "train", Run: cmdTrain},
	{Name: "eval", Run: cmdEval},
	{Name: "infill", Run: cmdInfill},
	{Name: "plot", Run: cmdPlot},
	{Name: "doctor", Run: cmdDoctor},
}

func main() { cli.Main("glmtrain", run) }

// run is glmtrain without the process around it, so tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return cli.Dispatch(ctx, "glmtrain", usage, commands, args, stdout, stderr)
}

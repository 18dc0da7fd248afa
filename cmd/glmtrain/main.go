// Command glmtrain trains GLM models from glmprep's shards, evaluates them,
// fills blanks with them and plots their loss curves. See `glmtrain help`.
package main

import (
	"context"
	"io"

	"github.com/glmkit/glmkit/cmd/internal/cli"
)

// title is the first line of glmtrain's help.
const title = "glmtrain trains GLM from glmprep shards."

// commands are glmtrain's subcommands (version and help are cli's), in the
// order its help lists them.
var commands = []cli.Subcommand{
	{Name: "train", Args: "--data DIR --preset tiny|small|base|large --steps N --out DIR [flags]", Run: cmdTrain},
	{Name: "eval", Args: "--ckpt DIR --data DIR", Summary: "Part-B loss and perplexity, overall and per objective", Run: cmdEval},
	{Name: "infill", Args: `--ckpt DIR "text with [MASK] blanks"`, Summary: "fill each blank with the model", Run: cmdInfill},
	{Name: "plot", Args: "OUT [--png FILE]", Summary: "draw OUT/metrics.jsonl's loss curves", Run: cmdPlot},
	{Name: "doctor", Summary: "which backends this machine can run", Run: cmdDoctor},
}

func main() { cli.Main("glmtrain", run) }

// run is glmtrain without the process around it, so tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return cli.Dispatch(ctx, "glmtrain", title, commands, args, stdout, stderr)
}

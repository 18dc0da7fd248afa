package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/glmkit/glmkit/cmd/internal/cli"
)

const plotHelp = `Usage: glmtrain plot OUT [--png FILE] [--width 8in] [--height 5in]

Draws the loss curves of a training run from OUT/metrics.jsonl: the training
loss per logged step, the evaluation loss, and the evaluation loss of each
objective, to a PNG (default OUT/loss.png).
`

func cmdPlot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.FlagSet("plot", plotHelp, stderr)
	png := fs.String("png", "", "output image (default OUT/loss.png)")
	width := fs.String("width", "8in", "image width")
	height := fs.String("height", "5in", "image height")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("%w: plot needs one OUT directory", cli.ErrUsage)
	}
	f, err := os.Open(filepath.Join(pos[0], "metrics.jsonl"))
	if err != nil {
		return err
	}
	defer f.Close()
	series := map[string]plotter.XYs{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	line := 0
	for sc.Scan() {
		line++
		var m map[string]float64
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return fmt.Errorf("metrics.jsonl:%d: %w", line, err)
		}
		step, ok := m["step"]
		if !ok {
			continue
		}
		for k, v := range m {
			if k == "loss" || strings.HasPrefix(k, "eval_loss") {
				series[k] = append(series[k], plotter.XY{X: step, Y: v})
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(series["loss"]) == 0 {
		return fmt.Errorf("%s/metrics.jsonl has no loss lines", pos[0])
	}
	p := plot.New()
	p.Title.Text = "GLM training: " + filepath.Base(filepath.Clean(pos[0]))
	p.X.Label.Text = "step"
	p.Y.Label.Text = "Part-B cross entropy (nats)"
	p.Add(plotter.NewGrid())
	names := make([]string, 0, len(series))
	for k := range series {
		names = append(names, k)
	}
	sort.Strings(names)
	for i, k := range names {
		l, err := plotter.NewLine(series[k])
		if err != nil {
			return err
		}
		l.Color = plotColor(i)
		l.Width = vg.Points(1.5)
		if k != "loss" {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		}
		p.Add(l)
		p.Legend.Add(strings.ReplaceAll(k, "_", " "), l)
	}
	p.Legend.Top = true
	w, err := vg.ParseLength(*width)
	if err != nil {
		return err
	}
	h, err := vg.ParseLength(*height)
	if err != nil {
		return err
	}
	outPath := *png
	if outPath == "" {
		outPath = filepath.Join(pos[0], "loss.png")
	}
	if err := p.Save(w, h, outPath); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d curves, %d training points\n", outPath, len(series), len(series["loss"]))
	return nil
}

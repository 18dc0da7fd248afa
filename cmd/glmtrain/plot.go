package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/glmkit/glmkit/cmd/internal/cli"
)

const plotHelp = `Usage: glmtrain plot OUT [--png FILE] [--width 8in] [--height 5in]

Draws the loss curves of a training run from OUT/metrics.jsonl: the training
loss per logged step, the evaluation loss, and the evaluation loss of each
objective, to a PNG (default OUT/loss.png; a FILE ending in .svg or .pdf
gives that format). Evaluation points, and every point of a curve of few
points, are marked, so an evaluation run once shows; the axes have round
tick values and the legend sits inside the image, on a white box.

Examples:
  glmtrain plot out/small
  glmtrain plot out/small --png report/loss.svg --width 6in --height 4in
`

// plotPad is the margin left around the plot inside the image.
const plotPad = vg.Length(8)

func cmdPlot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.FlagSet("glmtrain plot", plotHelp, stdout)
	png := fs.String("png", "", "output image (default OUT/loss.png)")
	width := fs.String("width", "8in", "image width")
	height := fs.String("height", "5in", "image height")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		if len(pos) == 0 {
			return cli.Usagef(fs, "missing OUT, the training run's --out directory")
		}
		return cli.Usagef(fs, "one OUT directory, not %d arguments", len(pos))
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
	w, err := vg.ParseLength(*width)
	if err != nil {
		return err
	}
	h, err := vg.ParseLength(*height)
	if err != nil {
		return err
	}
	p, legend, err := lossPlot("GLM training: "+filepath.Base(filepath.Clean(pos[0])), series)
	if err != nil {
		return err
	}
	outPath := *png
	if outPath == "" {
		outPath = filepath.Join(pos[0], "loss.png")
	}
	if err := savePlot(p, legend, w, h, outPath); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d curves, %d training points\n", outPath, len(series), len(series["loss"]))
	return nil
}

// lossPlot lays out the curves: the training loss as a solid line, the
// evaluation losses dashed, and points marked on every evaluation curve
// and on any curve of at most markBelow points.
func lossPlot(title string, series map[string]plotter.XYs) (*plot.Plot, plot.Legend, error) {
	const markBelow = 40
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "step"
	p.Y.Label.Text = "Part-B cross entropy (nats)"
	p.X.Tick.Marker = roundTicks{}
	p.Y.Tick.Marker = roundTicks{}
	p.X.Min = 0
	p.Add(plotter.NewGrid())
	legend := plot.NewLegend()
	legend.Top = true
	legend.XOffs, legend.YOffs = -plotPad, -plotPad
	names := make([]string, 0, len(series))
	for k := range series {
		names = append(names, k)
	}
	sort.Strings(names)
	for i, k := range names {
		l, pts, err := plotter.NewLinePoints(series[k])
		if err != nil {
			return nil, legend, err
		}
		l.Color = plotColor(i)
		l.Width = vg.Points(1.5)
		pts.Color = plotColor(i)
		pts.Shape = draw.CircleGlyph{}
		pts.Radius = vg.Points(2.5)
		if k != "loss" {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		}
		p.Add(l)
		label := strings.ReplaceAll(k, "_", " ")
		if k != "loss" || len(series[k]) <= markBelow {
			p.Add(pts)
			legend.Add(label, l, pts)
		} else {
			legend.Add(label, l)
		}
	}
	return p, legend, nil
}

// savePlot draws p with a margin of plotPad inside the image, then the
// legend on a white box in the top right corner of the data area, and
// writes the image in the format of path's extension (png by default).
func savePlot(p *plot.Plot, legend plot.Legend, w, h vg.Length, path string) error {
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	switch format {
	case "svg", "pdf", "eps", "jpg", "jpeg", "tif", "tiff", "png":
	default:
		format = "png"
	}
	c, err := draw.NewFormattedCanvas(w, h, format)
	if err != nil {
		return err
	}
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	inner := draw.Crop(dc, plotPad, -plotPad, plotPad, -plotPad)
	p.Draw(inner)
	data := p.DataCanvas(inner)
	// The legend's extent (Legend.Rectangle ignores the offsets and puts a
	// right-hand legend on the left): its size, placed as Draw places it.
	size := legend.Rectangle(data).Size()
	top, right := data.Max.Y+legend.YOffs, data.Max.X+legend.XOffs
	box := vg.Rectangle{Min: vg.Point{X: right - size.X - 4, Y: top - size.Y - 4}, Max: vg.Point{X: right + 4, Y: top + 2}}
	data.SetColor(color.NRGBA{255, 255, 255, 230})
	data.Fill(box.Path())
	data.SetColor(color.Gray{Y: 200})
	data.SetLineWidth(vg.Points(0.5))
	data.Stroke(box.Path())
	legend.Draw(data)
	tmp := path + ".tmp"
	fh, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(fh); err != nil {
		fh.Close()
		os.Remove(tmp)
		return err
	}
	if err := fh.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// roundTicks puts labelled ticks at round values: multiples of 1, 2 or 5
// times a power of ten, three to six of them over the range, labelled
// with as many decimals as the step needs (0, 200, 400; 4.5, 5, 5.5), and
// unlabelled ticks between them.
type roundTicks struct{}

func (roundTicks) Ticks(lo, hi float64) []plot.Tick {
	step, decimals := roundStep(lo, hi)
	var ticks []plot.Tick
	first := math.Ceil(lo/step-1e-9) * step
	for v := first; v <= hi+step*1e-9; v += step {
		v := math.Round(v/step)*step + 0 // + 0: no "-0"
		if v == 0 {
			v = 0
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', decimals, 64)})
		for k := 1; k < 5; k++ {
			if mv := v + float64(k)*step/5; mv <= hi {
				ticks = append(ticks, plot.Tick{Value: mv})
			}
		}
	}
	for k := 1; k < 5; k++ { // minor ticks before the first label
		if mv := first - float64(k)*step/5; mv >= lo {
			ticks = append(ticks, plot.Tick{Value: mv})
		}
	}
	return ticks
}

// roundStep is the tick step of roundTicks for [lo, hi] and the decimals
// its labels need.
func roundStep(lo, hi float64) (float64, int) {
	span := hi - lo
	if !(span > 0) || math.IsInf(span, 0) {
		span = math.Max(math.Abs(hi), 1)
	}
	mag := math.Floor(math.Log10(span / 4))
	for {
		for _, m := range []float64{1, 2, 5} {
			step := m * math.Pow(10, mag)
			if span/step <= 6 {
				return step, max(0, int(-mag))
			}
		}
		mag++
	}
}

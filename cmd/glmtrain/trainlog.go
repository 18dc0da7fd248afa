package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/trainer"
)

// trainLog writes training's progress to stderr as lines: where stderr is
// not a terminal (a Slurm log, kubectl logs, a pipe), one line per logged
// step with the loss, learning rate, tokens/s, elapsed time and ETA, and a
// line per checkpoint; everywhere, a line per evaluation as it comes (on a
// terminal the progress bar shows the rest).
type trainLog struct {
	w         io.Writer
	quiet     bool
	tty       bool
	steps     int // the run's --steps
	startStep int // the step this process started from (a resume's checkpoint)
}

func newTrainLog(w io.Writer, quiet bool, steps, startStep int) *trainLog {
	l := &trainLog{w: w, quiet: quiet, steps: steps, startStep: startStep}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		l.tty = true
	}
	return l
}

// line prints one line; on a terminal it first clears the progress bar's
// line, which the bar redraws on its next update.
func (l *trainLog) line(format string, args ...any) {
	if l.tty {
		fmt.Fprint(l.w, "\r\x1b[K")
	}
	fmt.Fprintf(l.w, format+"\n", args...)
}

func (l *trainLog) log(m trainer.Metrics) {
	if l.quiet {
		return
	}
	if !l.tty {
		eta := "?"
		if done := m.Step - l.startStep; done > 0 && m.ElapsedS > 0 {
			eta = formatDuration(time.Duration(float64(l.steps-m.Step) * m.ElapsedS / float64(done) * float64(time.Second)))
		}
		l.line("glmtrain: step %d/%d  loss %.4f  lr %.3g  grad norm %.3g  %.0f tokens/s  elapsed %s  ETA %s",
			m.Step, l.steps, m.Loss, m.LR, m.GradNorm, m.TokensPerS, formatDuration(time.Duration(m.ElapsedS*float64(time.Second))), eta)
	}
	if e := m.Eval; e != nil {
		var per []string
		for o, oe := range e.Objectives {
			if oe.Tokens > 0 {
				per = append(per, fmt.Sprintf("%s %.4f", masking.Objective(o), oe.Loss))
			}
		}
		msg := fmt.Sprintf("glmtrain: step %d/%d  eval loss %.4f  ppl %.2f  on %d tokens", m.Step, l.steps, e.Loss, e.PPL, e.Tokens)
		if len(per) > 1 {
			msg += " (" + strings.Join(per, ", ") + ")"
		}
		l.line("%s", msg)
	}
}

func (l *trainLog) checkpoint(dir string) {
	if !l.quiet && !l.tty {
		l.line("glmtrain: checkpoint %s", dir)
	}
}

// formatDuration writes d as 1h02m03s, 2m03s or 3s.
func formatDuration(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d/time.Hour), int(d/time.Minute)%60, int(d/time.Second)%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%02dm%02ds", h, m, s)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

package batchtest

import "math"

// GradError checks the analytic gradient g of loss at x against central
// differences of step h at the indices idx: for each i it sets x[i] to
// x[i]+h and x[i]−h, calls loss at each, and restores x[i]. It returns the
// largest |numeric − g[i]| and that error relative to the largest
// |numeric| (floored at 1e-12).
func GradError(x, g []float64, idx []int, h float64, loss func() float64) (maxErr, rel float64) {
	var maxNum float64
	for _, i := range idx {
		old := x[i]
		x[i] = old + h
		lp := loss()
		x[i] = old - h
		lm := loss()
		x[i] = old
		num := (lp - lm) / (2 * h)
		maxErr = max(maxErr, math.Abs(num-g[i]))
		maxNum = max(maxNum, math.Abs(num))
	}
	return maxErr, maxErr / max(maxNum, 1e-12)
}

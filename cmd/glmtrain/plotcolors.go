package main

import "image/color"

// plotColor is the colour of curve i (Okabe–Ito, readable by colour-blind
// people).
func plotColor(i int) color.Color {
	palette := [...]color.RGBA{{0, 114, 178, 255}, {213, 94, 0, 255}, {0, 158, 115, 255},
		{204, 121, 167, 255}, {230, 159, 0, 255}, {86, 180, 233, 255}}
	return palette[i%len(palette)]
}

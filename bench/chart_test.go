package bench

import (
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// drawBarChart renders c as a PNG at path: grouped bars, a legend naming the
// series, the value printed on no bar (the tables have the figures).
func drawBarChart(path string, c barChart) error {
	if len(c.series) == 0 || len(c.groups) == 0 {
		return fmt.Errorf("no data")
	}
	p := plot.New()
	p.Title.Text = c.title
	p.Y.Label.Text = c.ylabel
	p.Legend.Top = true
	p.Legend.Left = true
	const barWidth = 22
	n := len(c.series)
	top := 0.0
	for i, s := range c.series {
		if len(s.values) != len(c.groups) {
			return fmt.Errorf("series %q: %d values for %d groups", s.name, len(s.values), len(c.groups))
		}
		vals := make(plotter.Values, len(s.values))
		copy(vals, s.values)
		for _, v := range s.values {
			top = math.Max(top, v)
		}
		bars, err := plotter.NewBarChart(vals, vg.Points(barWidth))
		if err != nil {
			return fmt.Errorf("series %q: %w", s.name, err)
		}
		bars.LineStyle.Width = vg.Length(0)
		bars.Color = seriesColor(i)
		bars.Offset = vg.Points(float64(i)-float64(n-1)/2) * barWidth
		p.Add(bars)
		p.Legend.Add(s.name, bars)
	}
	p.Y.Min = 0
	p.Y.Max = top * (1.15 + 0.07*float64(n)) // room for the legend above the bars
	labels := make([]string, len(c.groups))
	for i, g := range c.groups {
		labels[i] = wrapLabel(g, 14)
	}
	p.NominalX(labels...)
	p.Add(plotter.NewGrid())
	w := vg.Length(math.Max(6, 1.6*float64(len(c.groups))+1.5)) * vg.Inch
	return p.Save(w, 4.5*vg.Inch, path)
}

// wrapLabel breaks s at spaces into lines of about width characters.
func wrapLabel(s string, width int) string {
	var b strings.Builder
	line := 0
	for i, word := range strings.Fields(s) {
		if i > 0 {
			if line+1+len(word) > width {
				b.WriteByte('\n')
				line = 0
			} else {
				b.WriteByte(' ')
				line++
			}
		}
		b.WriteString(word)
		line += len(word)
	}
	return b.String()
}

func seriesColor(i int) color.Color {
	// nsfd first, in the same colour on every chart.
	palette := []color.Color{
		color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
		color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
		color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
		color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	}
	if i < len(palette) {
		return palette[i]
	}
	return plotutil.Color(i)
}

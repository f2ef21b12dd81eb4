// Package timeline draws timeline.png, the picture of a decided phrase a
// referee looks at instead of the JSON: both fencers' positions and phases
// over time, the scoring box's events and the verdict.
package timeline

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/rightofway"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/videoio"
)

// Layout of timeline.png, in pixels.
const (
	pngW, pngH                = 1000, 500
	plotX0, plotX1            = 70, 980
	labelY0, labelRows        = 104, 3
	labelRowH                 = 16
	plotY0, plotY1            = 156, 390
	rowLeftY, rowRightY       = 400, 422
	rowH                      = 16
	axisY                     = 458
	headerScale               = 0.6
	smallScale                = 0.42
	backgroundGrey      uint8 = 28
)

// PNG draws the picture a referee looks at instead of the JSON: the
// verdict and its reason on top; the scoring box's events as vertical
// lines, labelled above the plot (a hit in the colour of the lamp it lit);
// both fencers' positions over time (left red, right green; gaps where a
// fencer was not seen); and both fencers' phases as bands under the plot.
func PNG(tl rightofway.Timeline) ([]byte, error) {
	img := bgr.New(pngW, pngH)
	img.Fill(backgroundGrey, backgroundGrey, backgroundGrey)
	d := tl.Decision
	var errs []error
	text := func(s string, x, y int, scale float64, c Colour) {
		if err := videoio.DrawText(img, s, x, y, scale, 1, c.B, c.G, c.R); err != nil {
			errs = append(errs, err)
		}
	}
	head := fmt.Sprintf("Winner: %s   (confidence %.2f", strings.ToUpper(d.Winner), d.Confidence)
	if d.Rule != "" {
		head += ", " + strings.ReplaceAll(d.Rule, "_", " ")
	}
	text(head+")", 12, 30, headerScale+0.1, TextColour)
	for k, line := range wrap(d.Reason, plotX1-12, smallScale+0.05) {
		if k < 3 {
			text(line, 12, 56+k*18, smallScale+0.05, TextColour)
		}
	}

	dur := span(tl)
	tx := func(t float64) float64 { return plotX0 + (plotX1-plotX0)*t/dur }
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range [][]float64{tl.Left.PositionM, tl.Right.PositionM} {
		for _, v := range p {
			if !math.IsNaN(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	switch {
	case math.IsInf(lo, 0):
		lo, hi = 0, 1
	case !(hi > lo):
		lo, hi = lo-1, lo+1
	}
	lo, hi = lo-0.1*(hi-lo), hi+0.1*(hi-lo)
	py := func(m float64) float64 { return plotY1 - (plotY1-plotY0)*(m-lo)/(hi-lo) }

	img.FillRect(plotX0, plotY0, plotX1, plotY1, 40, 40, 40)
	step := tickStep(dur)
	for k := 0; k <= maxTicks && float64(k)*step <= dur+1e-9; k++ {
		t := float64(k) * step
		x := tx(t)
		img.FillRect(int(x), plotY1, int(x)+1, plotY1+6, 160, 160, 160)
		text(tickLabel(t, step), int(x)-10, axisY, smallScale, TextColour)
	}
	text("s", plotX1-8, axisY+18, smallScale, TextColour)
	ystep := tickStep(hi - lo)
	for k := 0; k <= maxTicks; k++ {
		m := math.Ceil(lo/ystep)*ystep + float64(k)*ystep
		if m > hi {
			break
		}
		y := py(m)
		img.FillRect(plotX0-5, int(y), plotX0, int(y)+1, 160, 160, 160)
		text(tickLabel(m, ystep), 20, int(y)+5, smallScale, TextColour)
	}
	text("m", 4, plotY0+12, smallScale, TextColour)

	// Event lines go under the fencers' lines, their labels in rows above
	// the plot so that none covers another: a label with no room left is
	// left out, its line stays.
	var rowEnd [labelRows]int
	for i := range rowEnd {
		rowEnd[i] = -pngW
	}
	for _, ev := range tl.Events {
		c, label, ok := EventStyle(ev)
		if !ok || ev.TimeS > dur {
			continue
		}
		x, w := int(tx(ev.TimeS)), 1
		if ev.Light != "" {
			w = 3
		}
		img.FillRect(x-w/2, plotY0, x-w/2+w, plotY1, c.B, c.G, c.R)
		tw, _ := videoio.TextSize(label, smallScale, 1)
		lx := min(max(x-tw/2, 4), pngW-tw-4)
		for r := range rowEnd {
			if lx > rowEnd[r]+6 {
				y := labelY0 + r*labelRowH
				text(label, lx, y+12, smallScale, c)
				img.FillRect(x, y+16, x+1, plotY0, c.B/2, c.G/2, c.R/2)
				rowEnd[r] = lx + tw
				break
			}
		}
	}
	for _, f := range []struct {
		tr  rightofway.FencerTrack
		col Colour
		row int
		tag string
	}{{tl.Left, LeftColour, rowLeftY, "L"}, {tl.Right, RightColour, rowRightY, "R"}} {
		for k := 1; k < len(f.tr.PositionM); k++ {
			if math.IsNaN(f.tr.PositionM[k-1]) || math.IsNaN(f.tr.PositionM[k]) {
				// Not seen: a gap, not a made-up line.
				continue
			}
			img.FillLine(tx(float64(k-1)/tl.FPS), py(f.tr.PositionM[k-1]), tx(float64(k)/tl.FPS), py(f.tr.PositionM[k]), 2.5, f.col.B, f.col.G, f.col.R)
		}
		for _, p := range f.tr.Phases {
			c := PhaseColours[p.Kind]
			img.FillRect(int(tx(p.StartS)), f.row, int(tx(p.EndS+1/tl.FPS)), f.row+rowH, c.B, c.G, c.R)
		}
		text(f.tag, plotX0-20, f.row+rowH-3, smallScale+0.05, f.col)
	}
	x := plotX0
	for _, k := range []string{rightofway.PhaseAdvance, rightofway.PhaseLunge, rightofway.PhasePause, rightofway.PhaseRetreat, rightofway.PhaseUnseen} {
		c := PhaseColours[k]
		img.FillRect(x, pngH-18, x+12, pngH-6, c.B, c.G, c.R)
		text(k, x+16, pngH-7, smallScale, TextColour)
		w, _ := videoio.TextSize(k, smallScale, 1)
		x += w + 30
	}
	text("lines: left red, right green", x+10, pngH-7, smallScale, TextColour)
	if len(errs) > 0 {
		return nil, fmt.Errorf("draw timeline.png: %w", errs[0])
	}
	data, err := videoio.EncodePNG(img)
	if err != nil {
		return nil, fmt.Errorf("encode timeline.png: %w", err)
	}
	return data, nil
}

// span is the time the picture covers: the tracks, and the events of the
// touch after them (a recording that stops as the lights come on), but not
// what the log says happened long after the last frame.
func span(tl rightofway.Timeline) float64 {
	end := float64(max(tl.Frames-1, 1)) / tl.FPS
	limit := end + 1
	for _, ev := range tl.Events {
		if _, _, ok := EventStyle(ev); ok && ev.TimeS > end && ev.TimeS <= limit {
			end = ev.TimeS
		}
	}
	return end + 0.05
}

// maxTicks bounds the ticks of an axis, whatever the tracks hold.
const maxTicks = 20

// tickStep is the spacing of ticks over a range of span: 1, 2, 2.5 or 5
// times a power of ten, at most a dozen ticks.
func tickStep(span float64) float64 {
	if !(span > 0) || math.IsInf(span, 0) {
		return 1
	}
	base := math.Pow(10, math.Floor(math.Log10(span/12)))
	for _, f := range []float64{1, 2, 2.5, 5, 10} {
		if span/(f*base) <= 12 {
			return f * base
		}
	}
	return 10 * base
}

// tickLabel writes a tick's value with the decimals its step needs, never
// "-0".
func tickLabel(v, step float64) string {
	d := 0
	for d < 6 && math.Abs(step*math.Pow10(d)-math.Round(step*math.Pow10(d))) > 1e-6 {
		d++
	}
	if math.Abs(v) < step/1e6 {
		v = 0
	}
	return strconv.FormatFloat(v, 'f', d, 64)
}

// EventStyle is the colour and label of an event on the pictures of a
// phrase (timeline.png, the overlay video), and false for events they
// leave out: a hit in the colour of the lamp it lit.
func EventStyle(ev rightofway.TimelineEvent) (Colour, string, bool) {
	switch ev.Kind {
	case signal.EventHit, signal.EventSimultaneousHit:
		switch ev.Light {
		case "left":
			return LeftColour, "left lamp (red)", true
		case "right":
			return RightColour, "right lamp (green)", true
		}
		return TextColour, "hit", true
	}
	c, ok := EventColours[ev.Kind]
	return c, eventLabel(ev.Kind), ok
}

func eventLabel(k signal.EventKind) string {
	switch k {
	case signal.EventBladeContact:
		return "blade"
	case signal.EventHit:
		return "hit"
	case signal.EventSimultaneousHit:
		return "2nd hit"
	case signal.EventLockoutStarted:
		return "lockout"
	}
	return string(k)
}

// wrap splits s at "; " and spaces into lines at most width pixels wide.
func wrap(s string, width int, scale float64) []string {
	var lines []string
	cur := ""
	for _, w := range strings.Fields(s) {
		next := w
		if cur != "" {
			next = cur + " " + w
		}
		if tw, _ := videoio.TextSize(next, scale, 1); tw > width && cur != "" {
			lines = append(lines, cur)
			next = w
		}
		cur = next
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

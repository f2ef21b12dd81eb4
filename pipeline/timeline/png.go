// Package timeline draws timeline.png, the picture of a decided phrase a
// referee looks at instead of the JSON: both fencers' positions and phases
// over time, the scoring box's events and the verdict.
package timeline

import (
	"fmt"
	"math"
	"strings"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/rightofway"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/videoio"
)

// Layout of timeline.png, in pixels.
const (
	pngW, pngH                = 1000, 460
	plotX0, plotX1            = 70, 980
	plotY0, plotY1            = 96, 350
	rowLeftY, rowRightY       = 362, 384
	rowH                      = 16
	axisY                     = 420
	headerScale               = 0.6
	smallScale                = 0.42
	pauseShade                = 0.28
	backgroundGrey      uint8 = 28
)

var phaseColours = map[string]Colour{
	rightofway.PhaseAdvance: {80, 170, 80},
	rightofway.PhaseLunge:   {0, 200, 255},
	rightofway.PhasePause:   {110, 110, 110},
	rightofway.PhaseRetreat: {200, 120, 60},
	rightofway.PhaseUnseen:  {55, 55, 55},
}

// PNG draws the picture a referee looks at instead of the JSON:
// both fencers' positions over time (left red, right green) with their
// pauses shaded, the signal's events as vertical lines, both fencers'
// phases as coloured bands under the plot, and the verdict on top.
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
	head := fmt.Sprintf("Winner: %s", strings.ToUpper(d.Winner))
	if d.Confidence > 0 {
		head += fmt.Sprintf("   (confidence %.2f)", d.Confidence)
	}
	text(head, 12, 30, headerScale+0.1, TextColour)
	for k, line := range wrap(d.Reason, plotX1-12, smallScale+0.05) {
		if k < 2 {
			text(line, 12, 56+k*20, smallScale+0.05, TextColour)
		}
	}

	dur := float64(max(tl.Frames-1, 1)) / tl.FPS
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
	lo, hi = lo-0.15*(hi-lo), hi+0.15*(hi-lo)
	py := func(m float64) float64 { return plotY1 - (plotY1-plotY0)*(m-lo)/(hi-lo) }

	img.FillRect(plotX0, plotY0, plotX1, plotY1, 40, 40, 40)
	for _, f := range []struct {
		tr  rightofway.FencerTrack
		col Colour
	}{{tl.Left, LeftColour}, {tl.Right, RightColour}} {
		for _, p := range f.tr.Phases {
			if p.Kind == rightofway.PhasePause {
				blendRect(img, int(tx(p.StartS)), plotY0, int(tx(p.EndS+1/tl.FPS)), plotY1, f.col, pauseShade)
			}
		}
	}
	for t := 0.0; t <= dur+1e-9; t += 0.5 {
		x := tx(t)
		img.FillRect(int(x), plotY1, int(x)+1, plotY1+6, 160, 160, 160)
		text(fmt.Sprintf("%.1f", t), int(x)-10, axisY, smallScale, TextColour)
	}
	text("s", plotX1-8, axisY+18, smallScale, TextColour)
	for m := math.Ceil(lo*2) / 2; m <= hi; m += 0.5 {
		y := py(m)
		img.FillRect(plotX0-5, int(y), plotX0, int(y)+1, 160, 160, 160)
		text(fmt.Sprintf("%.1f", m), 20, int(y)+5, smallScale, TextColour)
	}
	text("m", 4, plotY0+12, smallScale, TextColour)

	labelY := plotY0 + 14
	for _, ev := range tl.Events {
		c, ok := EventColours[ev.Kind]
		if !ok {
			continue
		}
		x := tx(ev.TimeS)
		img.FillRect(int(x), plotY0, int(x)+2, plotY1, c.B, c.G, c.R)
		text(eventLabel(ev.Kind), int(x)+4, labelY, smallScale, c)
		labelY += 16
		if labelY > plotY0+80 {
			labelY = plotY0 + 14
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
			c := phaseColours[p.Kind]
			img.FillRect(int(tx(p.StartS)), f.row, int(tx(p.EndS+1/tl.FPS)), f.row+rowH, c.B, c.G, c.R)
		}
		text(f.tag, plotX0-20, f.row+rowH-3, smallScale+0.05, f.col)
	}
	x := plotX0
	for _, k := range []string{rightofway.PhaseAdvance, rightofway.PhaseLunge, rightofway.PhasePause, rightofway.PhaseRetreat, rightofway.PhaseUnseen} {
		c := phaseColours[k]
		img.FillRect(x, pngH-18, x+12, pngH-6, c.B, c.G, c.R)
		text(k, x+16, pngH-7, smallScale, TextColour)
		w, _ := videoio.TextSize(k, smallScale, 1)
		x += w + 36
	}
	text("left: red line, right: green line; shaded: pauses", x+20, pngH-7, smallScale, TextColour)
	if len(errs) > 0 {
		return nil, fmt.Errorf("draw timeline.png: %w", errs[0])
	}
	data, err := videoio.EncodePNG(img)
	if err != nil {
		return nil, fmt.Errorf("encode timeline.png: %w", err)
	}
	return data, nil
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

// blendRect mixes Colour c into the rectangle with weight a.
func blendRect(img bgr.Image, x0, y0, x1, y1 int, c Colour, a float64) {
	x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, img.Width), min(y1, img.Height)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			b, g, r := img.At(x, y)
			mix := func(v, w uint8) uint8 { return uint8(float64(v)*(1-a) + float64(w)*a) }
			img.Set(x, y, mix(b, c.B), mix(g, c.G), mix(r, c.R))
		}
	}
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

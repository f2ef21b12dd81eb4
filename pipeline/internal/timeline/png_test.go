package timeline

import (
	"bytes"
	"image/png"
	"math"
	"testing"

	"github.com/referee-project/referee/pipeline/rightofway"
	"github.com/referee-project/referee/pipeline/signal"
)

// TestPNGShowsTheLampsAndTheGaps draws a phrase whose recording stops
// before the hits and whose left fencer is unseen for a while: the hits
// must still be drawn, each in the colour of its lamp, and the unseen
// stretch must be a gap in the left fencer's line.
func TestPNGShowsTheLampsAndTheGaps(t *testing.T) {
	const n = 30 // 2 s at 15 fps
	pos := func(x0 float64, from, to int) rightofway.Series {
		s := make(rightofway.Series, n)
		for i := range s {
			s[i] = x0 + 0.02*float64(i)
			if i >= from && i < to {
				s[i] = math.NaN()
			}
		}
		return s
	}
	tl := rightofway.Timeline{
		FPS: 15, Frames: n,
		Left:  rightofway.FencerTrack{PositionM: pos(3, 10, 20), Phases: []rightofway.Phase{{Kind: rightofway.PhaseAdvance, EndFrame: n - 1, EndS: 29.0 / 15}}},
		Right: rightofway.FencerTrack{PositionM: pos(6, 0, 0), Phases: []rightofway.Phase{{Kind: rightofway.PhasePause, EndFrame: n - 1, EndS: 29.0 / 15}}},
		Events: []rightofway.TimelineEvent{
			{TimeS: 2.2, Kind: signal.EventHit, Light: "right"},
			{TimeS: 2.4, Kind: signal.EventSimultaneousHit, Light: "left"},
		},
		Decision: rightofway.Decision{Winner: "right", Confidence: 0.8, Rule: rightofway.RuleOneAttacking, Reason: "Right was attacking"},
	}
	data, err := PNG(tl)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != pngW || b.Dy() != pngH {
		t.Fatalf("size %v", b)
	}
	dur := span(tl)
	if dur < 2.4 {
		t.Fatalf("the picture spans %.2f s: the hits at 2.2 and 2.4 s are cut off", dur)
	}
	colourAt := func(x, y int) Colour {
		r, g, b, _ := img.At(x, y).RGBA()
		return Colour{B: uint8(b >> 8), G: uint8(g >> 8), R: uint8(r >> 8)}
	}
	x := func(t float64) int { return int(plotX0 + (plotX1-plotX0)*t/dur) }
	midY := (plotY0 + plotY1) / 2
	if c := colourAt(x(2.2), midY); c != RightColour {
		t.Errorf("first hit drawn in %v, want the right lamp's %v", c, RightColour)
	}
	if c := colourAt(x(2.4), midY); c != LeftColour {
		t.Errorf("second hit drawn in %v, want the left lamp's %v", c, LeftColour)
	}
	// Nothing of the left fencer's red in the unseen frames 11..18.
	for px := x(11.0/15) + 2; px < x(18.0/15); px++ {
		for y := plotY0; y < plotY1; y++ {
			if colourAt(px, y) == LeftColour {
				t.Fatalf("left fencer drawn at x %d while unseen", px)
			}
		}
	}
}

func TestTicks(t *testing.T) {
	for _, c := range []struct{ span, step float64 }{{2.4, 0.2}, {3.1, 0.5}, {16, 2}, {0.3, 0.025}, {1e200, 1e199}} {
		if got := tickStep(c.span); math.Abs(got-c.step) > c.step*1e-9 {
			t.Errorf("tickStep(%v) = %v, want %v", c.span, got, c.step)
		}
	}
	for _, c := range []struct {
		v, step float64
		want    string
	}{{0.75, 0.25, "0.75"}, {3 * 0.1, 0.1, "0.3"}, {-1e-12, 0.5, "0.0"}, {6, 2, "6"}} {
		if got := tickLabel(c.v, c.step); got != c.want {
			t.Errorf("tickLabel(%v, %v) = %q, want %q", c.v, c.step, got, c.want)
		}
	}
}

// TestPNGOfAbsurdTracksFinishes: coordinates and a length far from any
// phrase still give a picture, quickly, with a bounded number of ticks.
func TestPNGOfAbsurdTracksFinishes(t *testing.T) {
	tl := rightofway.Timeline{FPS: 0.01, Frames: 3,
		Left:  rightofway.FencerTrack{PositionM: rightofway.Series{-1e6, 0, 1e6}},
		Right: rightofway.FencerTrack{PositionM: rightofway.Series{1e6, 0, -1e6}}}
	if _, err := PNG(tl); err != nil {
		t.Fatal(err)
	}
}

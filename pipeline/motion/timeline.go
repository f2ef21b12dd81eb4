package motion

import (
	"math"

	"github.com/referee-project/referee/pipeline/signal"
)

// Timeline is the "timeline" field of the result: both fencers' motion
// frame by frame and the signal's events placed on the same frames.
type Timeline struct {
	FPS    float64 `json:"fps"`
	Frames int     `json:"frames"`
	// MetresPerPixel is the scale of the tracking frames (TrackWidth wide)
	// estimated from the fencers' height.
	MetresPerPixel float64     `json:"metres_per_pixel"`
	Left           FencerTrack `json:"left"`
	Right          FencerTrack `json:"right"`
	// Events are the signal's timed events, each at frame round(t x fps).
	Events   []TimelineEvent `json:"events"`
	Decision Decision        `json:"decision"`
}

// FencerTrack is one fencer's motion.
type FencerTrack struct {
	// PositionM is the position in every frame, metres from the frame's
	// left edge.
	PositionM []float64 `json:"position_m"`
	// SpeedMPS is the speed in every frame, m/s towards the opponent.
	SpeedMPS []float64 `json:"speed_mps"`
	Phases   []Phase   `json:"phases"`
}

// TimelineEvent is a signal event with what both fencers were doing then.
type TimelineEvent struct {
	TimeS      float64          `json:"t_s"`
	Frame      int              `json:"frame"`
	Kind       signal.EventKind `json:"kind"`
	Text       string           `json:"text"`
	LeftPhase  string           `json:"left_phase"`
	RightPhase string           `json:"right_phase"`
	LeftM      float64          `json:"left_m"`
	RightM     float64          `json:"right_m"`
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func timeline(ph phrase, d Decision, p *signal.Phrase, mPerPx float64) Timeline {
	track := func(f fencer) FencerTrack {
		t := FencerTrack{PositionM: make([]float64, ph.n), SpeedMPS: make([]float64, ph.n), Phases: f.phases}
		for i := range ph.n {
			t.PositionM[i] = round3(f.pos[i])
			t.SpeedMPS[i] = round3(f.vel[i])
		}
		return t
	}
	tl := Timeline{
		FPS: ph.fps, Frames: ph.n, MetresPerPixel: mPerPx,
		Left: track(ph.left), Right: track(ph.right),
		Events: []TimelineEvent{}, Decision: d,
	}
	for _, ev := range p.Events {
		i := int(math.Round(ev.TimeS * ph.fps))
		te := TimelineEvent{TimeS: ev.TimeS, Frame: i, Kind: ev.Kind, Text: ev.Text}
		c := min(max(i, 0), ph.n-1)
		te.LeftPhase, te.RightPhase = ph.left.phaseAt(c), ph.right.phaseAt(c)
		te.LeftM, te.RightM = round3(ph.left.pos[c]), round3(ph.right.pos[c])
		tl.Events = append(tl.Events, te)
	}
	return tl
}

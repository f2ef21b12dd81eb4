package rightofway

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"

	"github.com/referee-project/referee/pipeline/signal"
)

// Timeline is the "timeline" field of a result: both fencers' motion
// frame by frame, the signal's events placed on the same frames, and the
// decision.
type Timeline struct {
	FPS    float64 `json:"fps"`
	Frames int     `json:"frames"`
	// MetresPerPixel is the scale the tracks were turned into metres with:
	// 1 for tracks in metres, the tracker's or an estimated scale for
	// pixel tracks.
	MetresPerPixel float64     `json:"metres_per_pixel"`
	Left           FencerTrack `json:"left"`
	Right          FencerTrack `json:"right"`
	// Events are the signal's timed events, each at frame round(t x fps).
	Events   []TimelineEvent `json:"events"`
	Decision Decision        `json:"decision"`
}

// FencerTrack is one fencer's motion.
type FencerTrack struct {
	// PositionM is the position in every frame in metres along the strip,
	// null where the fencer was not seen.
	PositionM Series `json:"position_m"`
	// SpeedMPS is the speed in every frame, m/s towards the opponent,
	// null where the fencer was not seen.
	SpeedMPS Series  `json:"speed_mps"`
	Phases   []Phase `json:"phases"`
}

// Series is a value per frame; NaN marks a frame without one and is
// written as null.
type Series []float64

// MarshalJSON writes s with NaN as null.
func (s Series) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 8*len(s)+2)
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			b = append(b, "null"...)
			continue
		}
		b = strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	return append(b, ']'), nil
}

// UnmarshalJSON reads s with null as NaN.
func (s *Series) UnmarshalJSON(data []byte) error {
	var vs []*float64
	if err := json.Unmarshal(data, &vs); err != nil {
		return err
	}
	*s = make(Series, len(vs))
	for i, v := range vs {
		(*s)[i] = math.NaN()
		if v != nil {
			(*s)[i] = *v
		}
	}
	return nil
}

// TimelineEvent is a signal event with what both fencers were doing then.
type TimelineEvent struct {
	TimeS float64          `json:"t_s"`
	Frame int              `json:"frame"`
	Kind  signal.EventKind `json:"kind"`
	Text  string           `json:"text"`
	// Light is whose lamp a hit lit, "left" or "right"; empty for other
	// events or a hit that does not say.
	Light      string `json:"light,omitempty"`
	LeftPhase  string `json:"left_phase"`
	RightPhase string `json:"right_phase"`
	// LeftM and RightM are where the fencers were, null where not seen.
	LeftM  *float64 `json:"left_m"`
	RightM *float64 `json:"right_m"`
}

// PhaseAt returns the kind of the phase of ps holding frame i; a frame
// outside them all is a pause.
func PhaseAt(ps []Phase, i int) string { return phaseOf(ps, i) }

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func timeline(ph phrase, d Decision, p *signal.Phrase, scale float64) Timeline {
	track := func(f fencer) FencerTrack {
		t := FencerTrack{PositionM: make(Series, ph.n), SpeedMPS: make(Series, ph.n), Phases: withUnseen(f.phases, f.seen, ph.fps)}
		for i := range ph.n {
			t.PositionM[i], t.SpeedMPS[i] = math.NaN(), math.NaN()
			if f.seen[i] {
				t.PositionM[i] = round3(f.pos[i])
				t.SpeedMPS[i] = round3(f.vel[i])
			}
		}
		return t
	}
	tl := Timeline{
		FPS: ph.fps, Frames: ph.n, MetresPerPixel: scale,
		Left: track(ph.left), Right: track(ph.right),
		Events: []TimelineEvent{}, Decision: d,
	}
	first := ""
	for _, ev := range p.Events {
		i := int(math.Round(ev.TimeS * ph.fps))
		te := TimelineEvent{TimeS: ev.TimeS, Frame: i, Kind: ev.Kind, Text: ev.Text, Light: lightOf(ev, first)}
		if ev.Kind == signal.EventHit && first == "" {
			first = te.Light
		}
		c := min(max(i, 0), ph.n-1)
		te.LeftPhase, te.RightPhase = phaseOf(tl.Left.Phases, c), phaseOf(tl.Right.Phases, c)
		te.LeftM, te.RightM = positionAt(ph.left, c), positionAt(ph.right, c)
		tl.Events = append(tl.Events, te)
	}
	return tl
}

// withUnseen returns ps with the frames the fencer was not seen in cut out
// and shown as PhaseUnseen: the picture shows the gap, not the motion
// interpolated over it.
func withUnseen(ps []Phase, seen []bool, fps float64) []Phase {
	if !slices.Contains(seen, false) {
		return ps
	}
	var out []Phase
	add := func(p Phase, a, b int) {
		if b < a {
			return
		}
		q := p
		q.StartFrame, q.EndFrame = a, b
		q.StartS, q.EndS = float64(a)/fps, float64(b)/fps
		if p.Kind == PhaseUnseen || a != p.StartFrame || b != p.EndFrame {
			// Distances and speeds were measured over the whole phase.
			q.DistanceM, q.PeakSpeed = 0, 0
		}
		if n := len(out); n > 0 && out[n-1].Kind == q.Kind && out[n-1].EndFrame == a-1 {
			out[n-1].EndFrame, out[n-1].EndS = b, q.EndS
			return
		}
		out = append(out, q)
	}
	for _, p := range ps {
		a := p.StartFrame
		for i := p.StartFrame; i <= p.EndFrame+1; i++ {
			if i <= p.EndFrame && seen[i] == seen[a] {
				continue
			}
			if seen[a] {
				add(p, a, i-1)
			} else {
				add(Phase{Kind: PhaseUnseen}, a, i-1)
			}
			a = i
		}
	}
	return out
}

// lightOf is whose lamp the event ev lit, given the lamp of the first hit:
// the box's hit line names the side opposite to the lamp it lit, as in
// every single-light log (signal-format.md), and the second light of a
// double touch is the lamp the first did not light.
func lightOf(ev signal.Event, first string) string {
	switch ev.Kind {
	case signal.EventHit:
		return opposite(ev.Side)
	case signal.EventSimultaneousHit:
		return opposite(first)
	}
	return ""
}

// opposite is the other fencer's side of "left" or "right", "" for
// anything else.
func opposite(side string) string {
	switch side {
	case "left":
		return "right"
	case "right":
		return "left"
	}
	return ""
}

// positionAt is f's position at frame i, nil where f was not seen.
func positionAt(f fencer, i int) *float64 {
	if !f.seen[i] {
		return nil
	}
	return ptr(round3(f.pos[i]))
}

package rightofway

import (
	"math"
	"slices"
)

// Phase kinds: what a fencer's feet do over a stretch of frames.
const (
	PhaseAdvance = "advance"
	PhasePause   = "pause"
	PhaseRetreat = "retreat"
	PhaseLunge   = "lunge"
	// PhaseUnseen is a stretch in which the tracker did not find the
	// fencer: what they did there is not known.
	PhaseUnseen = "unseen"
)

// Kinematic thresholds. Speeds are in metres per second along the strip,
// positive towards the opponent.
const (
	// lungeSpeed: a lunge throws the body forward at 2 to 4 m/s, twice as
	// fast as the quickest step.
	lungeSpeed = 1.6
	// minPauseS is how long a fencer must stay still for it to be a pause,
	// as the Python service's 4 frames at 15 fps; shorter stops are the
	// instants between steps.
	minPauseS = 0.25
	// minMoveM is how far a stretch of motion must carry the fencer to count
	// as a step rather than noise of the tracker.
	minMoveM = 0.06
)

// class is a frame's kinematic class.
type class int8

const (
	still class = iota
	forward
	backward
)

// Phase is one stretch of a fencer's motion.
type Phase struct {
	Kind string `json:"kind"`
	// StartFrame and EndFrame are the first and last frame of the phase.
	StartFrame int `json:"start_frame"`
	EndFrame   int `json:"end_frame"`
	// StartS and EndS are their times, frame / fps.
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
	// DistanceM is how far the fencer went, positive towards the opponent.
	DistanceM float64 `json:"distance_m"`
	// PeakSpeed is the fastest speed in the phase, m/s towards the opponent
	// (negative for a retreat).
	PeakSpeed float64 `json:"peak_speed_mps"`
}

// fencer is one fencer's track turned into kinematics.
type fencer struct {
	dir float64 // +1 for the left fencer (faces right), -1 for the right one
	// pos is the position along the frame in metres from its left edge,
	// smoothed; vel the speed in m/s towards the opponent.
	pos, vel []float64
	// raw are the frames' classes as measured; merged the classes after
	// short stops between steps and tracker jitter are smoothed over.
	raw, merged []class
	phases      []Phase
	// seen tells the frames the tracker found the fencer in; pos and vel
	// are interpolated over the others.
	seen []bool
	// reach is how far the weapon arm is out towards the opponent, in
	// metres, per frame; NaN where no arm was seen.
	reach []float64
}

// kinematics turns positions in metres along the strip into the motion of
// a fencer facing dir (+1 left, -1 right) at fps.
func kinematics(xs []float64, dir, fps float64) fencer {
	n := len(xs)
	f := fencer{dir: dir, pos: make([]float64, n), vel: make([]float64, n), raw: make([]class, n)}
	sh := max(1, int(math.Round(0.07*fps)))
	for i := range n {
		s, c := 0.0, 0.0
		for j := max(0, i-sh); j <= min(n-1, i+sh); j++ {
			s += xs[j]
			c++
		}
		f.pos[i] = s / c
	}
	for i := range n {
		a, b := max(0, i-sh), min(n-1, i+sh)
		if b > a {
			f.vel[i] = dir * (f.pos[b] - f.pos[a]) / (float64(b-a) / fps)
		}
		switch {
		case f.vel[i] > goingS:
			f.raw[i] = forward
		case f.vel[i] < -goingS:
			f.raw[i] = backward
		}
	}
	f.merged = merge(f.raw, f.pos, dir, fps)
	f.phases = phasesOf(f, fps)
	return f
}

type run struct {
	c    class
	a, b int // frames a..b-1
}

func runs(cs []class) []run {
	var rs []run
	for i, c := range cs {
		if len(rs) > 0 && rs[len(rs)-1].c == c {
			rs[len(rs)-1].b = i + 1
			continue
		}
		rs = append(rs, run{c, i, i + 1})
	}
	return rs
}

// merge cleans the raw classes: motion that carries the fencer less than
// minMoveM is jitter and becomes still; a stop shorter than minPauseS
// between two motions the same way is the instant between two steps and
// takes their class.
func merge(raw []class, pos []float64, dir, fps float64) []class {
	out := slices.Clone(raw)
	for _, r := range runs(out) {
		if r.c != still && math.Abs(pos[min(r.b, len(pos)-1)]-pos[max(r.a-1, 0)]) < minMoveM {
			for i := r.a; i < r.b; i++ {
				out[i] = still
			}
		}
	}
	minPause := int(math.Ceil(minPauseS*fps - 1e-9))
	rs := runs(out)
	for k, r := range rs {
		if r.c != still || r.b-r.a >= minPause || k == 0 || k == len(rs)-1 {
			continue
		}
		if rs[k-1].c == rs[k+1].c {
			for i := r.a; i < r.b; i++ {
				out[i] = rs[k-1].c
			}
		}
	}
	return out
}

// phasesOf lists the fencer's phases from the merged classes: still
// stretches are pauses (or the lunge held, right after one), backward ones
// retreats, and forward ones advances that turn into a lunge once faster
// than lungeSpeed.
func phasesOf(f fencer, fps float64) []Phase {
	var ps []Phase
	add := func(kind string, a, b int) {
		if b <= a {
			return
		}
		p := Phase{Kind: kind, StartFrame: a, EndFrame: b - 1, StartS: float64(a) / fps, EndS: float64(b-1) / fps}
		p.DistanceM = f.dir * (f.pos[b-1] - f.pos[max(a-1, 0)])
		for i := a; i < b; i++ {
			if i == a || math.Abs(f.vel[i]) > math.Abs(p.PeakSpeed) {
				p.PeakSpeed = f.vel[i]
			}
		}
		if len(ps) > 0 && ps[len(ps)-1].Kind == kind {
			last := &ps[len(ps)-1]
			last.EndFrame, last.EndS = p.EndFrame, p.EndS
			last.DistanceM += p.DistanceM
			if math.Abs(p.PeakSpeed) > math.Abs(last.PeakSpeed) {
				last.PeakSpeed = p.PeakSpeed
			}
			return
		}
		ps = append(ps, p)
	}
	for _, r := range runs(f.merged) {
		switch r.c {
		case still:
			// Still right after a lunge is a fencer held in the lunge
			// (the hit lands as the lunge stops), not a pause.
			if len(ps) > 0 && ps[len(ps)-1].Kind == PhaseLunge {
				add(PhaseLunge, r.a, r.b)
			} else {
				add(PhasePause, r.a, r.b)
			}
		case backward:
			add(PhaseRetreat, r.a, r.b)
		case forward:
			// A lunge runs from the first frame faster than lungeSpeed to
			// the end of the forward motion: the body slowing down at the
			// end of a lunge is not an advance.
			i := r.a
			for i < r.b && f.vel[i] <= lungeSpeed {
				i++
			}
			add(PhaseAdvance, r.a, i)
			add(PhaseLunge, i, r.b)
		}
	}
	return ps
}

// phaseOf returns the kind of the phase of ps holding frame i; a frame
// outside them all is a pause.
func phaseOf(ps []Phase, i int) string {
	for _, p := range ps {
		if i >= p.StartFrame && i <= p.EndFrame {
			return p.Kind
		}
	}
	return PhasePause
}

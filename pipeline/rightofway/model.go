package rightofway

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/referee-project/referee/pipeline/tracks"
)

// The movement model: a logistic regression on the difference between the
// fencers' whole movement into the hit (hips, front foot, weapon arm,
// lunge, ground gained, blade contacts), left minus right, without an
// intercept, so that swapping the fencers exactly swaps the call. It
// overrules the priority rules where it is confident (Params.Override),
// which it is mostly where the rules saw a tie.

// Values fixed in advance for the model's features.
const (
	// retreatFrames15: two frames at 15 fps going back faster than
	// goingS is a step back.
	retreatFrames15 = 2
	// capS: what happened longer than 2 s before the hit does not shape
	// the final action.
	capS = 2.0
	// bladeWindowS: a blade contact more than a second before the hit is
	// not part of the final action.
	bladeWindowS = 1.0
	// extendMarginM: the arm counts as held out while within 10 cm of its
	// reach at the hit.
	extendMarginM = 0.10
	// minKeypointShare of the frames before the hit must show a fencer's
	// wrists and ankles for the model to judge: it was fitted on full
	// poses, and a tracker that gives only the hips (the motion
	// analyzer) would feed it zeros.
	minKeypointShare = 0.5
)

// lambdas are the L2 penalties the fit chooses from; soloLambda, the
// middle of the range, is the one used when the phrases are all of one
// day and none can be left out to choose.
var lambdas = []float64{0.003, 0.01, 0.03, 0.1, 0.3, 1}

const soloLambda = 0.1

// overrides are the margins of |P(left) - 1/2| above which the model's
// call replaces the rules', the first winning ties.
var overrides = []float64{0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3}

// body is one fencer's movement as the model sees it: metres towards the
// opponent, smoothed over three frames, frames 0..end.
type body struct {
	hip, front, reach, stance, vHip []float64
}

// bodyOf builds the body series of poses facing dir up to frame end, and
// the share of those frames showing a wrist and an ankle.
func bodyOf(poses []*tracks.Pose, dir, scale float64, end int, fps float64) (body, float64) {
	n := end + 1
	ps := poses[:n]
	shown := 0
	for _, p := range ps {
		if p != nil && (usable(p[tracks.LeftWrist]) || usable(p[tracks.RightWrist])) &&
			(usable(p[tracks.LeftAnkle]) || usable(p[tracks.RightAnkle])) {
			shown++
		}
	}
	pair := func(a, b int, join func(x, y float64) float64) []float64 {
		return smooth3(fill(pairOf(ps, fps, coord(a, dir*scale), coord(b, dir*scale), join)))
	}
	mid := func(x, y float64) float64 { return (x + y) / 2 }
	// The weapon wrist and the front foot are whichever is nearer the
	// opponent in each frame: pose estimators swap a fencer's sides.
	b := body{hip: pair(tracks.LeftHip, tracks.RightHip, mid), front: pair(tracks.LeftAnkle, tracks.RightAnkle, math.Max)}
	back := pair(tracks.LeftAnkle, tracks.RightAnkle, math.Min)
	wrist := pair(tracks.LeftWrist, tracks.RightWrist, math.Max)
	shoulder := pair(tracks.LeftShoulder, tracks.RightShoulder, mid)
	b.reach, b.stance, b.vHip = make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		b.reach[i] = wrist[i] - shoulder[i]
		b.stance[i] = b.front[i] - back[i]
		lo, hi := max(i-1, 0), min(i+1, n-1)
		if hi > lo {
			b.vHip[i] = (b.hip[hi] - b.hip[lo]) * fps / float64(hi-lo)
		}
	}
	return b, float64(shown) / float64(n)
}

func smooth3(a []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		lo, hi := max(i-1, 0), min(i+1, len(a)-1)
		s := 0.0
		for j := lo; j <= hi; j++ {
			s += a[j]
		}
		out[i] = s / float64(hi-lo+1)
	}
	return out
}

// moment is the phrase at its hit as the features read it.
type moment struct {
	fps float64
	// end is the last frame not after the first hit, or frame 2 for a hit
	// before it: the speeds need three frames.
	end int
	// contact is the frame of the last blade contact within bladeWindowS
	// before the hit, -1 if none.
	contact int
}

// lastSpeed is the mean speed of a over the last w seconds to end.
func (m moment) lastSpeed(a []float64, w float64) float64 {
	st := min(max(m.end-int(math.Round(w*m.fps)), 0), m.end)
	if st == m.end {
		return 0
	}
	return (a[m.end] - a[st]) * m.fps / float64(m.end-st)
}

// since is how long before end the last run of at least k frames with
// cond true ended, capped at capS.
func (m moment) since(k int, cond func(i int) bool) float64 {
	run := 0
	for i := m.end; i >= 0; i-- {
		if !cond(i) {
			run = 0
			continue
		}
		if run++; run >= k {
			j := i + k - 1
			for j+1 <= m.end && cond(j+1) {
				j++
			}
			return math.Min(float64(m.end-j)/m.fps, capS)
		}
	}
	return math.Min(float64(m.end)/m.fps, capS)
}

// feature is one quantity of a fencer; the model weighs left minus right.
// more words a fencer who has more of it, less one who has less.
type feature struct {
	name, unit, more, less string
	of                     func(m moment, b body) float64
}

var features = []feature{
	{"hip_speed_0.2s", "m/s", "hips going forward faster in the last 0.2 s", "hips slower in the last 0.2 s", func(m moment, b body) float64 { return m.lastSpeed(b.hip, 0.2) }},
	{"hip_speed_0.4s", "m/s", "hips going forward faster in the last 0.4 s", "hips slower in the last 0.4 s", func(m moment, b body) float64 { return m.lastSpeed(b.hip, 0.4) }},
	{"hip_speed_0.8s", "m/s", "hips going forward faster in the last 0.8 s", "hips slower in the last 0.8 s", func(m moment, b body) float64 { return m.lastSpeed(b.hip, 0.8) }},
	{"hip_speed_1.2s", "m/s", "hips going forward faster in the last 1.2 s", "hips slower in the last 1.2 s", func(m moment, b body) float64 { return m.lastSpeed(b.hip, 1.2) }},
	{"foot_speed_0.2s", "m/s", "front foot going forward faster in the last 0.2 s", "front foot slower in the last 0.2 s", func(m moment, b body) float64 { return m.lastSpeed(b.front, 0.2) }},
	{"foot_speed_0.4s", "m/s", "front foot going forward faster in the last 0.4 s", "front foot slower in the last 0.4 s", func(m moment, b body) float64 { return m.lastSpeed(b.front, 0.4) }},
	{"foot_speed_0.8s", "m/s", "front foot going forward faster in the last 0.8 s", "front foot slower in the last 0.8 s", func(m moment, b body) float64 { return m.lastSpeed(b.front, 0.8) }},
	{"attacking_for", "s", "advancing without a halt for longer before the hit", "halted more recently", func(m moment, b body) float64 {
		return m.since(max(2, int(math.Round(haltFrames15*m.fps/15))), func(i int) bool { return b.vHip[i] < goingS })
	}},
	{"since_step_back", "s", "longer since stepping back", "stepped back more recently before coming forward (a parry, or the other's attack falling short)", func(m moment, b body) float64 {
		return m.since(max(2, int(math.Round(retreatFrames15*m.fps/15))), func(i int) bool { return b.vHip[i] < -goingS })
	}},
	{"reach_at_hit", "m", "weapon arm further out at the hit", "weapon arm less far out at the hit", func(m moment, b body) float64 { return b.reach[m.end] }},
	{"reach_0.4s", "m", "weapon arm further out 0.4 s before the hit", "kept the weapon arm back until the final action", func(m moment, b body) float64 {
		return b.reach[max(m.end-int(math.Round(0.4*m.fps)), 0)]
	}},
	{"arm_out_for", "s", "weapon arm held out for longer before the hit", "extended the arm later, into the final action", func(m moment, b body) float64 {
		i, thr := m.end, b.reach[m.end]-extendMarginM
		for i > 0 && b.reach[i-1] >= thr {
			i--
		}
		return math.Min(float64(m.end-i)/m.fps, capS)
	}},
	{"lunge", "m", "feet spread more (a lunge) in the last second", "a smaller lunge in the last second", func(m moment, b body) float64 {
		mn := b.stance[m.end]
		for i := max(m.end-int(math.Round(m.fps)), 0); i <= m.end; i++ {
			mn = math.Min(mn, b.stance[i])
		}
		return b.stance[m.end] - mn
	}},
	{"ground_gained", "m", "gained more ground over the phrase", "gained less ground over the phrase", func(m moment, b body) float64 { return b.hip[m.end] - b.hip[0] }},
	{"ground_gained_1.5s", "m", "gained more ground in the last 1.5 s", "gained less ground in the last 1.5 s", func(m moment, b body) float64 {
		return b.hip[m.end] - b.hip[max(m.end-int(math.Round(1.5*m.fps)), 0)]
	}},
	{"speed_at_blade", "m/s", "going forward faster at the last blade contact", "going forward less at the last blade contact (parried rather than attacked into the blade)", func(m moment, b body) float64 {
		if m.contact < 0 {
			return 0
		}
		return b.vHip[m.contact]
	}},
	{"ground_after_blade", "m", "gained more ground after the last blade contact", "gained less ground after the last blade contact", func(m moment, b body) float64 {
		if m.contact < 0 {
			return 0
		}
		return b.hip[m.end] - b.hip[m.contact]
	}},
}

// movement is a phrase's features: each fencer's, and left minus right.
type movement struct {
	left, right, diff []float64
	// ok is false when the tracks lack the keypoints the model needs.
	ok bool
}

// movementOf computes the features of t at the first hit hit, with the
// blade contacts of the log.
func movementOf(t *tracks.Tracks, scale, hit float64, contacts []float64) movement {
	n := t.Frames()
	m := moment{fps: t.FPS, end: min(max(int(math.Floor(hit*t.FPS+1e-9)), 2), n-1), contact: -1}
	for _, c := range slices.Sorted(slices.Values(contacts)) {
		if c < hit && hit-c <= bladeWindowS {
			m.contact = min(max(int(math.Round(c*t.FPS)), 0), m.end)
		}
	}
	l, ls := bodyOf(t.Left, +1, scale, m.end, t.FPS)
	r, rs := bodyOf(t.Right, -1, scale, m.end, t.FPS)
	mv := movement{ok: ls >= minKeypointShare && rs >= minKeypointShare}
	for _, f := range features {
		a, b := f.of(m, l), f.of(m, r)
		mv.left, mv.right, mv.diff = append(mv.left, a), append(mv.right, b), append(mv.diff, a-b)
	}
	return mv
}

// Model is the fitted movement model: P(left had priority) =
// 1 / (1 + exp(-sum(Weights[j] * diff[j] / Scales[j]))).
type Model struct {
	Lambda  float64   `json:"lambda"`
	Scales  []float64 `json:"scales"`
	Weights []float64 `json:"weights"`
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// pLeft is the model's probability that the left fencer had priority; 1/2
// for a model that was never fitted.
func (md Model) pLeft(diff []float64) float64 {
	if len(md.Weights) != len(diff) {
		return 0.5
	}
	z := 0.0
	for j, d := range diff {
		z += md.Weights[j] * d / md.Scales[j]
	}
	return sigmoid(z)
}

// fitModel fits the weights on rows (left-minus-right features) labelled
// y (1: left had priority) with penalty lambda: Newton's method on the
// mean log-loss plus lambda/2 |w|^2, each feature divided by its RMS.
func fitModel(rows [][]float64, y []float64, lambda float64) Model {
	d := len(features)
	md := Model{Lambda: lambda, Scales: make([]float64, d), Weights: make([]float64, d)}
	if len(rows) == 0 {
		return Model{}
	}
	for j := range d {
		s := 0.0
		for _, r := range rows {
			s += r[j] * r[j]
		}
		if s = math.Sqrt(s / float64(len(rows))); s == 0 {
			s = 1
		}
		md.Scales[j] = s
	}
	n := float64(len(rows))
	x := make([]float64, d)
	for range 50 {
		h := make([][]float64, d)
		for j := range h {
			h[j] = make([]float64, d+1)
			h[j][j] = lambda
			h[j][d] = lambda * md.Weights[j]
		}
		for i, r := range rows {
			z := 0.0
			for j := range d {
				x[j] = r[j] / md.Scales[j]
				z += md.Weights[j] * x[j]
			}
			p := sigmoid(z)
			for j := range d {
				h[j][d] += (p - y[i]) * x[j] / n
				for k := range d {
					h[j][k] += p * (1 - p) * x[j] * x[k] / n
				}
			}
		}
		step := solve(h)
		largest := 0.0
		for j := range md.Weights {
			md.Weights[j] -= step[j]
			largest = math.Max(largest, math.Abs(step[j]))
		}
		if largest < 1e-9 {
			break
		}
	}
	return md
}

// solve solves the augmented system [A | b] by Gaussian elimination with
// partial pivoting, in place.
func solve(m [][]float64) []float64 {
	n := len(m)
	for c := range n {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(m[r][c]) > math.Abs(m[p][c]) {
				p = r
			}
		}
		m[c], m[p] = m[p], m[c]
		if m[c][c] == 0 {
			continue
		}
		for r := c + 1; r < n; r++ {
			f := m[r][c] / m[c][c]
			for k := c; k <= n; k++ {
				m[r][k] -= f * m[c][k]
			}
		}
	}
	x := make([]float64, n)
	for r := n - 1; r >= 0; r-- {
		s := m[r][n]
		for k := r + 1; k < n; k++ {
			s -= m[r][k] * x[k]
		}
		if m[r][r] != 0 {
			x[r] = s / m[r][r]
		}
	}
	return x
}

// labelled is a fitting row: features, 1 if the referee gave left, its day.
type labelled struct {
	diff []float64
	y    float64
	day  string
}

// fitWithLambda chooses lambda by the log-loss of leaving one day of rows
// out at a time, and fits all rows with it. Rows of a single day give
// nothing to leave out: they get soloLambda.
func fitWithLambda(rows []labelled) Model {
	days := daysOf(rows)
	if len(days) < 2 {
		return fitRows(rows, func(labelled) bool { return true }, soloLambda)
	}
	best, bestLoss := lambdas[0], math.Inf(1)
	for _, l := range lambdas {
		loss := 0.0
		for _, d := range days {
			md := fitRows(rows, func(r labelled) bool { return r.day != d }, l)
			for _, r := range rows {
				if r.day == d {
					p := math.Min(math.Max(md.pLeft(r.diff), 1e-9), 1-1e-9)
					loss -= r.y*math.Log(p) + (1-r.y)*math.Log(1-p)
				}
			}
		}
		if loss < bestLoss {
			best, bestLoss = l, loss
		}
	}
	return fitRows(rows, func(labelled) bool { return true }, best)
}

func fitRows(rows []labelled, keep func(labelled) bool, lambda float64) Model {
	var xs [][]float64
	var ys []float64
	for _, r := range rows {
		if keep(r) {
			xs, ys = append(xs, r.diff), append(ys, r.y)
		}
	}
	return fitModel(xs, ys, lambda)
}

func daysOf(rows []labelled) []string {
	var ds []string
	for _, r := range rows {
		if !slices.Contains(ds, r.day) {
			ds = append(ds, r.day)
		}
	}
	slices.Sort(ds)
	return ds
}

// explain words the three features that pushed the model's call most, for
// the fencer it favours.
func (md Model) explain(mv movement, p float64) string {
	sign, winner, loser := 1.0, "Left", "right"
	if p < 0.5 {
		sign, winner, loser = -1, "Right", "left"
	}
	type push struct {
		j int
		v float64
	}
	var ps []push
	for j := range md.Weights {
		ps = append(ps, push{j, sign * md.Weights[j] * mv.diff[j] / md.Scales[j]})
	}
	slices.SortStableFunc(ps, func(a, b push) int { return cmp.Compare(b.v, a.v) })
	var why []string
	for _, x := range ps[:3] {
		if x.v <= 0.05 {
			break
		}
		f := features[x.j]
		wv, lv := mv.left[x.j], mv.right[x.j]
		if sign < 0 {
			wv, lv = lv, wv
		}
		words := f.more
		if md.Weights[x.j] < 0 {
			words = f.less
		}
		why = append(why, fmt.Sprintf("%s %s (%.2f %s against %s's %.2f)", winner, words, wv, f.unit, loser, lv))
	}
	return strings.Join(why, "; ")
}

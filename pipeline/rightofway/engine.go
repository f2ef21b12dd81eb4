// Package rightofway calls a phrase from both fencers' tracks and the
// scoring box's log: a single light or none keeps the box's verdict, and a
// double touch goes to the fencer who had priority at the first hit, or is
// a simultaneous action.
//
// A double touch is read backwards from the first hit, as a sabre referee
// reads it. A blade contact that stopped an attack passes priority to the
// fencer who answered it (RuleBladeContact). Otherwise: if only one fencer
// was going forward at the hit, that fencer attacked (RuleOneAttacking); if
// both were, the one whose final action began first had priority
// (RuleEarlierAttack); if they began together, the one whose lamp the box
// lit first, where the fit chose so (RuleFirstLight), or else the one whose
// weapon arm was extended into the final action was attacking and the
// other still preparing (RuleArmExtended); if neither was going forward,
// the nearer to it (RuleNeitherAttacking); with nothing to tell them apart,
// a simultaneous action. Then a movement model, a logistic regression on
// the difference between the fencers' whole movement into the hit,
// overrules the rules where it is surer than a fitted margin
// (RuleMovement), a first-light call too unless the fit chose to keep it.
//
// The values that come from refereed phrases (the model's weights, the
// margin, whether the first lamp decides and whether the model may
// overrule it, each rule's confidence) are fitted by Fit; DefaultParams are
// Fit on the project's refereed sabre phrases. Every other threshold is
// fixed in advance from how sabre is fenced, each with its reason beside
// it.
//
// The tracks may come from any tracker: the motion analyzer's silhouettes
// (hips only, in pixels with an assumed scale: the rules alone decide, as
// the model needs arms and feet), a pose estimator's keypoints, or a tracks
// file on disk. Where they do not show the final action the call is
// undecided with confidence 0. Decide never reads a call written in the log
// (a referee's or another system's): only the lights, the hit lines'
// times and the blade contacts.
package rightofway

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/tracks"
)

// WinnerUndecided is the call when the tracks do not show what right-of-way
// needs: a fencer missing around the hit, tracks that stop well before it,
// or no fencer found at all.
const WinnerUndecided = signal.WinnerUndecided

// Evidence limits.
const (
	// endSlackS: tracks that stop at most this long before the first hit
	// still show the phrase (real recordings stop as the lights come on, up
	// to 0.38 s before the log's hit); a longer gap hides the hit.
	endSlackS = 0.5
	// hitWindowS is the stretch before the hit in which both fencers must be
	// seen: the final action a referee judges.
	hitWindowS = 1.0
	// minSeenShare of hitWindowS's frames must show each fencer.
	minSeenShare = 0.5
	// poseHeightM is the height of a fencer en garde from the eyes to the
	// ankles, to scale pixel tracks of unknown scale; minHeightM and
	// maxHeightM bound what that height may measure in scaled tracks
	// before the scale is taken to be wrong (a child en garde, a tall
	// fencer standing up).
	poseHeightM = 1.45
	minHeightM  = 0.8
	maxHeightM  = 2.5
	// maxUnseenS is the longest a fencer may go unseen in the second
	// before the hit: the rules compare when each attack started there and
	// read the last endWinS, and a longer gap can hide either.
	maxUnseenS = 0.2
	// minScore is the keypoint score under which a pose estimator's point
	// is taken as not seen: estimators write low-score guesses for points
	// they could not find instead of leaving them out.
	minScore = 0.3
)

// usable reports whether keypoint k is one to use.
func usable(k tracks.Keypoint) bool { return k.Seen && !(k.Score < minScore) }

// Decide calls the phrase p from t. The result's Decision is the call;
// the rest is what it rests on, frame by frame. Its error is for tracks
// that cannot be used at all: fewer than 2 frames, or pixels of unknown
// scale with no eyes and ankles to measure it from (see Scale).
func Decide(t *tracks.Tracks, p *signal.Phrase) (Timeline, error) {
	return DefaultParams().Decide(t, p)
}

// Decide is Decide with the parameters prm.
func (prm Params) Decide(t *tracks.Tracks, p *signal.Phrase) (Timeline, error) {
	if p == nil {
		return Timeline{}, errors.New("no parsed signal to decide from")
	}
	if err := t.Validate(); err != nil {
		return Timeline{}, err
	}
	ph, scale, err := phraseOf(t, p)
	if err != nil {
		return Timeline{}, err
	}
	d := prm.decide(ph, p)
	if d.Winner != WinnerUndecided && d.Rule != "single_light" && d.Rule != "no_light" {
		if gap := evidenceGap(ph, p); gap != "" {
			d = Decision{Winner: WinnerUndecided, Rule: "no_evidence", Reason: gap, HitS: d.HitS}
		}
	}
	return timeline(ph, d, p, scale), nil
}

// phraseOf turns t into both fencers' motion in metres, and their
// movement into the first hit of p for the model, returning the scale
// used.
func phraseOf(t *tracks.Tracks, p *signal.Phrase) (phrase, float64, error) {
	t = whoIsWho(t)
	n := t.Frames()
	if n < 2 {
		return phrase{}, 0, fmt.Errorf("tracks have %d frames; a decision needs at least 2", n)
	}
	scale, err := Scale(t)
	if err != nil {
		return phrase{}, 0, err
	}
	fencerOf := func(poses []*tracks.Pose, dir float64) fencer {
		xs, seen := bodyX(poses, scale, t.FPS)
		f := kinematics(fill(xs, seen), dir, t.FPS)
		f.seen = seen
		f.reach = reachOf(poses, dir, scale, t.FPS)
		return f
	}
	ph := phrase{left: fencerOf(t.Left, +1), right: fencerOf(t.Right, -1), fps: t.FPS, n: n, heightM: bodyHeight(t) * scale}
	if p.FirstHitS != nil {
		ph.mv = movementOf(t, scale, *p.FirstHitS, p.BladeContactsS)
	}
	return ph, scale, nil
}

// whoIsWho returns t with each pose on the side where it stands: in a
// frame showing both fencers the left one is the one further left (by the
// middle of the hips, else of the shoulders), and a pose alone in its
// frame goes to the side whose fencer it is nearer to, where both fencers
// stood by the frames showing both within maxUnseenS (interpolated between
// the one before and the one after), or stays where it is when there are
// none; a pose as near to both stays too. Trackers swap who is who as the
// fencers close in, or put the one fencer they find in the other's slot,
// and before the touch the fencers have not passed each other (a referee
// halts the phrase when one passes the other). Frames after the touch are
// put in order too: the decision reads a few of them, and a pass there
// only shows as a fencer turning back in the timeline. t itself when
// nothing moves.
func whoIsWho(t *tracks.Tracks) *tracks.Tracks {
	ls, lseen := bodyX(t.Left, 1, t.FPS)
	rs, rseen := bodyX(t.Right, 1, t.FPS)
	var c *tracks.Tracks
	swap := func(i int) {
		if c == nil {
			cp := *t
			cp.Left, cp.Right = slices.Clone(t.Left), slices.Clone(t.Right)
			c = &cp
		}
		c.Left[i], c.Right[i] = c.Right[i], c.Left[i]
	}
	var both []int
	for i := range ls {
		if !lseen[i] || !rseen[i] {
			continue
		}
		if ls[i] > rs[i] {
			swap(i)
			ls[i], rs[i] = rs[i], ls[i]
		}
		both = append(both, i)
	}
	reach := unseenFrames(t.FPS)
	for i := range ls {
		inLeft := t.Left[i] != nil
		if inLeft == (t.Right[i] != nil) {
			continue
		}
		x, seen := ls[i], lseen[i]
		if !inLeft {
			x, seen = rs[i], rseen[i]
		}
		at, ok := bracket(both, i, reach)
		if !seen || !ok {
			continue
		}
		dl, dr := math.Abs(x-at(ls)), math.Abs(x-at(rs))
		if (inLeft && dr < dl) || (!inLeft && dl < dr) {
			swap(i)
		}
	}
	if c == nil {
		return t
	}
	return c
}

// reachOf returns how far a fencer facing dir holds the weapon arm out, in
// metres per frame: the wrist ahead of its own shoulder, towards the
// opponent, taking whichever arm reaches further (pose estimators often
// swap a fencer's sides seen from the side, so the COCO side is no guide);
// NaN where no arm is seen.
func reachOf(poses []*tracks.Pose, dir, scale, fps float64) []float64 {
	arm := func(sh, wr int) func(*tracks.Pose) (float64, bool) {
		return func(p *tracks.Pose) (float64, bool) {
			if !usable(p[sh]) || !usable(p[wr]) {
				return 0, false
			}
			return dir * (p[wr].X - p[sh].X) * scale, true
		}
	}
	out, _ := pairOf(poses, fps, arm(tracks.LeftShoulder, tracks.LeftWrist), arm(tracks.RightShoulder, tracks.RightWrist), math.Max)
	return out
}

// Scale returns the factor that turns t's coordinates into metres: 1 for
// tracks in metres, m_per_px for pixel tracks that give it, else the one
// that makes the fencers' median height from the eyes to the ankles
// poseHeightM. Pixel tracks with no scale and no frame showing eyes and
// ankles are an error: their speeds would mean nothing.
func Scale(t *tracks.Tracks) (float64, error) {
	if s, ok := t.ToMetres(); ok {
		return s, nil
	}
	if h := bodyHeight(t); h > 0 {
		return poseHeightM / h, nil
	}
	return 0, errors.New("pixel tracks without m_per_px, and no frame shows a fencer's eyes and ankles to measure the scale from: add m_per_px")
}

// bodyHeight is the fencers' median height from the eyes (or nose) to
// the lower ankle, in the tracks' units, or 0 if no frame shows both.
func bodyHeight(t *tracks.Tracks) float64 {
	var hs []float64
	for _, side := range [][]*tracks.Pose{t.Left, t.Right} {
		for _, p := range side {
			if p == nil {
				continue
			}
			top, bottom := math.Inf(1), math.Inf(-1)
			for _, k := range []int{tracks.LeftEye, tracks.RightEye, tracks.Nose} {
				if usable(p[k]) {
					top = math.Min(top, p[k].Y)
				}
			}
			for _, k := range []int{tracks.LeftAnkle, tracks.RightAnkle} {
				if usable(p[k]) {
					bottom = math.Max(bottom, p[k].Y)
				}
			}
			if bottom > top {
				hs = append(hs, bottom-top)
			}
		}
	}
	if len(hs) == 0 {
		return 0
	}
	slices.Sort(hs)
	return hs[len(hs)/2]
}

// bodyX returns a fencer's position along the strip in metres per frame
// (the middle of the hips, else of the shoulders) and whether the fencer
// was seen; unseen frames are NaN.
func bodyX(poses []*tracks.Pose, scale, fps float64) ([]float64, []bool) {
	mid := func(x, y float64) float64 { return (x + y) / 2 }
	xs, seen := pairOf(poses, fps, coord(tracks.LeftHip, scale), coord(tracks.RightHip, scale), mid)
	shoulders, shSeen := pairOf(poses, fps, coord(tracks.LeftShoulder, scale), coord(tracks.RightShoulder, scale), mid)
	for i := range xs {
		if !seen[i] && shSeen[i] {
			xs[i], seen[i] = shoulders[i], true
		}
	}
	return xs, seen
}

// coord returns keypoint k's x times scale, and false where it is not
// usable.
func coord(k int, scale float64) func(*tracks.Pose) (float64, bool) {
	return func(p *tracks.Pose) (float64, bool) {
		if !usable(p[k]) {
			return 0, false
		}
		return p[k].X * scale, true
	}
}

// pairOf returns join of two measures of a fencer per frame (two
// keypoints, two arms), and whether either was seen; a and b give a
// pose's measure and whether it shows. Estimators lose a hip, an ankle or
// a wrist for a frame or two, and the one seen alone would move the
// fencer by half a hip's width, a whole stance or the other arm's reach;
// they also swap a fencer's COCO sides. So a frame that shows only one
// measure reads it as whichever of the two it is nearer to in the frames
// showing both within maxUnseenS (interpolated between the one before and
// the one after), with the offset join had from that one there; with no
// such frame, the one seen stands for the pair. Frames showing neither
// are NaN.
func pairOf(poses []*tracks.Pose, fps float64, a, b func(*tracks.Pose) (float64, bool), join func(x, y float64) float64) ([]float64, []bool) {
	n := len(poses)
	out, seen := make([]float64, n), make([]bool, n)
	for i := range out {
		out[i] = math.NaN()
	}
	// xs[0] and xs[1] hold a's and b's measures in the frames that show
	// both, listed in both.
	xs := [2][]float64{make([]float64, n), make([]float64, n)}
	var both []int
	for i, p := range poses {
		if p == nil {
			continue
		}
		xa, oka := a(p)
		xb, okb := b(p)
		if oka && okb {
			out[i], seen[i] = join(xa, xb), true
			xs[0][i], xs[1][i] = xa, xb
			both = append(both, i)
		}
	}
	reach := unseenFrames(fps)
	for i, p := range poses {
		if seen[i] || p == nil {
			continue
		}
		x, ok := a(p)
		if !ok {
			if x, ok = b(p); !ok {
				continue
			}
		}
		out[i], seen[i] = x, true
		if at, ok := bracket(both, i, reach); ok {
			ea, eb := at(xs[0]), at(xs[1])
			if math.Abs(x-ea) <= math.Abs(x-eb) {
				out[i] += join(ea, eb) - ea
			} else {
				out[i] += join(ea, eb) - eb
			}
		}
	}
	return out, seen
}

// unseenFrames is maxUnseenS in frames at fps, at least one.
func unseenFrames(fps float64) int { return max(1, int(math.Round(maxUnseenS*fps))) }

// bracket returns, for frame i, a function reading a series known at
// the sorted frames in full: interpolated between the nearest of them
// before i and after i when both are within reach frames of it, else the
// one of those that is; false when none is.
func bracket(full []int, i, reach int) (func(v []float64) float64, bool) {
	k, _ := slices.BinarySearch(full, i)
	prev, next := -1, -1
	if k > 0 && i-full[k-1] <= reach {
		prev = full[k-1]
	}
	if k < len(full) && full[k]-i <= reach {
		next = full[k]
	}
	switch {
	case prev >= 0 && next >= 0:
		w := float64(i-prev) / float64(next-prev)
		return func(v []float64) float64 { return v[prev] + w*(v[next]-v[prev]) }, true
	case prev >= 0:
		return func(v []float64) float64 { return v[prev] }, true
	case next >= 0:
		return func(v []float64) float64 { return v[next] }, true
	}
	return nil, false
}

// fill returns xs with the unseen frames interpolated between the seen
// ones around them and held at the ends, for the kinematics; a fencer
// never seen stays at 0.
func fill(xs []float64, seen []bool) []float64 {
	out := slices.Clone(xs)
	prev := -1
	for i := range out {
		if !seen[i] {
			continue
		}
		switch {
		case prev < 0:
			for j := range i {
				out[j] = xs[i]
			}
		case i-prev > 1:
			for j := prev + 1; j < i; j++ {
				f := float64(j-prev) / float64(i-prev)
				out[j] = xs[prev] + f*(xs[i]-xs[prev])
			}
		}
		prev = i
	}
	if prev < 0 {
		for i := range out {
			out[i] = 0
		}
		return out
	}
	for j := prev + 1; j < len(out); j++ {
		out[j] = xs[prev]
	}
	return out
}

// evidenceGap says why the tracks cannot decide the double touch of p, or
// "" if they can.
func evidenceGap(ph phrase, p *signal.Phrase) string {
	if p.FirstHitS != nil {
		hit := *p.FirstHitS
		if end := ph.secs(ph.n - 1); hit-end > endSlackS {
			return fmt.Sprintf("The tracks end at %.2f s, %.2f s before the hit at %.2f s, so the final action is not seen", end, hit-end, hit)
		}
	}
	if !slices.Contains(ph.left.seen, true) && !slices.Contains(ph.right.seen, true) {
		return "No fencer was found, so right-of-way cannot be told"
	}
	if ph.heightM > 0 && (ph.heightM < minHeightM || ph.heightM > maxHeightM) {
		return fmt.Sprintf("The fencers measure %.2f m from the eyes to the ankles, so the tracks' scale is wrong (check m_per_px) and their speeds mean nothing", ph.heightM)
	}
	if p.FirstHitS == nil {
		return ""
	}
	hit := *p.FirstHitS
	a, b := ph.frame(hit-hitWindowS), ph.frame(hit)
	final := ph.frame(hit - endWinS)
	longest := unseenFrames(ph.fps)
	for _, f := range []struct {
		name string
		seen []bool
	}{{"left", ph.left.seen}, {"right", ph.right.seen}} {
		// worst is the longest run of unseen frames, ending at frame last.
		c, cf, run, worst, last := 0, 0, 0, 0, 0
		for i := a; i <= b; i++ {
			if f.seen[i] {
				c++
				if i >= final {
					cf++
				}
				run = 0
				continue
			}
			if run++; run > worst {
				worst, last = run, i
			}
		}
		switch {
		case float64(c) < minSeenShare*float64(b-a+1):
			return fmt.Sprintf("The %s fencer is not seen in %d of the %d frames before the hit at %.2f s, so right-of-way cannot be told",
				f.name, b-a+1-c, b-a+1, hit)
		case float64(cf) < minSeenShare*float64(b-final+1):
			return fmt.Sprintf("The %s fencer is not seen in %d of the last %d frames before the hit at %.2f s, so the final action cannot be told",
				f.name, b-final+1-cf, b-final+1, hit)
		case worst > longest:
			return fmt.Sprintf("The %s fencer is not seen for %.2f s, from %.2f to %.2f s, in the second before the hit at %.2f s, so right-of-way cannot be told",
				f.name, float64(worst)/ph.fps, ph.secs(last-worst+1), ph.secs(last+1), hit)
		}
	}
	return ""
}

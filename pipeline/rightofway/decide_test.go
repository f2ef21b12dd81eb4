package rightofway

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/tracks"
)

// leg is a stretch of a scripted track: dur seconds at speed m/s towards
// the opponent.
type leg struct{ dur, speed float64 }

const testFPS = 15.0

// trackOf plays legs from x0 metres for a fencer facing dir, and returns
// the positions of n frames.
func trackOf(x0, dir float64, n int, legs ...leg) []float64 {
	xs := make([]float64, n)
	x, k, left := x0, 0, 0.0
	if len(legs) > 0 {
		left = legs[0].dur
	}
	for i := range n {
		xs[i] = x
		step := 1 / testFPS
		for step > 1e-12 && k < len(legs) {
			d := min(step, left)
			x += dir * legs[k].speed * d
			step -= d
			left -= d
			if left <= 1e-12 {
				k++
				if k < len(legs) {
					left = legs[k].dur
				}
			}
		}
	}
	return xs
}

// posesOf are poses with hips at xs and, when reach is not nil, the
// shoulders there too and one wrist reach[i] metres towards the opponent.
func posesOf(xs []float64, dir float64, reach []float64) []*tracks.Pose {
	ps := make([]*tracks.Pose, len(xs))
	for i, x := range xs {
		var p tracks.Pose
		kp := func(x, y float64) tracks.Keypoint { return tracks.Keypoint{X: x, Y: y, Score: math.NaN(), Seen: true} }
		p[tracks.LeftHip], p[tracks.RightHip] = kp(x, 1), kp(x, 1)
		if reach != nil {
			p[tracks.LeftShoulder], p[tracks.RightShoulder] = kp(x, 0.5), kp(x, 0.5)
			p[tracks.RightWrist] = kp(x+dir*reach[i], 0.5)
		}
		ps[i] = &p
	}
	return ps
}

// armOf is a reach of out metres from time from on, 0.1 m before.
func armOf(n int, from, out float64) []float64 {
	r := make([]float64, n)
	for i := range r {
		r[i] = 0.1
		if float64(i)/testFPS >= from {
			r[i] = out
		}
	}
	return r
}

// logOf renders and parses a log with the given hits (side scoring, time)
// and blade contacts.
func logOf(t *testing.T, hits [][2]any, contacts ...float64) *signal.Phrase {
	t.Helper()
	spec := signal.LogSpec{Phrase: 1, Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Events: []signal.Event{{TimeS: 0.001, Kind: signal.EventRecordingStarted}}}
	for _, c := range contacts {
		spec.Events = append(spec.Events, signal.Event{TimeS: c, Kind: signal.EventBladeContact})
	}
	for i, h := range hits {
		side, at := h[0].(string), h[1].(float64)
		kind := signal.EventHit
		if i > 0 {
			kind = signal.EventSimultaneousHit
		}
		spec.Events = append(spec.Events, signal.Event{TimeS: at, Kind: kind})
		if side == "left" {
			spec.Box.Left = true
		} else {
			spec.Box.Right = true
		}
	}
	spec.Events = append(spec.Events, signal.Event{TimeS: 2.9, Kind: signal.EventRecordingEnded})
	p, err := signal.Parse(signal.Render(spec))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDecideRightOfWay(t *testing.T) {
	const n = 45 // 3 s
	double := [][2]any{{"left", 2.0}, {"right", 2.05}}
	for _, c := range []struct {
		name              string
		left, right       []leg
		leftArm, rightArm []float64
		hits              [][2]any
		contacts          []float64
		winner, rule      string
		reason            string
	}{
		{
			name:   "left attacks, right pauses",
			left:   []leg{{0.3, 0}, {1.7, 0.8}, {1, 0}},
			right:  []leg{{0.3, 0}, {0.4, 0.8}, {2.3, 0}},
			hits:   double,
			winner: WinnerLeft, rule: RuleOneAttacking,
			reason: "Left was attacking while right was standing still in the last",
		},
		{
			name:   "right attacks, left retreats",
			left:   []leg{{0.5, 0}, {1.5, -0.6}, {1, 0}},
			right:  []leg{{0.3, 0}, {1.7, 0.8}, {1, 0}},
			hits:   double,
			winner: WinnerRight, rule: RuleOneAttacking,
			reason: "Right was attacking while left was going back (",
		},
		{
			name:   "right halts in the final action",
			left:   []leg{{0.3, 0}, {1.7, 0.8}, {1, 0}},
			right:  []leg{{0.3, 0}, {1.3, 0.8}, {0.25, 0}, {0.15, 0.8}, {1, 0}},
			hits:   double,
			winner: WinnerLeft, rule: RuleEarlierAttack,
			reason: "Left started the final attack at 0.33 s; right only went forward from",
		},
		{
			name:   "both pause, left resumes first",
			left:   []leg{{0.3, 0}, {0.4, 0.8}, {0.3, 0}, {1.0, 0.8}, {1, 0}},
			right:  []leg{{0.3, 0}, {0.4, 0.8}, {0.75, 0}, {0.55, 0.8}, {1, 0}},
			hits:   double,
			winner: WinnerLeft, rule: RuleEarlierAttack,
			reason: "Left started the final attack at 1.00 s; right only went forward from 1.47 s; hit at 2.00 s",
		},
		{
			name:     "together, right's arm out first",
			left:     []leg{{0.5, 0}, {1.5, 0.8}, {1, 0}},
			right:    []leg{{0.5, 0}, {1.5, 0.8}, {1, 0}},
			leftArm:  armOf(n, 1.95, 0.3),
			rightArm: armOf(n, 1.6, 0.55),
			hits:     double,
			winner:   WinnerRight, rule: RuleArmExtended,
			reason: "Both went forward together from 0.53 s; Right's arm was extended into the final action (reach 0.55 m against",
		},
		{
			name:   "together, no arms seen",
			left:   []leg{{0.5, 0}, {1.5, 0.8}, {1, 0}},
			right:  []leg{{0.55, 0}, {1.45, 0.8}, {1, 0}},
			hits:   double,
			winner: WinnerSimultaneous, rule: RuleSimultaneous,
			reason: "Simultaneous action: both went forward together from 0.53 s and their arms are not seen",
		},
		{
			name:     "beat stops left's attack, right lunges",
			left:     []leg{{0.3, 0}, {1.2, 0.8}, {0.3, 0}, {0.2, 0.8}, {1, 0}},
			right:    []leg{{1.55, 0}, {0.45, 2}, {1, 0}},
			hits:     [][2]any{{"right", 2.0}, {"left", 2.1}},
			contacts: []float64{1.5},
			winner:   WinnerRight, rule: RuleBladeContact,
			reason: "Left attacked; blade contact at 1.50 s (beat or parry) stopped the attack; right attacked from 1.53 s; hit at 2.00 s",
		},
		{
			name:   "nobody moves",
			left:   []leg{{3, 0}},
			right:  []leg{{3, 0}},
			hits:   double,
			winner: WinnerSimultaneous, rule: RuleSimultaneous,
			reason: "Neither fencer was going forward at the hit at 2.00 s",
		},
		{
			name:   "single light keeps the box's verdict",
			left:   []leg{{3, 0}},
			right:  []leg{{0.3, 0}, {1.7, 0.8}, {1, 0}},
			hits:   [][2]any{{"left", 2.0}},
			winner: WinnerLeft, rule: "single_light",
			reason: "Left scored: only the left light (red) came on",
		},
		{
			name:   "no light",
			left:   []leg{{3, 0}},
			right:  []leg{{3, 0}},
			winner: WinnerNone, rule: "no_light",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := &tracks.Tracks{FPS: testFPS, Units: tracks.UnitsMetres,
				Left:  posesOf(trackOf(1, 1, n, c.left...), 1, c.leftArm),
				Right: posesOf(trackOf(5, -1, n, c.right...), -1, c.rightArm)}
			tl := decided(t, tr, logOf(t, c.hits, c.contacts...))
			d := tl.Decision
			if d.Winner != c.winner || d.Rule != c.rule || !strings.HasPrefix(d.Reason, c.reason) {
				t.Errorf("decision %s by %s: %q\nwant %s by %s: %q...\nleft %+v\nright %+v",
					d.Winner, d.Rule, d.Reason, c.winner, c.rule, c.reason, tl.Left.Phases, tl.Right.Phases)
			}
			if !(d.Confidence > 0 && d.Confidence <= 1) {
				t.Errorf("confidence %v", d.Confidence)
			}
		})
	}
}

func TestPhasesOfAScriptedTrack(t *testing.T) {
	// Still 0.5 s, advance 1 s at 0.8 m/s, lunge 0.3 s at 2.5 m/s, held
	// 0.5 s, retreat 0.6 s at 0.6 m/s, still.
	xs := trackOf(1, 1, 54, leg{0.5, 0}, leg{1, 0.8}, leg{0.3, 2.5}, leg{0.5, 0}, leg{0.6, -0.6}, leg{0.7, 0})
	f := kinematics(xs, 1, testFPS)
	var kinds []string
	for _, p := range f.phases {
		kinds = append(kinds, p.Kind)
	}
	want := "pause advance lunge retreat pause"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("phases %q, want %q: %+v", got, want, f.phases)
	}
	adv, lunge, ret := f.phases[1], f.phases[2], f.phases[3]
	if adv.StartS < 0.4 || adv.StartS > 0.6 || lunge.PeakSpeed < lungeSpeed || ret.DistanceM > -0.3 {
		t.Errorf("advance from %.2f s, lunge peak %.2f m/s, retreat %.2f m: want about 0.5 s, > %v m/s and -0.36 m",
			adv.StartS, lunge.PeakSpeed, ret.DistanceM, lungeSpeed)
	}
}

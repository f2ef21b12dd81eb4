package rightofway

import (
	"strings"
	"testing"
	"time"

	"github.com/referee-project/referee/pipeline/signal"
)

// leg is a stretch of a scripted track: dur seconds at speed m/s towards
// the opponent.
type leg struct{ dur, speed float64 }

const testFPS = 15.0

// trackOf plays legs from x0 pixels at 1 cm per pixel for a fencer facing
// dir, and returns the positions of n frames.
func trackOf(x0, dir float64, n int, legs ...leg) []float64 {
	xs := make([]float64, n)
	x, t, k, left := x0, 0.0, 0, 0.0
	if len(legs) > 0 {
		left = legs[0].dur
	}
	for i := range n {
		xs[i] = x
		step := 1 / testFPS
		for step > 1e-12 && k < len(legs) {
			d := min(step, left)
			x += dir * legs[k].speed * d * 100
			step -= d
			left -= d
			t += d
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
		name        string
		left, right []leg
		hits        [][2]any
		contacts    []float64
		winner      string
		rule        string
		reason      string
	}{
		{
			name:   "left attacks, right pauses",
			left:   []leg{{0.3, 0}, {1.7, 0.8}, {1, 0}},
			right:  []leg{{0.3, 0}, {0.4, 0.8}, {2.3, 0}},
			hits:   double,
			winner: WinnerLeft, rule: "attack_vs_no_attack",
			reason: "Left attacked from 0.33 s; right paused 0.73-2.93 s; hit at 2.00 s",
		},
		{
			name:   "right attacks, left retreats",
			left:   []leg{{0.5, 0}, {1.5, -0.6}, {1, 0}},
			right:  []leg{{0.3, 0}, {1.7, 0.8}, {1, 0}},
			hits:   double,
			winner: WinnerRight, rule: "attack_vs_no_attack",
			reason: "Right attacked from 0.33 s; left paused 0.00-0.47 s and retreated 0.53-2.00 s; hit at 2.00 s",
		},
		{
			name:   "both attack together",
			left:   []leg{{0.5, 0}, {1.5, 0.8}, {1, 0}},
			right:  []leg{{0.55, 0}, {1.45, 0.8}, {1, 0}},
			hits:   double,
			winner: WinnerSimultaneous, rule: "simultaneous",
			reason: "Simultaneous action",
		},
		{
			name:   "both pause, left resumes first",
			left:   []leg{{0.3, 0}, {0.6, 0.8}, {0.5, 0}, {0.6, 0.8}, {1, 0}},
			right:  []leg{{0.3, 0}, {0.6, 0.8}, {0.9, 0}, {0.2, 0.8}, {1, 0}},
			hits:   double,
			winner: WinnerLeft, rule: "earlier_attack",
			reason: "Left paused 0.93-1.33 s and resumed first, attacking from 1.40 s; right paused 0.93-1.73 s, then attacked from 1.80 s; hit at 2.00 s",
		},
		{
			name:     "beat stops left's attack, right lunges",
			left:     []leg{{0.3, 0}, {1.2, 0.8}, {0.3, 0}, {0.2, 0.8}, {1, 0}},
			right:    []leg{{1.55, 0}, {0.45, 2}, {1, 0}},
			hits:     [][2]any{{"right", 2.0}, {"left", 2.1}},
			contacts: []float64{1.5},
			winner:   WinnerRight, rule: "blade_contact",
			reason: "Left attacked; blade contact at 1.50 s (beat or parry) stopped the attack; right attacked from 1.53 s; hit at 2.00 s",
		},
		{
			name:     "left's beat keeps left's attack going",
			left:     []leg{{0.3, 0}, {1.7, 0.8}, {1, 0}},
			right:    []leg{{3, 0}},
			hits:     double,
			contacts: []float64{1.2},
			winner:   WinnerLeft, rule: "attack_vs_no_attack",
		},
		{
			name:   "nobody moves",
			left:   []leg{{3, 0}},
			right:  []leg{{3, 0}},
			hits:   double,
			winner: WinnerSimultaneous, rule: "no_attack",
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
			ph := phrase{
				left:  kinematics(trackOf(100, 1, n, c.left...), 1, 0.01, testFPS),
				right: kinematics(trackOf(500, -1, n, c.right...), -1, 0.01, testFPS),
				fps:   testFPS, n: n,
			}
			d := decide(ph, logOf(t, c.hits, c.contacts...))
			if d.Winner != c.winner || d.Rule != c.rule || !strings.HasPrefix(d.Reason, c.reason) {
				t.Errorf("decision %s by %s: %q\nwant %s by %s: %q...\nleft %+v\nright %+v",
					d.Winner, d.Rule, d.Reason, c.winner, c.rule, c.reason, ph.left.phases, ph.right.phases)
			}
			if !(d.Confidence > 0 && d.Confidence <= 1) {
				t.Errorf("confidence %v", d.Confidence)
			}
		})
	}
}

func TestPhasesOfAScriptedTrack(t *testing.T) {
	// Still 0.5 s, advance 1 s at 0.8 m/s, lunge 0.3 s at 2.5 m/s, still
	// 0.5 s, retreat 0.6 s at 0.6 m/s, still.
	xs := trackOf(100, 1, 54, leg{0.5, 0}, leg{1, 0.8}, leg{0.3, 2.5}, leg{0.5, 0}, leg{0.6, -0.6}, leg{0.7, 0})
	f := kinematics(xs, 1, 0.01, testFPS)
	var kinds []string
	for _, p := range f.phases {
		kinds = append(kinds, p.Kind)
	}
	want := "pause advance lunge pause retreat pause"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("phases %q, want %q: %+v", got, want, f.phases)
	}
	adv, lunge, ret := f.phases[1], f.phases[2], f.phases[4]
	if adv.StartS < 0.4 || adv.StartS > 0.6 || lunge.PeakSpeed < lungeSpeed || ret.DistanceM > -0.3 {
		t.Errorf("advance from %.2f s, lunge peak %.2f m/s, retreat %.2f m: want about 0.5 s, > %v m/s and -0.36 m",
			adv.StartS, lunge.PeakSpeed, ret.DistanceM, lungeSpeed)
	}
}

package rightofway

import (
	"fmt"
	"math"

	"github.com/referee-project/referee/pipeline/signal"
)

// Values fixed in advance from how sabre is fenced, not fitted.
const (
	// goingS is the forward speed of the hips above which a fencer is going
	// forward: a fencer en garde sways well below 0.3 m/s, and the slowest
	// step of an attack is 0.5 to 1 m/s.
	goingS = 0.3
	// haltFrames15 is how long, in frames at 15 fps (0.2 s), a fencer must
	// be below goingS for it to break an action: the shortest halt a
	// referee sees as a stop.
	haltFrames15 = 3
	// onsetTolS: final actions that start within this of each other (two
	// frames at 15 fps) started together.
	onsetTolS = 0.14
	// endWinS is how long before the hit a fencer's mean speed says
	// whether they were attacking at the hit: four frames at 15 fps, about
	// one sabre step.
	endWinS = 0.27
	// armWinS is how long before the hit the weapon arm's reach is
	// averaged when both started together: two frames at 15 fps, the arm
	// as it lands.
	armWinS = 0.14
)

// The rules that decide a double touch by priority, in the order they are
// tried, reading the phrase backwards from the first hit.
const (
	RuleOneAttacking  = "one_attacking"
	RuleEarlierAttack = "earlier_attack"
	RuleArmExtended   = "arm_extended"
	// RuleFirstLight: both started together, their arms differ and one
	// lamp came on before the other; used only where Params.FirstLight
	// says so, in place of RuleArmExtended.
	RuleFirstLight       = "first_light"
	RuleNeitherAttacking = "neither_attacking"
	RuleSimultaneous     = "simultaneous"
	RuleBladeContact     = "blade_contact"
	// RuleMovement is the movement model overruling the rules.
	RuleMovement = "movement"
)

// priorityRules lists the rules Fit gives a confidence.
var priorityRules = []string{RuleBladeContact, RuleOneAttacking, RuleEarlierAttack, RuleFirstLight, RuleArmExtended, RuleNeitherAttacking, RuleSimultaneous}

// side is one fencer as the priority rules see them.
type side struct {
	name string // "left" or "right"
	f    fencer
}

func (s side) title() string { return title(s.name) }

// meanVel is s's mean forward speed over frames a..b.
func (s side) meanVel(a, b int) float64 {
	sum := 0.0
	for i := a; i <= b; i++ {
		sum += s.f.vel[i]
	}
	return sum / float64(b-a+1)
}

// onset is the first frame of the forward action s is in at frame h: the
// frame after s's last halt of halt frames below goingS.
func (s side) onset(h, halt int) int {
	run := 0
	for i := h; i >= 0; i-- {
		if s.f.vel[i] > goingS {
			run = 0
			continue
		}
		if run++; run >= halt {
			return i + run
		}
	}
	return 0
}

// reach is s's mean weapon-arm reach over frames a..b, and false if the
// arm was never seen.
func (s side) reach(a, b int) (float64, bool) {
	sum, c := 0.0, 0
	for i := a; i <= b; i++ {
		if !math.IsNaN(s.f.reach[i]) {
			sum += s.f.reach[i]
			c++
		}
	}
	if c == 0 {
		return 0, false
	}
	return sum / float64(c), true
}

// state words a forward speed.
func state(v float64) string {
	switch {
	case v > goingS:
		return fmt.Sprintf("going forward (%.1f m/s)", v)
	case v < -goingS:
		return fmt.Sprintf("going back (%.1f m/s)", -v)
	}
	return "standing still"
}

// priority calls the double touch p whose first hit is at hit seconds:
// the fencer who had priority then, or a simultaneous action.
func (prm Params) priority(ph phrase, p *signal.Phrase, hit float64) Decision {
	h := max(1, min(ph.n-1, int(math.Round(hit*ph.fps))))
	L, R := side{"left", ph.left}, side{"right", ph.right}
	frames := func(s float64) int { return max(1, int(math.Round(s*ph.fps))) }
	hitText := fmt.Sprintf("hit at %.2f s", hit)
	d := Decision{HitS: hit}
	decided := func(w side, rule, reason string) Decision {
		d.Winner, d.Rule, d.Reason = w.name, rule, reason
		d.Confidence = prm.confidence(rule)
		return d
	}

	// The state at the hit: who was going forward over the last endWinS.
	k := frames(endWinS)
	vl, vr := L.meanVel(max(0, h-k+1), h), R.meanVel(max(0, h-k+1), h)
	goL, goR := vl > goingS, vr > goingS
	halt := max(2, int(math.Round(haltFrames15*ph.fps/15)))
	if goL {
		d.LeftAttackS = ptr(ph.secs(L.onset(h, halt)))
	}
	if goR {
		d.RightAttackS = ptr(ph.secs(R.onset(h, halt)))
	}
	if goL != goR {
		w, o, vo := L, R, vr
		if goR {
			w, o, vo = R, L, vl
		}
		return decided(w, RuleOneAttacking, fmt.Sprintf("%s was attacking while %s was %s in the last %.2f s before the %s",
			w.title(), o.name, state(vo), endWinS, hitText))
	}
	if !goL {
		w := L
		if vr > vl {
			w = R
		}
		if math.Abs(vl-vr) < 1e-9 {
			return prm.simultaneous(d, fmt.Sprintf("Neither fencer was going forward at the %s, so neither had an attack with priority; no touch", hitText))
		}
		return decided(w, RuleNeitherAttacking, fmt.Sprintf("Neither fencer was clearly attacking at the %s; %s was the nearer to going forward (%.2f against %.2f m/s)",
			hitText, w.name, math.Max(vl, vr), math.Min(vl, vr)))
	}

	// Both attacking without a falter: the one whose final action began
	// first attacked; the other counter-attacked.
	ol, or := L.onset(h, halt), R.onset(h, halt)
	if diff := ph.secs(or) - ph.secs(ol); math.Abs(diff) > onsetTolS+1e-9 {
		w, o, wo, oo := L, R, ol, or
		if diff < 0 {
			w, o, wo, oo = R, L, or, ol
		}
		return decided(w, RuleEarlierAttack, fmt.Sprintf("%s started the final attack at %.2f s; %s only went forward from %.2f s; %s",
			w.title(), ph.secs(wo), o.name, ph.secs(oo), hitText))
	}

	// Started together: the one whose arm was extended into the final
	// action was attacking; the other was still preparing. Where the arms
	// do not tell them apart it is a simultaneous action.
	from := min(ol, or)
	ka := int(math.Round(armWinS * ph.fps))
	al, okL := L.reach(max(0, h-ka), h)
	ar, okR := R.reach(max(0, h-ka), h)
	if !okL || !okR || math.Abs(al-ar) < 1e-9 {
		why := "their arms are not seen"
		if okL && okR {
			why = fmt.Sprintf("their arms reached equally far (%.2f m)", al)
		}
		return prm.simultaneous(d, fmt.Sprintf("Simultaneous action: both went forward together from %.2f s and %s; %s; no touch", ph.secs(from), why, hitText))
	}
	// Where the fit found that the box's first lamp agrees with the
	// referees more often than the arms do, the lamp replaces the arms.
	// Only there: it was measured on phrases whose arms are seen, and
	// with nothing else to tell the fencers apart the call stays a
	// simultaneous action.
	if fl, ok := firstLight(p); ok && prm.FirstLight {
		w := L
		if fl.side == "right" {
			w = R
		}
		return decided(w, RuleFirstLight, fmt.Sprintf("Both went forward together from %.2f s; %s's light came on first (%d ms before %s's); %s",
			ph.secs(from), w.title(), fl.leadMs, opposite(fl.side), hitText))
	}
	w, o, wa, oa := L, R, al, ar
	if ar > al {
		w, o, wa, oa = R, L, ar, al
	}
	return decided(w, RuleArmExtended, fmt.Sprintf("Both went forward together from %.2f s; %s's arm was extended into the final action (reach %.2f m against %.2f m) while %s was still preparing; %s",
		ph.secs(from), w.title(), wa, oa, o.name, hitText))
}

func (prm Params) simultaneous(d Decision, reason string) Decision {
	d.Winner, d.Rule, d.Reason = WinnerSimultaneous, RuleSimultaneous, reason
	d.Confidence = prm.confidence(RuleSimultaneous)
	return d
}

// light is the lamp that came on first in a double touch.
type light struct {
	side   string // "left" or "right"
	leadMs int    // how long before the other lamp, in whole milliseconds
}

// firstLight returns the lamp the box lit first in p, read from its hit
// lines (lightOf), and false when the log does not say that one lamp came
// on before the other: the first hit line is the box's "simultaneous"
// one or names no side, no line for the other lamp follows it, or the
// other lamp's line is written at the same millisecond.
func firstLight(p *signal.Phrase) (light, bool) {
	first, at := "", 0.0
	for _, ev := range p.Events {
		if ev.Kind != signal.EventHit && ev.Kind != signal.EventSimultaneousHit {
			continue
		}
		lamp := lightOf(ev, first)
		if first == "" {
			// A "simultaneous" first line has no lamp before first is known.
			if lamp == "" {
				return light{}, false
			}
			first, at = lamp, ev.TimeS
			continue
		}
		if lamp == first {
			continue
		}
		lead := int(math.Round(1000 * (ev.TimeS - at)))
		if lead <= 0 {
			return light{}, false
		}
		return light{side: first, leadMs: lead}, true
	}
	return light{}, false
}

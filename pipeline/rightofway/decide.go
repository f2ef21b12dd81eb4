package rightofway

import (
	"fmt"
	"math"
	"strings"

	"github.com/referee-project/referee/pipeline/signal"
)

// Winner values of a decision: signal's, and simultaneous for a double
// touch where neither had priority.
const (
	WinnerLeft         = signal.WinnerLeft
	WinnerRight        = signal.WinnerRight
	WinnerNone         = signal.WinnerNone
	WinnerSimultaneous = "simultaneous"
)

// Right-of-way timing.
const (
	// simultaneousS: attacks that start closer together than this are a
	// simultaneous action (three frames at 15 fps; a referee does not see
	// finer).
	simultaneousS = 0.2
	// hitSlackS: an action that ended this long before the hit still
	// carries it (the hit lands as the lunge stops).
	hitSlackS = 0.15
	// haltS and breakWindowS: an attacker who stops for haltS within
	// breakWindowS after a blade contact had the attack broken by it.
	haltS        = 0.1
	breakWindowS = 0.35
	// riposteLeadS: the other fencer's action counts as the answer to the
	// blade contact if it starts no earlier than this before the contact.
	riposteLeadS = 0.15
)

// Decision is the right-of-way call and what it rests on, as written in
// the timeline.
type Decision struct {
	Winner     string  `json:"winner"`
	Confidence float64 `json:"confidence"`
	Reason     string  `json:"reason"`
	// Rule names the rule that decided: "single_light", "no_light",
	// "no_box_verdict" (undecided: the log says no lights), "no_hit_time"
	// (a double touch whose log has no hit time: undecided),
	// "no_evidence" (undecided: the tracks do not show the final action),
	// or one of the priority rules (RuleOneAttacking ...).
	Rule string `json:"rule"`
	// LeftAttackS and RightAttackS are when each fencer's attack that
	// carried to the hit began; nil if they were not attacking.
	LeftAttackS  *float64 `json:"left_attack_s"`
	RightAttackS *float64 `json:"right_attack_s"`
	// HitS is the first hit the decision is taken at.
	HitS float64 `json:"hit_s"`
}

// phrase is what the decision looks at: both fencers and the signal.
type phrase struct {
	left, right fencer
	// mv is the movement into the first hit, for the model.
	mv  movement
	fps float64
	n   int
	// heightM is the fencers' median height from the eyes to the ankles
	// in metres, 0 when the tracks do not show it.
	heightM float64
}

func (ph phrase) frame(t float64) int {
	return min(max(int(math.Round(t*ph.fps)), 0), ph.n-1)
}

func (ph phrase) secs(i int) float64 { return float64(i) / ph.fps }

// attackStart returns the first frame of the forward action f was in at
// frame e (or that ended at most hitSlackS before it): the action began
// after f's last pause or retreat.
func (ph phrase) attackStart(f fencer, e int) (int, bool) {
	slack := int(math.Round(hitSlackS * ph.fps))
	j := -1
	for i := e; i >= max(0, e-slack); i-- {
		if f.merged[i] == forward {
			j = i
			break
		}
	}
	if j < 0 {
		return 0, false
	}
	for j > 0 && f.merged[j-1] == forward {
		j--
	}
	return j, true
}

// broken reports whether f stops (still or backward for haltS) within
// breakWindowS after frame c, and the frame f moves forward again after
// that stop (-1 if never before the end).
func (ph phrase) broken(f fencer, c int) (bool, int) {
	need := max(2, int(math.Round(haltS*ph.fps)))
	end := min(ph.n, c+int(math.Round(breakWindowS*ph.fps))+1)
	stopped := 0
	for i := c; i < end; i++ {
		if f.raw[i] == forward {
			stopped = 0
			continue
		}
		stopped++
		if stopped < need {
			continue
		}
		for k := i + 1; k < ph.n; k++ {
			if f.raw[k] == forward {
				return true, k
			}
		}
		return true, -1
	}
	return false, -1
}

// decide calls the phrase p: single lights and no light keep the box's
// verdict; a double touch goes by right-of-way (rules), overruled by the
// movement model where it is surer than prm.Override (and, if
// prm.KeepFirstLight, not over a first-light call).
func (prm Params) decide(ph phrase, p *signal.Phrase) Decision {
	d := prm.rules(ph, p)
	if d.Winner == signal.WinnerUndecided || !ph.mv.ok || d.Rule == "single_light" || d.Rule == "no_light" {
		return d
	}
	pl := prm.Model.pLeft(ph.mv.diff)
	o := prm.overrule(d, pl)
	if o.Rule == RuleMovement {
		o.Reason = fmt.Sprintf("%s; hit at %.2f s (the rules alone: %s by %s)", prm.Model.explain(ph.mv, pl), d.HitS, d.Winner, d.Rule)
	}
	return o
}

// rules calls the phrase p by the rules alone: a blade contact that
// stopped an attack, then priority at the first hit.
func (prm Params) rules(ph phrase, p *signal.Phrase) Decision {
	sv := p.SignalVerdict()
	switch {
	case p.Box == nil:
		return Decision{Winner: sv.Winner, Reason: sv.Reason, Rule: "no_box_verdict"}
	case sv.Winner != signal.WinnerUndecided:
		rule := "single_light"
		if sv.Winner == signal.WinnerNone {
			rule = "no_light"
		}
		return Decision{Winner: sv.Winner, Confidence: 1, Reason: sv.Reason, Rule: rule}
	case p.FirstHitS == nil:
		return Decision{Winner: sv.Winner, Reason: sv.Reason, Rule: "no_hit_time"}
	}
	hit := *p.FirstHitS
	d := prm.priority(ph, p, hit)
	if bd, ok := ph.bladeContact(p, hit); ok {
		bd.HitS, bd.LeftAttackS, bd.RightAttackS = hit, d.LeftAttackS, d.RightAttackS
		bd.Confidence = prm.confidence(RuleBladeContact)
		return bd
	}
	return d
}

// bladeContact applies the blade contacts before the hit: an
// attack that stops just after a contact was beaten or parried, and
// priority passes to the other fencer if they attack before the attacker
// goes again.
func (ph phrase) bladeContact(p *signal.Phrase, hit float64) (Decision, bool) {
	e := ph.frame(hit)
	for _, ct := range p.BladeContactsS {
		c := ph.frame(ct)
		if c >= e {
			continue
		}
		ls, la := ph.attackStart(ph.left, c)
		rs, ra := ph.attackStart(ph.right, c)
		var att, def fencer
		var attName, defName, defWinner string
		switch {
		case la && (!ra || ph.secs(rs)-ph.secs(ls) >= simultaneousS):
			att, def, attName, defName, defWinner = ph.left, ph.right, "left", "right", WinnerRight
		case ra && (!la || ph.secs(ls)-ph.secs(rs) >= simultaneousS):
			att, def, attName, defName, defWinner = ph.right, ph.left, "right", "left", WinnerLeft
		default:
			continue
		}
		isBroken, resume := ph.broken(att, c)
		if !isBroken {
			continue
		}
		ds, da := ph.attackStart(def, e)
		lead := int(math.Round(riposteLeadS * ph.fps))
		if !da || ds < c-lead || (resume >= 0 && resume < ds) {
			continue
		}
		return Decision{
			Winner: defWinner, Rule: RuleBladeContact,
			Reason: fmt.Sprintf("%s attacked; blade contact at %.2f s (beat or parry) stopped the attack; %s attacked from %.2f s; hit at %.2f s",
				title(attName), ct, defName, ph.secs(ds), hit),
		}, true
	}
	return Decision{}, false
}

func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func ptr[T any](v T) *T { return &v }

package rightofway

import (
	"testing"
	"time"

	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/tracks"
)

// doubleLog renders and parses a double touch's log with the given hit
// lines, each rendered in the box's wording from its Kind and Side.
func doubleLog(t *testing.T, hits ...signal.Event) *signal.Phrase {
	t.Helper()
	spec := signal.LogSpec{Phrase: 1, Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Box: signal.Box{Left: true, Right: true},
		Events: append([]signal.Event{{TimeS: 0.001, Kind: signal.EventRecordingStarted}}, hits...)}
	spec.Events = append(spec.Events, signal.Event{TimeS: 2.9, Kind: signal.EventRecordingEnded})
	p, err := signal.Parse(signal.Render(spec))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFirstLight: both fencers go forward together from 0.53 s and
// right's arm is out first, so the arm rule gives right; the lamps decide
// instead only where Params.FirstLight says so and the log shows one lamp
// before the other, and never where the arms are not seen.
func TestFirstLight(t *testing.T) {
	const n = 45
	tr := &tracks.Tracks{FPS: testFPS, Units: tracks.UnitsMetres,
		Left:  posesOf(trackOf(1, 1, n, leg{0.5, 0}, leg{1.5, 0.8}, leg{1, 0}), 1, armOf(n, 1.95, 0.3)),
		Right: posesOf(trackOf(5, -1, n, leg{0.5, 0}, leg{1.5, 0.8}, leg{1, 0}), -1, armOf(n, 1.6, 0.55))}
	// The box's hit line names the side opposite to the lamp it lit.
	leftLamp := signal.Event{TimeS: 2.0, Kind: signal.EventHit, Side: "right"}
	second := func(at float64) signal.Event { return signal.Event{TimeS: at, Kind: signal.EventSimultaneousHit} }
	off := DefaultParams()
	off.FirstLight = false
	const arm = "Both went forward together from 0.53 s; Right's arm was extended into the final action (reach 0.55 m against 0.17 m) while left was still preparing; hit at 2.00 s"
	hips := &tracks.Tracks{FPS: testFPS, Units: tracks.UnitsMetres,
		Left:  posesOf(trackOf(1, 1, n, leg{0.5, 0}, leg{1.5, 0.8}, leg{1, 0}), 1, nil),
		Right: posesOf(trackOf(5, -1, n, leg{0.5, 0}, leg{1.5, 0.8}, leg{1, 0}), -1, nil)}
	for _, c := range []struct {
		name         string
		tr           *tracks.Tracks
		prm          Params
		log          *signal.Phrase
		winner, rule string
		reason       string
	}{
		{
			name: "left's lamp 12 ms first", prm: DefaultParams(), log: doubleLog(t, leftLamp, second(2.012)),
			winner: WinnerLeft, rule: RuleFirstLight,
			reason: "Both went forward together from 0.53 s; Left's light came on first (12 ms before right's); hit at 2.00 s",
		},
		{
			name: "right's lamp first, both lines named", prm: DefaultParams(),
			log:    doubleLog(t, signal.Event{TimeS: 2.0, Kind: signal.EventHit, Side: "left"}, signal.Event{TimeS: 2.031, Kind: signal.EventHit, Side: "right"}),
			winner: WinnerRight, rule: RuleFirstLight,
			reason: "Both went forward together from 0.53 s; Right's light came on first (31 ms before left's); hit at 2.00 s",
		},
		{
			name: "the choice off", prm: off, log: doubleLog(t, leftLamp, second(2.012)),
			winner: WinnerRight, rule: RuleArmExtended, reason: arm,
		},
		{
			name: "one light only in the log", prm: DefaultParams(), log: doubleLog(t, leftLamp),
			winner: WinnerRight, rule: RuleArmExtended, reason: arm,
		},
		{
			name: "both lamps at the same millisecond", prm: DefaultParams(), log: doubleLog(t, leftLamp, second(2.0)),
			winner: WinnerRight, rule: RuleArmExtended, reason: arm,
		},
		{
			name: "arms not seen: still a simultaneous action", tr: hips, prm: DefaultParams(), log: doubleLog(t, leftLamp, second(2.03)),
			winner: WinnerSimultaneous, rule: RuleSimultaneous,
			reason: "Simultaneous action: both went forward together from 0.53 s and their arms are not seen; hit at 2.00 s; no touch",
		},
		{
			name: "the box's first line is simultaneous", prm: DefaultParams(), log: doubleLog(t, second(2.0)),
			winner: WinnerRight, rule: RuleArmExtended, reason: arm,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.tr == nil {
				c.tr = tr
			}
			tl, err := c.prm.Decide(c.tr, c.log)
			if err != nil {
				t.Fatal(err)
			}
			d := tl.Decision
			if d.Winner != c.winner || d.Rule != c.rule || d.Reason != c.reason {
				t.Errorf("decision %s by %s: %q\nwant %s by %s: %q", d.Winner, d.Rule, d.Reason, c.winner, c.rule, c.reason)
			}
			if want := c.prm.Confidence[c.rule]; d.Confidence != want || want == 0 {
				t.Errorf("confidence %v, want the fitted %v", d.Confidence, want)
			}
		})
	}
}

// TestFirstLightKeptFromTheModel: with KeepFirstLight a first-light call
// stands against a model that is sure of the other fencer; without it the
// model overrules it as it does the other rules.
func TestFirstLightKeptFromTheModel(t *testing.T) {
	d := Decision{Winner: WinnerLeft, Rule: RuleFirstLight, Confidence: 0.7}
	prm := Params{Override: 0.15}
	if o := prm.overrule(d, 0.05); o.Winner != WinnerRight || o.Rule != RuleMovement || o.Confidence != 0.95 {
		t.Errorf("not kept: %+v, want right by the model at 0.95", o)
	}
	prm.KeepFirstLight = true
	if o := prm.overrule(d, 0.05); o != d {
		t.Errorf("kept: %+v, want %+v", o, d)
	}
	arm := Decision{Winner: WinnerLeft, Rule: RuleArmExtended}
	if o := prm.overrule(arm, 0.05); o.Rule != RuleMovement {
		t.Errorf("KeepFirstLight kept an arm_extended call from the model: %+v", o)
	}
}

// TestFitChoosesTheFirstLight relabels the shared phrases where both
// started together and one lamp came first: by the first lamp, Fit must
// take the first light; against it, Fit must leave it off.
func TestFitChoosesTheFirstLight(t *testing.T) {
	on := Params{FirstLight: true}
	for _, follow := range []bool{true, false} {
		exs := sharedExamples(t)
		relabelled := 0
		for i, ex := range exs {
			p, ok := prepare(ex)
			if !ok {
				continue
			}
			if d := on.rules(p.ph, p.phrase); d.Rule == RuleFirstLight {
				exs[i].Referee = d.Winner
				if !follow {
					exs[i].Referee = map[string]string{WinnerLeft: CallRight, WinnerRight: CallLeft}[d.Winner]
				}
				relabelled++
			}
		}
		if relabelled < 10 {
			t.Fatalf("only %d shared phrases started together with one lamp first", relabelled)
		}
		prm := Fit(exs)
		if prm.FirstLight != follow {
			t.Errorf("referees following the first lamp on %d phrases: %v; Fit chose FirstLight %v", relabelled, follow, prm.FirstLight)
		}
		if follow && prm.Confidence[RuleFirstLight] < 0.9 {
			t.Errorf("the first light agreeing on every relabelled phrase has confidence %v", prm.Confidence[RuleFirstLight])
		}
	}
}

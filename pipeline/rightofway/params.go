package rightofway

import (
	"math"

	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/tracks"
)

// Example is a phrase with the call a referee made on it, for fitting.
// The call is a label: Decide never sees it.
type Example struct {
	Tracks  *tracks.Tracks
	Phrase  *signal.Phrase
	Referee string
	// Day is the recording day (YYYYMMDD): the fit chooses its penalty by
	// leaving one day out at a time, as the evaluation does.
	Day string
}

// Params are the engine's values fitted to refereed phrases; everything
// else is fixed in advance, each constant with its reason.
type Params struct {
	// Model is the movement model.
	Model Model `json:"model"`
	// Override is the margin of the model's |P(left) - 1/2| above which
	// its call replaces the rules'.
	Override float64 `json:"override"`
	// FirstLight is whether, when both fencers started their final action
	// together and one lamp came on before the other, the first lamp
	// decides (RuleFirstLight) instead of the weapon arms
	// (RuleArmExtended).
	FirstLight bool `json:"first_light"`
	// KeepFirstLight is whether a first-light call stands even where the
	// movement model is surer than Override and disagrees.
	KeepFirstLight bool `json:"keep_first_light"`
	// Confidence is each rule's agreement with the referees on the phrases
	// fitted on, (agree+1)/(n+2): how far to trust its call. A call of the
	// movement model has the model's own probability instead.
	Confidence map[string]float64 `json:"confidence"`
}

// confidence returns the confidence of a call by rule.
func (prm Params) confidence(rule string) float64 {
	if c, ok := prm.Confidence[rule]; ok {
		return c
	}
	return 0.5
}

// DefaultParams returns the parameters Decide uses: Fit on the 113
// refereed sabre phrases of the project's test data (a test checks that
// they still are).
func DefaultParams() Params { return defaultParams }

// Fit returns the parameters fitted to train:
//
//   - the movement model on the phrases a referee gave to a fencer, its
//     penalty chosen by the log-loss of leaving one day out at a time;
//   - Override, FirstLight and KeepFirstLight together: the combination
//     that agrees most often with the referees when each phrase's model
//     probability comes from a model fitted without its day (so that they
//     are not chosen on the model's own training phrases); ties go to
//     leaving the first light off, then to letting the model overrule it,
//     then to the smallest margin;
//   - each rule's confidence from those same out-of-day calls.
func Fit(train []Example) Params {
	var phs []prepared
	for _, ex := range train {
		if p, ok := prepare(ex); ok {
			phs = append(phs, p)
		}
	}
	var rows []labelled
	for _, p := range phs {
		if (p.referee == CallLeft || p.referee == CallRight) && p.ph.mv.ok {
			y := 0.0
			if p.referee == CallLeft {
				y = 1
			}
			rows = append(rows, labelled{diff: p.ph.mv.diff, y: y, day: p.day})
		}
	}
	prm := Params{Model: fitWithLambda(rows)}
	pOut := make([]float64, len(phs))
	for i := range pOut {
		pOut[i] = 0.5
	}
	for _, d := range daysOf(rows) {
		md := fitWithLambda(keepRows(rows, func(r labelled) bool { return r.day != d }))
		for i, p := range phs {
			if p.day == d && p.ph.mv.ok {
				pOut[i] = md.pLeft(p.ph.mv.diff)
			}
		}
	}
	// The first best wins ties, so the first light is taken only where it
	// agrees more often than the arms, and kept from the model only where
	// that agrees more often still.
	best := -1
	for _, c := range []struct{ firstLight, keep bool }{{false, false}, {true, false}, {true, true}} {
		q := prm
		q.FirstLight, q.KeepFirstLight = c.firstLight, c.keep
		rules := q.rulesOf(phs)
		for _, g := range overrides {
			q.Override = g
			agree := 0
			for i, p := range phs {
				if Agrees(p.referee, q.overrule(rules[i], pOut[i]).Winner) {
					agree++
				}
			}
			if agree > best {
				best, prm = agree, q
			}
		}
	}
	rules := prm.rulesOf(phs)
	n, agree := map[string]int{}, map[string]int{}
	for i, p := range phs {
		d := prm.overrule(rules[i], pOut[i])
		n[d.Rule]++
		if Agrees(p.referee, d.Winner) {
			agree[d.Rule]++
		}
	}
	prm.Confidence = map[string]float64{}
	for _, r := range priorityRules {
		prm.Confidence[r] = math.Round(100*float64(agree[r]+1)/float64(n[r]+2)) / 100
	}
	return prm
}

func keepRows(rows []labelled, keep func(labelled) bool) []labelled {
	var out []labelled
	for _, r := range rows {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// rulesOf calls each of phs by the rules alone.
func (prm Params) rulesOf(phs []prepared) []Decision {
	ds := make([]Decision, len(phs))
	for i, p := range phs {
		ds[i] = prm.rules(p.ph, p.phrase)
	}
	return ds
}

// overrule returns d with the winner the model gives with probability p
// of left when it is surer than prm.Override and disagrees, the rule then
// RuleMovement and the confidence the model's probability of that winner
// in two decimals; a first-light call stands if prm.KeepFirstLight.
func (prm Params) overrule(d Decision, p float64) Decision {
	if math.Abs(p-0.5) <= prm.Override || (d.Rule == RuleFirstLight && prm.KeepFirstLight) {
		return d
	}
	w := WinnerRight
	if p > 0.5 {
		w = WinnerLeft
	}
	if w == d.Winner {
		return d
	}
	// Two decimals, as the rules' confidences: the third is noise.
	d.Winner, d.Rule, d.Confidence = w, RuleMovement, math.Round(100*math.Max(p, 1-p))/100
	return d
}

// prepared is an example turned into what the rules look at, once.
type prepared struct {
	ph      phrase
	phrase  *signal.Phrase
	referee string
	day     string
}

// prepare returns ex ready for the rules, and false for an example with
// no double touch to decide or without the evidence to decide it.
func prepare(ex Example) (prepared, bool) {
	if ex.Phrase == nil || ex.Phrase.FirstHitS == nil || ex.Phrase.SignalVerdict().Winner != signal.WinnerUndecided {
		return prepared{}, false
	}
	ph, _, err := phraseOf(ex.Tracks, ex.Phrase)
	if err != nil || evidenceGap(ph, ex.Phrase) != "" {
		return prepared{}, false
	}
	return prepared{ph: ph, phrase: ex.Phrase, referee: ex.Referee, day: ex.Day}, true
}

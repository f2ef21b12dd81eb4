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
}

// Params are the engine's values that are fitted to refereed phrases;
// everything else is fixed in advance (goingS, haltFrames15, onsetTolS and
// the evidence limits, each with its reason).
type Params struct {
	// EndWin is how long before the hit a fencer's mean speed says
	// whether they were attacking at the hit.
	EndWin float64 `json:"end_window_s"`
	// HesWin is how long before the hit a drop below going speed is a
	// hesitation (0: the rule is off).
	HesWin float64 `json:"hesitation_window_s"`
	// ArmWin is how long before the hit the weapon arm's reach is
	// averaged when both started together.
	ArmWin float64 `json:"arm_window_s"`
	// Confidence is each rule's agreement with the referees on the phrases
	// fitted on, smoothed towards one half: how far to trust its call.
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

// Grids of the fitted values: fencing-plausible windows, from a couple of
// frames to half a second at 15 fps.
var (
	endWins = []float64{0.14, 0.2, 0.27, 0.34}
	armWins = []float64{0, 0.07, 0.14, 0.2, 0.27}
	hesWins = []float64{0, 0.27, 0.4, 0.54}
)

// priorWindows is where the grid search starts from when points score the
// same: the values fixed before looking at any phrase (a third of a
// second of speed, two frames of arm, no hesitation rule).
var priorWindows = [3]float64{0.27, 0.14, 0}

// Fit returns the parameters that agree most often with the referees of
// train, by rightofway.Agrees. The windows are searched over a small grid
// scoring each point by its own agreement plus the mean over its grid
// neighbours, so that a broad plateau wins over a lucky point; ties go to
// the point nearest priorWindows. The confidences are then each rule's
// agreement on train, (agree+1)/(n+2).
func Fit(train []Example) Params {
	phs := make([]prepared, 0, len(train))
	for _, ex := range train {
		if p, ok := prepare(ex); ok {
			phs = append(phs, p)
		}
	}
	score := make([][][]float64, len(endWins))
	for i, e := range endWins {
		score[i] = make([][]float64, len(armWins))
		for j, a := range armWins {
			score[i][j] = make([]float64, len(hesWins))
			for k, hw := range hesWins {
				prm := Params{EndWin: e, ArmWin: a, HesWin: hw}
				for _, p := range phs {
					if Agrees(p.referee, prm.decide(p.ph, p.phrase).Winner) {
						score[i][j][k]++
					}
				}
			}
		}
	}
	best := Params{}
	bestScore, bestDist := math.Inf(-1), math.Inf(1)
	for i := range endWins {
		for j := range armWins {
			for k := range hesWins {
				sum, c := 0.0, 0
				for di := -1; di <= 1; di++ {
					for dj := -1; dj <= 1; dj++ {
						for dk := -1; dk <= 1; dk++ {
							ii, jj, kk := i+di, j+dj, k+dk
							if ii < 0 || jj < 0 || kk < 0 || ii >= len(endWins) || jj >= len(armWins) || kk >= len(hesWins) {
								continue
							}
							sum += score[ii][jj][kk]
							c++
						}
					}
				}
				sc := sum/float64(c) + score[i][j][k]
				dist := math.Abs(endWins[i]-priorWindows[0])/0.07 + math.Abs(armWins[j]-priorWindows[1])/0.07 + math.Abs(hesWins[k]-priorWindows[2])/0.13
				if sc > bestScore+1e-9 || (math.Abs(sc-bestScore) <= 1e-9 && dist < bestDist) {
					best = Params{EndWin: endWins[i], ArmWin: armWins[j], HesWin: hesWins[k]}
					bestScore, bestDist = sc, dist
				}
			}
		}
	}
	n, agree := map[string]int{}, map[string]int{}
	for _, p := range phs {
		d := best.decide(p.ph, p.phrase)
		n[d.Rule]++
		if Agrees(p.referee, d.Winner) {
			agree[d.Rule]++
		}
	}
	best.Confidence = map[string]float64{}
	for _, r := range priorityRules {
		best.Confidence[r] = math.Round(100*float64(agree[r]+1)/float64(n[r]+2)) / 100
	}
	return best
}

// prepared is an example turned into what the rules look at, once.
type prepared struct {
	ph      phrase
	phrase  *signal.Phrase
	referee string
}

// prepare returns ex ready for the rules, and false for an example with
// no double touch to decide or without the evidence to decide it.
func prepare(ex Example) (prepared, bool) {
	ph, _, err := phraseOf(ex.Tracks)
	if err != nil || ex.Phrase == nil || ex.Phrase.FirstHitS == nil || evidenceGap(ph, ex.Phrase) != "" {
		return prepared{}, false
	}
	return prepared{ph: ph, phrase: ex.Phrase, referee: ex.Referee}, true
}

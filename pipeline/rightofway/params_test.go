package rightofway

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// sharedExamples reads the shared refereed phrases with their calls.
func sharedExamples(t testing.TB) []Example {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(sharedDir, "labels.json"))
	if err != nil {
		t.Fatal(err)
	}
	var labels map[string]struct{ Referee string }
	if err := json.Unmarshal(data, &labels); err != nil {
		t.Fatal(err)
	}
	var exs []Example
	for _, name := range sharedNames(t) {
		tr, log := shared(t, name)
		exs = append(exs, Example{Tracks: tr, Phrase: parse(t, log), Referee: labels[name].Referee})
	}
	return exs
}

// TestDefaultParamsAreFitted: the parameters the engine ships with are
// Fit on the shared phrases, so that "referee eval" without --cv is the
// in-sample figure it says it is.
func TestDefaultParamsAreFitted(t *testing.T) {
	got := Fit(sharedExamples(t))
	if !reflect.DeepEqual(got, DefaultParams()) {
		js, _ := json.Marshal(got)
		t.Fatalf("Fit on the shared phrases gives %s: update defaultParams", js)
	}
}

func TestFitMovesWithTheLabels(t *testing.T) {
	exs := sharedExamples(t)
	// Referees who always call the opposite of the engine: every rule's
	// confidence must fall below one half.
	for i, ex := range exs {
		tl, err := Decide(ex.Tracks, ex.Phrase)
		if err != nil {
			t.Fatal(err)
		}
		switch tl.Decision.Winner {
		case WinnerLeft:
			exs[i].Referee = CallRight
		default:
			exs[i].Referee = CallLeft
		}
	}
	prm := Fit(exs)
	for _, r := range []string{RuleOneAttacking, RuleArmExtended} {
		if c := prm.confidence(r); !(c < 0.5) {
			t.Errorf("confidence of %s %v against contrary referees", r, c)
		}
	}
}

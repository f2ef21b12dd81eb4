package rightofway

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// sharedLabels reads the referee's call of every shared phrase.
func sharedLabels(t testing.TB) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(sharedDir, "labels.json"))
	if err != nil {
		t.Fatal(err)
	}
	var labels map[string]struct{ Referee string }
	if err := json.Unmarshal(data, &labels); err != nil {
		t.Fatal(err)
	}
	calls := make(map[string]string, len(labels))
	for name, l := range labels {
		calls[name] = l.Referee
	}
	return calls
}

// sharedExamples reads the shared refereed phrases with their calls.
func sharedExamples(t testing.TB) []Example {
	t.Helper()
	labels := sharedLabels(t)
	var exs []Example
	for _, name := range sharedNames(t) {
		tr, log := shared(t, name)
		exs = append(exs, Example{Tracks: tr, Phrase: parse(t, log), Referee: labels[name], Day: name[:8]})
	}
	return exs
}

// TestDefaultParamsAreFitted: the parameters the engine ships with are
// Fit on the shared phrases, so that "referee eval" without --cv is the
// in-sample figure it says it is.
func TestDefaultParamsAreFitted(t *testing.T) {
	got, want := Fit(sharedExamples(t)), DefaultParams()
	same := got.Override == want.Override && got.FirstLight == want.FirstLight && got.KeepFirstLight == want.KeepFirstLight &&
		reflect.DeepEqual(got.Confidence, want.Confidence) &&
		got.Model.Lambda == want.Model.Lambda && len(got.Model.Weights) == len(want.Model.Weights)
	for j := range got.Model.Weights {
		// Newton's method ends within 1e-9; floating point may differ
		// across machines in the last digits.
		same = same && math.Abs(got.Model.Weights[j]-want.Model.Weights[j]) < 1e-6 &&
			math.Abs(got.Model.Scales[j]-want.Model.Scales[j]) < 1e-9
	}
	if !same {
		js, _ := json.Marshal(got)
		t.Fatalf("Fit on the shared phrases gives %s: update defaultParams", js)
	}
}

// TestFitFollowsTheLabels fits referees who call every phrase the other
// way from the shipped engine: the fitted engine must follow them.
func TestFitFollowsTheLabels(t *testing.T) {
	exs := sharedExamples(t)
	for i, ex := range exs {
		tl := decided(t, ex.Tracks, ex.Phrase)
		exs[i].Referee = CallLeft
		if tl.Decision.Winner == WinnerLeft {
			exs[i].Referee = CallRight
		}
	}
	prm := Fit(exs)
	agree := 0
	for _, ex := range exs {
		tl, err := prm.Decide(ex.Tracks, ex.Phrase)
		if err != nil {
			t.Fatal(err)
		}
		if Agrees(ex.Referee, tl.Decision.Winner) {
			agree++
		}
	}
	if agree < len(exs)*8/10 {
		t.Errorf("fitted to contrary referees, the engine agrees with them on %d of %d phrases", agree, len(exs))
	}
}

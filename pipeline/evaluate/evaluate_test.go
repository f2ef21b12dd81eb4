package evaluate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/referee-project/referee/pipeline/rightofway"
)

// copyPhrases copies the named shared phrases into a new directory with
// labels.json giving each its call.
func copyPhrases(t *testing.T, calls map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	labels := "{"
	for name, call := range calls {
		for _, ext := range []string{".tracks.json", ".txt"} {
			data, err := os.ReadFile(filepath.Join(sharedDir, name+ext))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name+ext), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if len(labels) > 1 {
			labels += ","
		}
		labels += `"` + name + `":{"referee":"` + call + `"}`
	}
	if err := os.WriteFile(filepath.Join(dir, LabelsFile), []byte(labels+"}"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadRefusesWhatWouldChangeTheFigures(t *testing.T) {
	dir := copyPhrases(t, map[string]string{"20251020_210329_phrase09": "left"})
	for _, c := range []struct {
		name, labels, want string
	}{
		{"missing files", `{"20251020_210329_phrase09":{"referee":"left"},"20251021_205541_phrase10":{"referee":"right"}}`, "phrase 20251021_205541_phrase10: open "},
		{"unknown call", `{"20251020_210329_phrase09":{"referee":"red"}}`, `20251020_210329_phrase09: referee call "red": want left, right, simultaneous or abstain`},
		{"no phrase", `{}`, "names no phrase"},
	} {
		if err := os.WriteFile(filepath.Join(dir, LabelsFile), []byte(c.labels), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "has no labelled phrases") {
		t.Errorf("a directory without labels: %v", err)
	}
}

func TestLoadSummarisesManyMissingPhrases(t *testing.T) {
	dir := t.TempDir()
	labels := `{"20250101_1":{"referee":"left"},"20250101_2":{"referee":"left"},"20250101_3":{"referee":"left"},"20250101_4":{"referee":"left"},"20250101_5":{"referee":"left"}}`
	if err := os.WriteFile(filepath.Join(dir, LabelsFile), []byte(labels), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if err == nil || strings.Count(err.Error(), "\n") != 3 || !strings.HasSuffix(err.Error(), "and 2 more phrases") {
		t.Errorf("error %q: want three phrases and a count", err)
	}
}

func TestCrossValidationNeedsDays(t *testing.T) {
	one := copyPhrases(t, map[string]string{"20251106_203613_phrase03": "right", "20251106_203651_phrase05": "left"})
	phrases, err := Load(one)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(phrases, "day"); err == nil || !strings.Contains(err.Error(), "all 2 phrases are of one recording day (20251106)") {
		t.Errorf("one day: %v", err)
	}
	phrases[0].Day = ""
	if _, err := Run(phrases, "day"); err == nil || !strings.Contains(err.Error(), "has no recording day") {
		t.Errorf("no day: %v", err)
	}
	if _, err := Run(phrases, "week"); err == nil {
		t.Error("an unknown cross-validation was accepted")
	}
}

// TestTallyByTheOneTable counts a small set by hand: the agreement of each
// call follows rightofway.Agrees and the tallies add up.
func TestTallyByTheOneTable(t *testing.T) {
	calls := []Call{
		{Referee: "left", Winner: "left"}, {Referee: "left", Winner: "simultaneous"},
		{Referee: "right", Winner: "undecided"}, {Referee: "abstain", Winner: "simultaneous"},
		{Referee: "abstain", Winner: "right"},
	}
	var tl Tally
	for _, c := range calls {
		c.Agrees = rightofway.Agrees(c.Referee, c.Winner)
		tl.add(c)
	}
	want := Tally{Calls: 3, Agree: 1, Abstentions: 2, NoTouch: 1, Undecided: 1, Phrases: 5}
	if tl != want {
		t.Errorf("tally %+v, want %+v", tl, want)
	}
	if p := tl.Percent(); p < 33.3 || p > 33.4 {
		t.Errorf("percent %v", p)
	}
}

func TestWriteText(t *testing.T) {
	dir := copyPhrases(t, map[string]string{"20251020_210329_phrase09": "left", "20251106_203613_phrase03": "right", "20251106_210036_phrase74": "abstain"})
	phrases, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(phrases, "")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"3 phrases: 2 left/right calls, 1 abstentions", "by recording day", "20251106", "disagreements ("} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

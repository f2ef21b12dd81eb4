package evaluate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/referee-project/referee/pipeline"
)

// TestLoadPhraseDirectories: a directory of phrase directories as the
// server leaves them (result.json, tracks.json, signal.txt, review.json)
// loads as the same labelled phrases as the labels.json layout, with the
// day of each start time; phrases without a review or tracks are not
// labelled; a review with a bad call is an error naming the phrase.
func TestLoadPhraseDirectories(t *testing.T) {
	labelled, err := Load(sharedDir)
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	out := filepath.Join(data, "sessions")
	copyFile := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeJSON := func(path string, v any) {
		t.Helper()
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	picked := labelled[:5]
	for i, p := range picked {
		// Keys as the server gives them, the day taken from started_at:
		// the fifth is a rerun of the fourth's session id.
		key := fmt.Sprintf("club_%d", i)
		if i == 4 {
			key = "club_3-2"
		}
		dir := filepath.Join(out, key)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		copyFile(filepath.Join(sharedDir, p.Name+".tracks.json"), filepath.Join(dir, pipeline.TracksFileName))
		copyFile(filepath.Join(sharedDir, p.Name+".txt"), filepath.Join(dir, pipeline.SignalFileName))
		day := p.Name[:4] + "-" + p.Name[4:6] + "-" + p.Name[6:8]
		writeJSON(filepath.Join(dir, pipeline.ResultFileName), map[string]any{"status": "success", "winner": "left", "started_at": day + "T21:30:00.5Z"})
		writeJSON(filepath.Join(dir, pipeline.ReviewFileName), map[string]any{"call": p.Referee, "referee": "A. Referee", "at": "2026-12-01T10:00:00Z"})
	}
	// Not labelled: no review; a review but no tracks (the signal
	// analyzer's phrase); a failed phrase.
	for _, d := range []string{"no_review", "no_tracks", "failed"} {
		if err := os.MkdirAll(filepath.Join(out, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeJSON(filepath.Join(out, "no_tracks", pipeline.ReviewFileName), map[string]any{"call": "left"})
	writeJSON(filepath.Join(out, "no_tracks", pipeline.ResultFileName), map[string]any{"winner": "left"})
	copyFile(filepath.Join(out, "club_0", pipeline.TracksFileName), filepath.Join(out, "no_review", pipeline.TracksFileName))

	for _, dir := range []string{data, out} {
		got, err := Load(dir)
		if err != nil {
			t.Fatalf("Load(%s): %v", dir, err)
		}
		if len(got) != len(picked) {
			t.Fatalf("Load(%s): %d phrases, want %d", dir, len(got), len(picked))
		}
		for i, g := range got {
			w := picked[i]
			if g.Referee != w.Referee || g.Day != w.Day || g.Example.Day != w.Day || g.Example.Referee != w.Referee {
				t.Errorf("%s: referee %s day %s, want %s %s (as %s)", g.Name, g.Referee, g.Day, w.Referee, w.Day, w.Name)
			}
			// JSON compares the tracks' NaNs (unseen keypoints) as equal.
			if !sameJSON(t, g.Example.Tracks, w.Example.Tracks) || !sameJSON(t, g.Example.Phrase, w.Example.Phrase) {
				t.Errorf("%s: tracks or phrase differ from %s's", g.Name, w.Name)
			}
		}
	}
	// Both layouts score the same.
	a, err := Run(picked, "")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := Load(out)
	b, err := Run(got, "")
	if err != nil {
		t.Fatal(err)
	}
	if a.Overall != b.Overall || !reflect.DeepEqual(a.Confusion, b.Confusion) {
		t.Errorf("phrase directories score %+v, the labels.json layout %+v", b.Overall, a.Overall)
	}

	writeJSON(filepath.Join(out, "club_1", pipeline.ReviewFileName), map[string]any{"call": "red"})
	if _, err := Load(out); err == nil || !strings.Contains(err.Error(), `phrase club_1: review.json: call "red": want left, right, simultaneous or abstain`) {
		t.Errorf("a review with call red: %v", err)
	}
	for _, key := range []string{"club_0", "club_2", "club_3", "club_3-2"} {
		writeJSON(filepath.Join(out, key, pipeline.ReviewFileName), map[string]any{"call": "red"})
	}
	if _, err := Load(out); err == nil || strings.Count(err.Error(), "\n") != 3 || !strings.HasSuffix(err.Error(), "and 2 more phrases") {
		t.Errorf("five reviews with call red: %v; want three phrases and a count", err)
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "has no labelled phrases") {
		t.Errorf("an empty directory: %v", err)
	}
}

func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

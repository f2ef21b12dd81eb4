package evaluate

import (
	"path/filepath"
	"testing"

	"github.com/referee-project/referee/pipeline/rightofway"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/tracks"
)

var sharedDir = filepath.Join("..", "..", "..", "shared", "testdata", "tracks")

// BenchmarkEval is "referee eval --cv day" over the shared phrases: read
// every file, fit for each left-out day, decide every phrase.
func BenchmarkEval(b *testing.B) {
	for b.Loop() {
		phrases, err := Load(sharedDir)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Run(phrases, "day"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecide250Frames decides one phrase of 250 frames (16.7 s at
// 15 fps) from its tracks file's bytes, as "referee analyze --tracks" does without
// the artifacts.
func BenchmarkDecide250Frames(b *testing.B) {
	t, err := tracks.ReadFile(filepath.Join(sharedDir, "20251103_210457_phrase42.tracks.json"))
	if err != nil {
		b.Fatal(err)
	}
	p, err := signal.ParseFile(filepath.Join(sharedDir, "20251103_210457_phrase42.txt"))
	if err != nil {
		b.Fatal(err)
	}
	// The longest shared phrase has 245 frames: hold its last pose to 250.
	for t.Frames() < 250 {
		t.Left, t.Right = append(t.Left, t.Left[t.Frames()-1]), append(t.Right, t.Right[t.Frames()-1])
	}
	data, err := t.MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		t, err := tracks.Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rightofway.Decide(t, p); err != nil {
			b.Fatal(err)
		}
	}
}

// Package tracked decides a phrase from tracks with the right-of-way
// engine and leaves what a referee reads beside the verdict: tracks.json,
// so that the phrase can be decided again without its video, and
// timeline.png. Every analyzer that makes tracks (motion, pose) ends here;
// its Analyzer ("tracks") decides a tracks file given instead of a video.
package tracked

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/atomicfile"
	"github.com/referee-project/referee/pipeline/internal/timeline"
	"github.com/referee-project/referee/pipeline/rightofway"
	"github.com/referee-project/referee/pipeline/tracks"
)

// Name is the analyzer's name in pipeline.Job.Analyzers.
const Name = "tracks"

// Artifact names of the verdict's Artifacts map and their file names.
const (
	ArtifactTracks   = "tracks"
	ArtifactTimeline = "timeline_png"

	TracksFile   = pipeline.TracksFileName
	TimelineFile = "timeline.png"
)

// Analyzer decides the tracks file of AnalysisInput.TracksPath. The zero
// value is ready to use.
type Analyzer struct{}

var _ pipeline.Analyzer = Analyzer{}

// Analyze implements pipeline.Analyzer.
func (Analyzer) Analyze(ctx context.Context, in pipeline.AnalysisInput, _ func(float64, string)) (pipeline.Verdict, error) {
	if in.TracksPath == "" {
		return pipeline.Verdict{}, errors.New("no tracks file to decide: the tracks analyzer decides a phrase given as tracks, not a video")
	}
	t, err := tracks.ReadFile(in.TracksPath)
	if err != nil {
		return pipeline.Verdict{}, fmt.Errorf("tracks %s: %w", in.TracksPath, err)
	}
	if err := ctx.Err(); err != nil {
		return pipeline.Verdict{}, err
	}
	v, _, err := Decide(t, in)
	return v, err
}

// Decide calls the phrase of in from t and writes tracks.json (unless t
// was read from there) and timeline.png into in.ArtifactDir. The verdict's
// Extra holds "timeline", the rightofway.Timeline also returned.
func Decide(t *tracks.Tracks, in pipeline.AnalysisInput) (pipeline.Verdict, rightofway.Timeline, error) {
	if in.Phrase == nil {
		return pipeline.Verdict{}, rightofway.Timeline{}, errors.New("no parsed signal to decide from")
	}
	tl, err := rightofway.Decide(t, in.Phrase)
	if err != nil {
		return pipeline.Verdict{}, rightofway.Timeline{}, err
	}
	d := tl.Decision
	v := pipeline.Verdict{
		Winner:     d.Winner,
		Reason:     d.Reason,
		Confidence: d.Confidence,
		Extra:      map[string]any{"timeline": tl},
		Artifacts:  map[string]string{},
	}
	path := filepath.Join(in.ArtifactDir, TracksFile)
	if in.TracksPath != path {
		if err := tracks.WriteFile(path, t); err != nil {
			return pipeline.Verdict{}, rightofway.Timeline{}, err
		}
	}
	v.Artifacts[ArtifactTracks] = path
	png, err := timeline.PNG(tl)
	if err != nil {
		return pipeline.Verdict{}, rightofway.Timeline{}, err
	}
	path = filepath.Join(in.ArtifactDir, TimelineFile)
	if err := writeFile(path, png); err != nil {
		return pipeline.Verdict{}, rightofway.Timeline{}, err
	}
	v.Artifacts[ArtifactTimeline] = path
	return v, tl, nil
}

// writeFile writes data to path with atomicfile.WriteFile: a listed
// artifact is always complete.
func writeFile(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/referee-project/referee/protocol"
)

// pluginAnalyzer stands for the analyzers other packages plug in: it
// records its input and returns a fixed verdict, after writing an artifact.
type pluginAnalyzer struct {
	verdict  Verdict
	err      error
	progress []float64
	artifact string // written into the artifact directory when set
	in       AnalysisInput
	// cancel, when set, is called during the analysis.
	cancel func()
}

func (a *pluginAnalyzer) Analyze(ctx context.Context, in AnalysisInput, progress func(float64, string)) (Verdict, error) {
	a.in = in
	for _, p := range a.progress {
		progress(p, "step")
	}
	if a.artifact != "" {
		if err := os.WriteFile(filepath.Join(in.ArtifactDir, a.artifact), []byte("png"), 0o644); err != nil {
			return Verdict{}, err
		}
	}
	if a.cancel != nil {
		a.cancel()
	}
	return a.verdict, a.err
}

func analyzerJob(t *testing.T, name string, a Analyzer) Job {
	return Job{
		SessionID: "plug", FPS: 30, Width: 160, Height: 120,
		Frames:      &counterSource{t: t, n: 5, width: 160, height: 120, encoding: protocol.EncodingJPEG},
		Signal:      readLog(t, logDouble),
		ArtifactDir: t.TempDir(),
		Analyzer:    name,
		Analyzers:   map[string]Analyzer{name: a},
	}
}

func TestPluggedAnalyzer(t *testing.T) {
	a := &pluginAnalyzer{
		verdict: Verdict{
			Winner:     "right",
			Reason:     "Right attacked from 0.4 s; left paused 0.6-0.9 s; hit at 1.29 s",
			Confidence: 0.8,
			Extra:      map[string]any{"timeline": map[string]any{"left": []float64{0.1, 0.2}}, "analyzer_version": "2"},
			Artifacts:  map[string]string{"timeline_png": "timeline.png"},
		},
		progress: []float64{0.5, 0.25, 2, math.NaN()},
		artifact: "timeline.png",
	}
	job := analyzerJob(t, "motion", a)
	var log progressLog
	res, err := Run(context.Background(), job, log.add)
	if err != nil {
		t.Fatal(err)
	}
	log.check(t)
	var got []float64
	for _, r := range log.reports {
		if r.stage == protocol.StageAnalysis {
			got = append(got, r.progress)
		}
	}
	if want := []float64{0, 0.5, 0.5, 1, 1, 1}; !floatsEqual(got, want) {
		t.Errorf("analysis progress %v, want %v (clamped, never going back)", got, want)
	}

	dir := res.ArtifactDir
	wantIn := AnalysisInput{
		VideoPath: filepath.Join(dir, "video.avi"), SignalPath: filepath.Join(dir, SignalFileName),
		FPS: 30, Width: 160, Height: 120, Frames: 5, Phrase: res.Phrase, ArtifactDir: dir,
	}
	if a.in != wantIn {
		t.Errorf("analysis input %+v, want %+v", a.in, wantIn)
	}
	checkResult(t, res, &Result{
		Status: StatusSuccess, SessionID: "plug", Winner: "right", Reason: a.verdict.Reason, Confidence: 0.8,
		Phrase: res.Phrase, Video: VideoSummary{Frames: 5, FPS: 30, Width: 160, Height: 120, Codec: "MJPG"},
		Artifacts: Artifacts{
			Video: filepath.Join(dir, "video.avi"), Signal: filepath.Join(dir, SignalFileName), ResultJSON: filepath.Join(dir, ResultFileName),
			Extra: map[string]string{"timeline_png": filepath.Join(dir, "timeline.png")},
		},
		ArtifactDir: dir, WallTimeSeconds: res.WallTimeSeconds,
		Extra: a.verdict.Extra,
	})
	raw, err := os.ReadFile(res.Artifacts.ResultJSON)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Confidence float64           `json:"confidence"`
		Timeline   map[string]any    `json:"timeline"`
		Artifacts  map[string]string `json:"artifacts"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Confidence != 0.8 || doc.Timeline == nil || doc.Artifacts["timeline_png"] != filepath.Join(dir, "timeline.png") || len(doc.Artifacts) != 4 {
		t.Errorf("result.json lacks the analyzer's fields: %s", raw)
	}
}

func floatsEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPluggedAnalyzerFailures(t *testing.T) {
	errBoom := errors.New("pose model crashed")
	tests := []struct {
		name string
		a    *pluginAnalyzer
		want string
	}{
		{"error", &pluginAnalyzer{err: errBoom}, "analysis: motion analyzer: pose model crashed"},
		{"no winner", &pluginAnalyzer{}, "analysis: motion analyzer: verdict has no winner"},
		{"confidence out of range", &pluginAnalyzer{verdict: Verdict{Winner: "left", Confidence: 1.5}},
			"analysis: motion analyzer: verdict confidence 1.5 is not between 0 and 1"},
		{"extra replaces a field", &pluginAnalyzer{verdict: Verdict{Winner: "left", Extra: map[string]any{"winner": "right"}}},
			`analysis: motion analyzer: verdict's extra field "winner" would replace the result's own field`},
		{"artifact replaces a fixed one", &pluginAnalyzer{verdict: Verdict{Winner: "left", Artifacts: map[string]string{"video": "x.avi"}}},
			`analysis: motion analyzer: verdict's artifact name "video" is taken or empty`},
		{"artifact missing", &pluginAnalyzer{verdict: Verdict{Winner: "left", Artifacts: map[string]string{"overlay": "overlay.avi"}}},
			`analysis: motion analyzer: verdict's artifact "overlay": stat DIR/overlay.avi: no such file or directory`},
		{"extra not JSON", &pluginAnalyzer{verdict: Verdict{Winner: "left", Extra: map[string]any{"f": func() {}}}},
			`analysis: motion analyzer: verdict's extra field "f" does not encode as JSON: json: unsupported type: func()`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			job := analyzerJob(t, "motion", tc.a)
			want := bytes.ReplaceAll([]byte(tc.want), []byte("DIR"), []byte(job.ArtifactDir))
			_, err := Run(context.Background(), job, nil)
			if err == nil || err.Error() != string(want) {
				t.Fatalf("Run = %v, want %s", err, want)
			}
			if tc.a.err != nil && !errors.Is(err, tc.a.err) {
				t.Errorf("%v does not wrap the analyzer's error", err)
			}
			assertNoResult(t, job.ArtifactDir)
		})
	}

	t.Run("canceled during analysis", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		job := analyzerJob(t, "motion", &pluginAnalyzer{verdict: Verdict{Winner: "left"}, cancel: cancel})
		_, err := Run(ctx, job, nil)
		if !errors.Is(err, context.Canceled) || err.Error() != "analysis: motion analyzer: canceled: context canceled" {
			t.Errorf("Run = %v, want the analysis canceled", err)
		}
		assertNoResult(t, job.ArtifactDir)
	})
}

func TestAnalyzerRegistry(t *testing.T) {
	plug := &pluginAnalyzer{verdict: Verdict{Winner: "simultaneous", Reason: "both attacked"}}
	tests := []struct {
		name     string
		analyzer string
		registry map[string]Analyzer
		winner   string
		err      string
	}{
		{"default is signal", "", nil, "undecided", ""},
		{"signal by name", AnalyzerSignal, map[string]Analyzer{"motion": plug}, "undecided", ""},
		{"plugged by name", "motion", map[string]Analyzer{"motion": plug}, "simultaneous", ""},
		{"signal replaced", "", map[string]Analyzer{AnalyzerSignal: plug}, "simultaneous", ""},
		{"unknown lists the known", "pose", map[string]Analyzer{"motion": plug, "external": plug, "broken": nil},
			"", `analysis: unknown analyzer "pose": known analyzers are external, motion, signal`},
		{"nil entry is unknown", "broken", map[string]Analyzer{"broken": nil},
			"", `analysis: unknown analyzer "broken": known analyzers are signal`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			job := analyzerJob(t, tc.analyzer, nil)
			job.Analyzers = tc.registry
			res, err := Run(context.Background(), job, nil)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("Run = %v, want %q", err, tc.err)
				}
				if entries, _ := os.ReadDir(job.ArtifactDir); len(entries) != 0 {
					t.Errorf("a job with an unknown analyzer wrote %d files", len(entries))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Winner != tc.winner {
				t.Errorf("winner %q, want %q", res.Winner, tc.winner)
			}
		})
	}
}

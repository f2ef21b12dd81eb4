package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/referee-project/referee/pipeline/signal"
)

// AnalyzerSignal is the name of the built-in analyzer that gives the verdict
// of the scoring box's lights alone (SignalAnalyzer).
const AnalyzerSignal = "signal"

// Analyzer decides a phrase. Implementations must honour ctx and report
// progress from 0 to 1. Run reports 0 before calling Analyze and 1 after it
// returns, so an analyzer reports only what lies between.
type Analyzer interface {
	Analyze(ctx context.Context, in AnalysisInput, progress func(float64, string)) (Verdict, error)
}

// AnalysisInput is what an analyzer works on. The files are in ArtifactDir,
// and an analyzer writes its own artifacts there too.
type AnalysisInput struct {
	// VideoPath is the absolute path of the session's video; "" when the
	// phrase comes as tracks without a video (TracksPath).
	VideoPath string
	// TracksPath is the absolute path of the phrase's tracks file when
	// there is no video to track.
	TracksPath string
	// SignalPath is the absolute path of the saved phrase log, for
	// analyzers that run other programs.
	SignalPath string
	// FPS, Width, Height and Frames describe the video. An event of the
	// signal at t seconds is at frame t x FPS.
	FPS           float64
	Width, Height int
	Frames        int
	// Phrase is the parsed signal.
	Phrase      *signal.Phrase
	ArtifactDir string
}

// Verdict is an analyzer's decision.
type Verdict struct {
	// Winner is "left", "right", "none", "undecided" or another word the
	// analyzer documents (e.g. "simultaneous"); never empty.
	Winner string
	// Reason says why, in words a fencer reads.
	Reason string
	// Confidence is 0 to 1; 0 means the analyzer gives none.
	Confidence float64
	// Extra is merged into the result's JSON object, e.g. "timeline". Its
	// keys must not be those of Result's own fields.
	Extra map[string]any
	// Artifacts are extra artifact files by name (e.g. "overlay_video"),
	// absolute or relative to the artifact directory. They must exist and
	// must not use the names of Artifacts' fixed keys.
	Artifacts map[string]string
}

// SignalAnalyzer gives the verdict of the scoring box's lights alone
// (signal.Phrase.SignalVerdict): a single light scores for that fencer, no
// light is "none", both with confidence 1, and a double touch is
// "undecided" with confidence 0 because right-of-way needs the video.
type SignalAnalyzer struct{}

// Analyze implements Analyzer.
func (SignalAnalyzer) Analyze(ctx context.Context, in AnalysisInput, _ func(float64, string)) (Verdict, error) {
	if err := ctx.Err(); err != nil {
		return Verdict{}, err
	}
	v := in.Phrase.SignalVerdict()
	conf := 1.0
	if v.Winner == signal.WinnerUndecided {
		conf = 0
	}
	return Verdict{Winner: v.Winner, Reason: v.Reason, Confidence: conf}, nil
}

// PickAnalyzer finds the analyzer called name ("" is AnalyzerSignal) among
// the built-in one and extra, as Run does for a Job's Analyzer and
// Analyzers: an entry of extra named AnalyzerSignal replaces the built-in.
// An unknown name is an error that lists KnownAnalyzers.
func PickAnalyzer(name string, extra map[string]Analyzer) (string, Analyzer, error) {
	if name == "" {
		name = AnalyzerSignal
	}
	if a, ok := extra[name]; ok && a != nil {
		return name, a, nil
	}
	if name == AnalyzerSignal {
		return name, SignalAnalyzer{}, nil
	}
	return "", nil, fmt.Errorf("unknown analyzer %q: known analyzers are %s", name, strings.Join(KnownAnalyzers(extra), ", "))
}

// KnownAnalyzers are the names a Job with extra for its Analyzers may give
// as its Analyzer, sorted: AnalyzerSignal and the non-nil entries of extra.
func KnownAnalyzers(extra map[string]Analyzer) []string {
	known := []string{AnalyzerSignal}
	for n, a := range extra {
		if a != nil && n != AnalyzerSignal {
			known = append(known, n)
		}
	}
	slices.Sort(known)
	return known
}

// analyze runs the analyzer, reporting progress 0 before and 1 after and
// what it reports in between, and checks its verdict.
func analyze(ctx context.Context, name string, a Analyzer, in AnalysisInput, progress func(float64, string)) (Verdict, error) {
	progress(0, fmt.Sprintf("%s analyzer on %d frames", name, in.Frames))
	last := 0.0
	v, err := a.Analyze(ctx, in, func(p float64, msg string) {
		// Keep the stage's progress within 0..1 and never going back,
		// whatever the analyzer reports.
		p = math.Min(math.Max(p, last), 1)
		if math.IsNaN(p) {
			p = last
		}
		last = p
		progress(p, msg)
	})
	if err != nil {
		return Verdict{}, fmt.Errorf("%s analyzer: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return Verdict{}, fmt.Errorf("%s analyzer: canceled: %w", name, err)
	}
	if err := checkVerdict(&v, in.ArtifactDir); err != nil {
		return Verdict{}, fmt.Errorf("%s analyzer: %w", name, err)
	}
	progress(1, "winner: "+v.Winner)
	return v, nil
}

// checkVerdict checks what Run takes from v into the result, and makes its
// artifact paths absolute.
func checkVerdict(v *Verdict, dir string) error {
	if v.Winner == "" {
		return errors.New("verdict has no winner")
	}
	if !(v.Confidence >= 0 && v.Confidence <= 1) {
		return fmt.Errorf("verdict confidence %v is not between 0 and 1", v.Confidence)
	}
	fixed := jsonKeys(reflect.TypeFor[Result]())
	for k, x := range v.Extra {
		if slices.Contains(fixed, k) {
			return fmt.Errorf("verdict's extra field %q would replace the result's own field", k)
		}
		if _, err := json.Marshal(x); err != nil {
			return fmt.Errorf("verdict's extra field %q does not encode as JSON: %w", k, err)
		}
	}
	if len(v.Artifacts) == 0 {
		return nil
	}
	fixedArts := jsonKeys(reflect.TypeFor[Artifacts]())
	abs := make(map[string]string, len(v.Artifacts))
	for name, path := range v.Artifacts {
		if slices.Contains(fixedArts, name) || name == "" {
			return fmt.Errorf("verdict's artifact name %q is taken or empty", name)
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("verdict's artifact %q: %w", name, err)
		}
		abs[name] = path
	}
	v.Artifacts = abs
	return nil
}

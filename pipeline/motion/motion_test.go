package motion

import (
	"context"
	"errors"
	"fmt"
	"github.com/referee-project/referee/pipeline/rightofway"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio"
)

// variant is how a scenario is filmed: container, frame rate, size and
// the amplitude of camera noise (synth.AddNoise; 0 for none).
type variant struct {
	ext   string
	fps   float64
	w, h  int
	noise int
}

func (v variant) String() string {
	return fmt.Sprintf("%s-%gfps-%dx%d-noise%d", strings.TrimPrefix(v.ext, "."), v.fps, v.w, v.h, v.noise)
}

// film renders sc as a video in dir and returns the analysis input for it,
// with the signal the box would have written, parsed.
func film(t testing.TB, dir string, sc synth.Scenario, v variant) pipeline.AnalysisInput {
	t.Helper()
	path := filepath.Join(dir, sc.Name+"-"+v.String()+v.ext)
	w, err := videoio.Create(path, "", v.fps, v.w, v.h)
	if err != nil {
		t.Fatal(err)
	}
	img := bgr.New(v.w, v.h)
	rng := rand.New(rand.NewPCG(uint64(sc.Phrase), uint64(v.fps)))
	n := int(math.Floor(sc.Duration*v.fps)) + 1
	for i := range n {
		sc.Render(img, float64(i)/v.fps)
		synth.AddNoise(img, rng, v.noise)
		if err := w.Write(img); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p, err := signal.Parse(signal.Render(sc.Signal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))))
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.AnalysisInput{
		VideoPath: path, FPS: v.fps, Width: v.w, Height: v.h, Frames: n,
		Phrase: p, ArtifactDir: dir,
	}
}

// checkVerdict requires the scenario's documented call and a verdict that
// explains itself: a confidence, a reason naming the hit time for a double
// touch, and a timeline whose events sit on frame round(t x fps).
func checkVerdict(t *testing.T, sc synth.Scenario, in pipeline.AnalysisInput, v pipeline.Verdict) {
	t.Helper()
	if v.Winner != sc.Call {
		tl, _ := v.Extra["timeline"].(rightofway.Timeline)
		t.Fatalf("%s: winner %q, want %q (%s)\nreason: %s\ndecision: %+v\nleft: %+v\nright: %+v",
			sc.Name, v.Winner, sc.Call, sc.Why, v.Reason, tl.Decision, tl.Left.Phases, tl.Right.Phases)
	}
	if !(v.Confidence > 0 && v.Confidence <= 1) {
		t.Errorf("%s: confidence %v, want in (0, 1]", sc.Name, v.Confidence)
	}
	double := in.Phrase.Box.Left && in.Phrase.Box.Right
	if hit := fmt.Sprintf("hit at %.2f s", *in.Phrase.FirstHitS); double && !strings.Contains(v.Reason, hit) {
		t.Errorf("%s: reason %q does not say %q", sc.Name, v.Reason, hit)
	}
	tl, ok := v.Extra["timeline"].(rightofway.Timeline)
	if !ok {
		t.Fatalf("%s: Extra[timeline] is %T, want rightofway.Timeline", sc.Name, v.Extra["timeline"])
	}
	if tl.Frames != in.Frames || len(tl.Left.PositionM) != in.Frames || len(tl.Right.SpeedMPS) != in.Frames {
		t.Errorf("%s: timeline has %d frames (%d, %d positions), want %d", sc.Name, tl.Frames, len(tl.Left.PositionM), len(tl.Right.SpeedMPS), in.Frames)
	}
	if len(tl.Events) != len(in.Phrase.Events) {
		t.Fatalf("%s: %d timeline events, want the signal's %d", sc.Name, len(tl.Events), len(in.Phrase.Events))
	}
	for i, ev := range tl.Events {
		if want := int(math.Round(in.Phrase.Events[i].TimeS * in.FPS)); ev.Frame != want || ev.Kind != in.Phrase.Events[i].Kind {
			t.Errorf("%s: event %d is %s at frame %d, want %s at %d", sc.Name, i, ev.Kind, ev.Frame, in.Phrase.Events[i].Kind, want)
		}
		if ev.LeftPhase == "" || ev.RightPhase == "" {
			t.Errorf("%s: event %d has no phases: %+v", sc.Name, i, ev)
		}
	}
	// The tracked positions must follow the script: the left fencer stays
	// left of the right one, and each ends where the script puts them
	// relative to where they began, within 15 cm plus 15 %.
	gl0, gr0 := sc.Positions(0)
	gl1, gr1 := sc.Positions(float64(in.Frames-1) / in.FPS)
	const stripM = 7.0 // synth's strip length
	for _, c := range []struct {
		side     string
		pos      []float64
		from, to float64
	}{{"left", tl.Left.PositionM, gl0, gl1}, {"right", tl.Right.PositionM, gr0, gr1}} {
		got := c.pos[len(c.pos)-1] - c.pos[0]
		want := (c.to - c.from) * stripM
		if math.Abs(got-want) > 0.15+0.15*math.Abs(want) {
			t.Errorf("%s: %s fencer moved %.2f m, script says %.2f m", sc.Name, c.side, got, want)
		}
	}
}

func TestAnalyzeCallsEveryScenario(t *testing.T) {
	variants := []variant{
		{".avi", 15, 640, 480, 0},
		{".mp4", 15, 640, 480, 0},
		{".avi", 30, 640, 480, 0},
		{".mp4", 30, 640, 480, 12},
		{".avi", 15, 640, 480, 20},
		{".mp4", 15, 1280, 720, 12},
	}
	if testing.Short() {
		variants = variants[:2]
	}
	for _, v := range variants {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for _, sc := range synth.Scenarios() {
				in := film(t, dir, sc, v)
				a := &Analyzer{NoArtifacts: true}
				verdict, err := a.Analyze(context.Background(), in, nil)
				if err != nil {
					t.Fatalf("%s: %v", sc.Name, err)
				}
				checkVerdict(t, sc, in, verdict)
			}
		})
	}
}

// TestAnalyze1280x720At30FPS covers the largest frames at the higher rate
// on the double touches that need the video, to keep the test short.
func TestAnalyze1280x720At30FPS(t *testing.T) {
	if testing.Short() {
		t.Skip("large video")
	}
	dir := t.TempDir()
	for _, name := range []string{"both-pause-left-resumes", "simultaneous-attack", "beat-left-attack-right-counter"} {
		sc, err := synth.ScenarioByName(name)
		if err != nil {
			t.Fatal(err)
		}
		in := film(t, dir, sc, variant{".avi", 30, 1280, 720, 8})
		v, err := (&Analyzer{NoArtifacts: true}).Analyze(context.Background(), in, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkVerdict(t, sc, in, v)
	}
}

func TestAnalyzeReportsProgressAndStopsOnCancel(t *testing.T) {
	sc, err := synth.ScenarioByName("left-attack-right-pause")
	if err != nil {
		t.Fatal(err)
	}
	in := film(t, t.TempDir(), sc, variant{".avi", 15, 320, 240, 0})
	var got []float64
	_, err = (&Analyzer{NoArtifacts: true}).Analyze(context.Background(), in, func(p float64, msg string) {
		if msg == "" {
			t.Errorf("progress %v without a message", p)
		}
		got = append(got, p)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 3 || got[0] < 0 || got[len(got)-1] > 1 {
		t.Fatalf("progress %v: want several values within 0..1", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1] {
			t.Fatalf("progress goes back: %v", got)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&Analyzer{}).Analyze(ctx, in, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Analyze with a canceled context = %v, want context.Canceled", err)
	}
}

func TestAnalyzeRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	p, err := signal.Parse(signal.Render(synth.Scenarios()[0].Signal(time.Now())))
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.avi")
	for _, c := range []struct {
		name string
		in   pipeline.AnalysisInput
		want string
	}{
		{"no signal", pipeline.AnalysisInput{VideoPath: missing}, "no parsed signal to analyse"},
		{"no video", pipeline.AnalysisInput{VideoPath: missing, Phrase: p, FPS: 15}, "open the video to analyse: "},
	} {
		_, err := (&Analyzer{}).Analyze(context.Background(), c.in, nil)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to start with %q", c.name, err, c.want)
		}
	}
}

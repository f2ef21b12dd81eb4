package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/referee-project/referee/pipeline/atomicfile"
	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio"
)

// genTestVideoOptions configures "referee gen-test-video".
type genTestVideoOptions struct {
	Out      string
	Frames   int
	Width    int
	Height   int
	FPS      float64
	Codec    string
	Pattern  string
	Scenario string
	Signal   string
	Noise    int
	Seed     uint64
	// framesSet says --frames was given; fencers videos otherwise last as
	// long as their scenario.
	framesSet bool
	Stdout    io.Writer
}

// defaultScenario is the script of a fencers video when --scenario is not
// given.
const defaultScenario = "left-attack-right-pause"

// defaultFPS is the frame rate of generated videos and of the frame
// numbers probe-signal prints, so that the two agree unless told otherwise;
// it is also a camera's usual rate.
const defaultFPS = 30

const (
	patternNoise   = "noise"
	patternCounter = "counter"
	patternFencers = "fencers"
)

func newGenTestVideoCmd(a *app) *cobra.Command {
	var opts genTestVideoOptions
	cmd := &cobra.Command{
		Use:   "gen-test-video [OUT]",
		Short: "Write a synthetic test video (and optionally its phrase log)",
		Long: `gen-test-video writes a synthetic video that OpenCV can read, to try
the rest of the chain without a camera. OUT defaults to test.mp4; the codec
follows the extension (.mp4 mp4v, .avi MJPG) unless --codec names a FOURCC.

Patterns:
  noise     random pixels, like the old "Try with small video first" check.
  counter   the frame index drawn large and encoded in a row of black and
            white blocks that survives JPEG and mp4v, so that
            "referee probe-video --verify-sequence" can check a
            reconstructed video frame by frame.
  fencers   two fencers on a strip acting out a scripted phrase; --scenario
            picks the script (each has a documented correct call, listed
            below). Without --frames the video lasts as long as the phrase.

--signal FILE also writes the scoring box's phrase log whose events happen
at the video's times (for fencers, the hits land at the lunge).` + scenarioHelp(),
		Example: `  referee gen-test-video
  referee gen-test-video x.avi --pattern counter --frames 60
  referee gen-test-video phrase.avi --pattern fencers --scenario simultaneous-attack --signal phrase.txt`,
		Args: maxArgs(1, "the video to write"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Out = "test.mp4"
			if len(args) == 1 {
				opts.Out = args[0]
			}
			opts.framesSet = cmd.Flags().Changed("frames")
			opts.Stdout = a.streams.Out
			return runGenTestVideo(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Frames, "frames", 10, "number of frames")
	f.IntVar(&opts.Width, "width", 640, "frame width in pixels")
	f.IntVar(&opts.Height, "height", 480, "frame height in pixels")
	f.Float64Var(&opts.FPS, "fps", defaultFPS, "frames per second")
	f.StringVar(&opts.Codec, "codec", "", "FOURCC of the codec (default: from the extension)")
	f.StringVar(&opts.Pattern, "pattern", patternNoise, "picture: noise, counter or fencers")
	f.StringVar(&opts.Scenario, "scenario", "", "phrase script for --pattern fencers (default "+defaultScenario+")")
	f.StringVar(&opts.Signal, "signal", "", "also write the matching phrase log to this file")
	f.IntVar(&opts.Noise, "noise", 0, "camera noise amplitude added to fencers frames (0 to 64)")
	f.Uint64Var(&opts.Seed, "seed", 1, "random seed for noise")
	return cmd
}

// scenarioHelp lists the scenarios with their documented calls.
func scenarioHelp() string {
	var b strings.Builder
	b.WriteString("\n\nScenarios for --pattern fencers (name: correct call, what happens):\n")
	for _, s := range synth.Scenarios() {
		fmt.Fprintf(&b, "  %-28s %-12s %s\n", s.Name, s.Call, s.Description)
	}
	return strings.TrimRight(b.String(), "\n")
}

func runGenTestVideo(_ context.Context, opts genTestVideoOptions) error {
	// 48x48 is the smallest picture the counter's block code fits in.
	if opts.Width < 48 || opts.Height < 48 || opts.Width%2 != 0 || opts.Height%2 != 0 {
		return usageErrorf("size %dx%d: width and height must be even and at least 48", opts.Width, opts.Height)
	}
	if !(opts.FPS > 0 && opts.FPS <= 240) {
		return usageErrorf("--fps %v: want a frame rate above 0 and at most 240", opts.FPS)
	}
	if opts.Noise < 0 || opts.Noise > 64 {
		return usageErrorf("--noise %d: want 0 to 64", opts.Noise)
	}
	var scenario synth.Scenario
	switch opts.Pattern {
	case patternNoise, patternCounter:
		if opts.Scenario != "" {
			return usageErrorf("--scenario %s applies to --pattern fencers only; this is --pattern %s", opts.Scenario, opts.Pattern)
		}
	case patternFencers:
		if opts.Scenario == "" {
			opts.Scenario = defaultScenario
		}
		var err error
		if scenario, err = synth.ScenarioByName(opts.Scenario); err != nil {
			return withExit(exitUsage, err)
		}
		if !opts.framesSet {
			opts.Frames = int(scenario.Duration*opts.FPS + 0.5)
		}
	default:
		return usageErrorf("--pattern %q: want noise, counter or fencers", opts.Pattern)
	}
	if opts.Frames < 1 || opts.Frames > synth.CounterMax+1 {
		return usageErrorf("--frames %d: want 1 to %d", opts.Frames, synth.CounterMax+1)
	}

	w, err := videoio.Create(opts.Out, opts.Codec, opts.FPS, opts.Width, opts.Height)
	if err != nil {
		return withExit(exitUsage, err)
	}
	img := bgr.New(opts.Width, opts.Height)
	rng := rand.New(rand.NewPCG(opts.Seed, 0x5eed))
	for i := 0; i < opts.Frames; i++ {
		switch opts.Pattern {
		case patternNoise:
			synth.Noise(img, rng)
		case patternCounter:
			synth.DrawCounter(img, i)
		case patternFencers:
			scenario.Render(img, float64(i)/opts.FPS)
			if opts.Noise > 0 {
				synth.AddNoise(img, rng, opts.Noise)
			}
		}
		if err := w.Write(img); err != nil {
			_ = w.Close()
			// Only a half-written regular file goes: OUT may be a
			// device or a link the user named.
			if st, err := os.Lstat(opts.Out); err == nil && st.Mode().IsRegular() {
				_ = os.Remove(opts.Out)
			}
			return fmt.Errorf("write frame %d of %s: %w", i, opts.Out, err)
		}
	}
	if err := w.Close(); err != nil {
		return withExit(exitUsage, fmt.Errorf("finish %s: %w", opts.Out, err))
	}
	fmt.Fprintf(opts.Stdout, "Created %s with %d frames\n", opts.Out, opts.Frames)

	if opts.Signal == "" {
		return nil
	}
	spec := plainPhraseLog(float64(opts.Frames) / opts.FPS)
	if opts.Pattern == patternFencers {
		// A video cut short by --frames has a log of what it shows: no
		// event after its end.
		spec = scenario.Until(float64(opts.Frames) / opts.FPS).Signal(time.Now())
	}
	if err := atomicfile.WriteFile(opts.Signal, signal.Render(spec), 0o644); err != nil {
		return withExit(exitUsage, fmt.Errorf("write the phrase log: %w (check that the folder exists and is writable)", err))
	}
	fmt.Fprintf(opts.Stdout, "Created %s (%s)\n", opts.Signal, describeSpec(spec))
	return nil
}

// plainPhraseLog is the log written beside a noise or counter video of the
// given length: a single light for the left fencer at 80% of the video, so
// that the signal-only verdict is known ("left").
func plainPhraseLog(durationS float64) signal.LogSpec {
	hit := roundMillis(durationS * 0.8)
	return signal.LogSpec{
		Phrase: 1,
		Start:  time.Now(),
		Events: []signal.Event{
			{TimeS: 0.001, Kind: signal.EventRecordingStarted},
			// The real box names the opposite side in single-light hit lines.
			{TimeS: hit, Kind: signal.EventHit, Side: "right"},
			{TimeS: roundMillis(hit + 0.023), Kind: signal.EventLockoutStarted},
			{TimeS: roundMillis(durationS), Kind: signal.EventRecordingEnded},
		},
		Box: signal.Box{Left: true},
	}
}

func roundMillis(s float64) float64 { return float64(int64(s*1000+0.5)) / 1000 }

// describeSpec summarises a phrase log for the one-line confirmation.
func describeSpec(spec signal.LogSpec) string {
	var lights []string
	if spec.Box.Left {
		lights = append(lights, "left (red)")
	}
	if spec.Box.Right {
		lights = append(lights, "right (green)")
	}
	if len(lights) == 0 {
		lights = append(lights, "none")
	}
	return fmt.Sprintf("%d timed events, lights: %s", len(spec.Events), strings.Join(lights, " and "))
}

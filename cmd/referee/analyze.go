package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/external"
	"github.com/referee-project/referee/pipeline/motion"
	"github.com/referee-project/referee/pipeline/pose"
	"github.com/referee-project/referee/pipeline/rightofway"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/tracked"
	"github.com/referee-project/referee/pipeline/tracks"
	"github.com/referee-project/referee/pipeline/videoio"
)

// analyzerOptions chooses the analyzer that decides a phrase; "referee
// analyze" and "referee serve" share it.
type analyzerOptions struct {
	Analyzer        string
	AnalyzerCmd     string
	AnalyzerTimeout time.Duration
	PoseCmd         string
	PoseTimeout     time.Duration
}

// analyzerChoices are the analyzers --analyzer names, in the order its help
// and the shell completion give them, each with what decides the phrase.
// newAnalyzers builds them; serve, analyze and worker take the same.
var analyzerChoices = []struct{ name, what string }{
	{motion.Name, "right-of-way from the video"},
	{pipeline.AnalyzerSignal, "the box's lights only"},
	{external.Name, "--analyzer-cmd"},
	{pose.Name, "right-of-way from --pose-cmd's poses"},
}

// analyzerNames are the values of --analyzer.
func analyzerNames() []string {
	names := make([]string, len(analyzerChoices))
	for i, c := range analyzerChoices {
		names[i] = c.name
	}
	return names
}

func addAnalyzerFlags(f *pflag.FlagSet, opts *analyzerOptions) {
	what := make([]string, len(analyzerChoices))
	for i, c := range analyzerChoices {
		what[i] = c.name + " (" + c.what + ")"
	}
	last := len(what) - 1
	f.StringVar(&opts.Analyzer, "analyzer", motion.Name, "what decides a phrase: "+strings.Join(what[:last], ", ")+" or "+what[last])
	f.StringVar(&opts.AnalyzerCmd, "analyzer-cmd", "", "command of the external analyzer, run without a shell; {video}, {signal} and {out} are replaced by the paths; it writes {\"winner\",\"reason\"} JSON to {out}")
	f.DurationVar(&opts.AnalyzerTimeout, "analyzer-timeout", external.DefaultTimeout, "how long the external analyzer may run")
	f.StringVar(&opts.PoseCmd, "pose-cmd", pose.DefaultCommand, "pose estimator of the pose analyzer, run without a shell: {frames} (a directory of 000000.jpg, ...), {video}, {fps} and {out} are replaced; it writes a referee-tracks/1 file to {out}; the default is the project's estimator, which make build installs")
	f.DurationVar(&opts.PoseTimeout, "pose-timeout", pose.DefaultTimeout, "how long the pose estimator may run")
}

// newAnalyzers checks opts and returns the analyzers for
// pipeline.Job.Analyzers: motion always, external when --analyzer-cmd is
// set, pose when --pose-cmd is (its default is the project's estimator).
// Errors are usage errors.
func newAnalyzers(opts analyzerOptions) (map[string]pipeline.Analyzer, error) {
	if !slices.Contains(analyzerNames(), opts.Analyzer) {
		return nil, usageErrorf("--analyzer %q: want %s", opts.Analyzer, strings.Join(analyzerNames(), ", "))
	}
	m := map[string]pipeline.Analyzer{motion.Name: &motion.Analyzer{}}
	if opts.PoseCmd != "" {
		p, err := pose.New(opts.PoseCmd, opts.PoseTimeout)
		if err != nil {
			return nil, withExit(exitUsage, fmt.Errorf("%w (check --pose-cmd)", err))
		}
		if opts.Analyzer == pose.Name {
			if err := p.Installed(); err != nil {
				return nil, withExit(exitUsage, err)
			}
		}
		m[pose.Name] = p
	} else if opts.Analyzer == pose.Name {
		return nil, usageErrorf("--analyzer pose needs --pose-cmd, the pose estimator to run")
	}
	if opts.AnalyzerCmd != "" {
		ext, err := external.New(opts.AnalyzerCmd, opts.AnalyzerTimeout)
		if err != nil {
			return nil, withExit(exitUsage, fmt.Errorf("%w (check --analyzer-cmd)", err))
		}
		m[external.Name] = ext
	} else if opts.Analyzer == external.Name {
		return nil, usageErrorf("--analyzer external needs --analyzer-cmd, the command to run")
	}
	return m, nil
}

// analyzeOptions is the resolved configuration of "referee analyze".
type analyzeOptions struct {
	analyzerOptions
	Video  string
	Tracks string
	// videoFlags are the flags given on the command line that choose how a
	// video is analysed: with Tracks they would be ignored, so they are
	// refused.
	videoFlags []string
	Signal     string
	OutDir     string
	JSON       bool

	Logger *slog.Logger
	Out    io.Writer
}

func newAnalyzeCmd(a *app) *cobra.Command {
	var opts analyzeOptions
	// The analyzers' flags, in a set of their own so that RunE finds
	// those given among them.
	analyzerFlags := pflag.NewFlagSet("analyzer", pflag.ContinueOnError)
	addAnalyzerFlags(analyzerFlags, &opts.analyzerOptions)
	cmd := &cobra.Command{
		Use:   "analyze (--video VIDEO | --tracks TRACKS) --signal SIGNAL",
		Short: "Decide a recorded phrase offline, as the server would, and leave the artifacts",
		Long: `analyze runs the server's processing on a phrase on disk, without a
server: it copies the video and the scoring box's log into the artifact
directory, decides the phrase and writes result.json there with the
artifacts: with the motion analyzer, timeline.png (both fencers' positions
and phases over time, the events and the verdict), overlay.avi (the fencers
boxed and labelled with their phase, events flashed) and clip_touch.avi
(from 1.5 s before the first hit to the end of the lockout).

A double touch (both lights) is decided by right-of-way from the video:
winner left, right, or simultaneous (no touch); a single light or none keeps
the box's verdict. Where the video does not show the final action (the
fencers are not found, or the video stops well before the hit) the winner
is undecided, with confidence 0 and the reason.

With --tracks instead of --video it decides a phrase from both fencers'
tracks (referee-tracks/1: the tracks.json the video analysis leaves, or a
pose estimator's) with the same engine, and writes result.json, tracks.json
and timeline.png: the same call as the video that made the tracks.

It prints the winner, the reason and where the artifacts are, or with
--json the result.json object. A missing or unreadable video or signal
exits with status 2; a failed analysis with status 1.`,
		Example: `  referee gen-test-video phrase.avi --pattern fencers --scenario both-pause-left-resumes --signal phrase.txt
  referee analyze --video phrase.avi --signal phrase.txt --out phrase-analysis
  referee analyze --tracks phrase-analysis/tracks.json --signal phrase.txt --json
  referee analyze --video phrase.avi --signal phrase.txt --analyzer external --analyzer-cmd "./rw {video} {signal} {out}"`,
		Args: exactArgs(0, "none (give the files with --video or --tracks, and --signal)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Logger = a.logger
			opts.Out = a.streams.Out
			analyzerFlags.VisitAll(func(f *pflag.Flag) {
				if f.Changed {
					opts.videoFlags = append(opts.videoFlags, "--"+f.Name)
				}
			})
			return runAnalyze(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Video, "video", "", "the phrase's video")
	f.StringVar(&opts.Tracks, "tracks", "", "both fencers' tracks (referee-tracks/1), to decide without a video")
	f.StringVar(&opts.Signal, "signal", "", "the scoring box's phrase log (required)")
	f.StringVar(&opts.OutDir, "out", "", "artifact directory (default: a new referee-analyze-* directory in the system's temporary directory)")
	f.BoolVar(&opts.JSON, "json", false, "print the result.json object instead of a summary")
	f.AddFlagSet(analyzerFlags)
	return cmd
}

func runAnalyze(ctx context.Context, opts analyzeOptions) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if (opts.Video == "") == (opts.Tracks == "") || opts.Signal == "" {
		return usageErrorf("give --signal and one of --video or --tracks")
	}
	if opts.Tracks != "" && len(opts.videoFlags) > 0 {
		flags := strings.Join(opts.videoFlags, ", ")
		return usageErrorf("%s with --tracks: tracks are decided by the right-of-way engine alone, and %s only says how a video becomes tracks; drop it, or give --video", flags, flags)
	}
	var analyzers map[string]pipeline.Analyzer
	if opts.Tracks != "" {
		// Tracks are decided by the engine alone: --analyzer chooses how
		// a video becomes tracks.
		opts.Analyzer = tracked.Name
		analyzers = map[string]pipeline.Analyzer{tracked.Name: tracked.Analyzer{}}
	} else {
		var err error
		if analyzers, err = newAnalyzers(opts.analyzerOptions); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(opts.Signal)
	if err != nil {
		return usageErrorf("read the signal: %w", err)
	}
	if _, err := signal.Parse(data); err != nil {
		return usageErrorf("signal %s: %w", opts.Signal, err)
	}
	input := opts.Video
	if opts.Tracks != "" {
		input = opts.Tracks
		t, err := tracks.ReadFile(opts.Tracks)
		if err != nil {
			return usageErrorf("tracks %s: %w", opts.Tracks, err)
		}
		if t.Frames() < 2 {
			return usageErrorf("tracks %s: %d frames; a decision needs at least 2", opts.Tracks, t.Frames())
		}
		if _, err := rightofway.Scale(t); err != nil {
			return usageErrorf("tracks %s: %w", opts.Tracks, err)
		}
	} else if _, err := videoio.Probe(opts.Video); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return usageErrorf("video %s does not exist", opts.Video)
		}
		return withExit(exitUsage, err)
	}
	dir := opts.OutDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "referee-analyze-"); err != nil {
			return fmt.Errorf("create an artifact directory: %w (set --out)", err)
		}
	}
	session := "analyze-" + strings.TrimSuffix(filepath.Base(input), filepath.Ext(input))
	log := opts.Logger.With("session_id", session)
	log.Info("analysing", "input", input, "signal", opts.Signal, "analyzer", opts.Analyzer, "artifact_dir", dir)
	last := map[string]int{}
	res, err := pipeline.Run(ctx, pipeline.Job{
		SessionID:   session,
		VideoPath:   opts.Video,
		TracksPath:  opts.Tracks,
		Signal:      data,
		ArtifactDir: dir,
		Analyzer:    opts.Analyzer,
		Analyzers:   analyzers,
	}, func(stage string, p float64, msg string) {
		// One log line per stage per quarter, not per frame.
		if q := int(p * 4); q > last[stage] || p == 0 {
			last[stage] = q
			log.Debug("progress", "stage", stage, "progress", p, "message", msg)
		}
	})
	if err != nil {
		return withExit(exitFailure, fmt.Errorf("analyse %s: %w", input, err))
	}
	log.Info("analysed", "winner", res.Winner, "wall_time_s", res.WallTimeSeconds)
	if opts.JSON {
		enc := json.NewEncoder(opts.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return writeAnalyzeSummary(opts.Out, res)
}

func writeAnalyzeSummary(w io.Writer, res *pipeline.Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "winner:     %s\n", res.Winner)
	if res.Confidence > 0 || res.Winner == signal.WinnerUndecided {
		fmt.Fprintf(&b, "confidence: %.2f\n", res.Confidence)
	}
	fmt.Fprintf(&b, "reason:     %s\n", res.Reason)
	fmt.Fprintf(&b, "artifacts:  %s\n", res.ArtifactDir)
	names := []string{filepath.Base(res.Artifacts.ResultJSON)}
	if res.Artifacts.Video != "" {
		names = append(names, filepath.Base(res.Artifacts.Video))
	}
	names = append(names, filepath.Base(res.Artifacts.Signal))
	fixed := len(names)
	for _, p := range res.Artifacts.Extra {
		names = append(names, filepath.Base(p))
	}
	slices.Sort(names[fixed:])
	fmt.Fprintf(&b, "            %s\n", strings.Join(names, ", "))
	_, err := io.WriteString(w, b.String())
	return err
}

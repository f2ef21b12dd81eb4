package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/referee-project/referee/pipeline/signal"
)

// probeSignalOptions configures "referee probe-signal".
type probeSignalOptions struct {
	Path string
	FPS  float64
	JSON bool
	Out  io.Writer
}

func newProbeSignalCmd(a *app) *cobra.Command {
	var opts probeSignalOptions
	cmd := &cobra.Command{
		Use:   "probe-signal FILE",
		Short: "Show what the scoring box said in a phrase log",
		Long: `probe-signal reads a scoring box's phrase log (the --signal file of
"referee stream") and shows what it says: every event with its time and the
video frame it falls on at --fps, the box's lights, the touch, and the
referee's decision when one was entered.

With --json it prints one object with the fields phrase, recording_start_s,
recording_end_s, blade_contacts_s, first_hit_s, simultaneous_hit_s,
lockout_start_s, box {left, right}, touch, referee_decision (null where the
log does not say), plus the events and the verdict the signal alone gives.

A file that is not a phrase log (empty, binary, over 1 MiB, or text of
another kind) exits with status 2 and one line saying why.`,
		Example: `  referee probe-signal 20251020_210329_phrase09.txt
  referee probe-signal --json --fps 30 phrase.txt`,
		Args: exactArgs(1, "the phrase log to read"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = args[0]
			opts.Out = a.streams.Out
			return runProbeSignal(cmd.Context(), opts)
		},
	}
	cmd.Flags().Float64Var(&opts.FPS, "fps", defaultFPS, "frame rate for the frame numbers of events (the timeline says which it used); gen-test-video's default too")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON object instead of the timeline")
	return cmd
}

// probeSignalReport is the --json output: the phrase's fields with the
// signal's verdict beside them.
type probeSignalReport struct {
	*signal.Phrase
	Verdict signal.Verdict `json:"verdict"`
}

func runProbeSignal(_ context.Context, opts probeSignalOptions) error {
	if !(opts.FPS > 0) {
		return usageErrorf("--fps %v: want a frame rate above 0", opts.FPS)
	}
	p, err := signal.ParseFile(opts.Path)
	if err != nil {
		return withExit(exitUsage, err)
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(probeSignalReport{Phrase: p, Verdict: p.SignalVerdict()})
	}
	if err := signal.WriteTimeline(opts.Out, p, opts.FPS); err != nil {
		return fmt.Errorf("write the timeline: %w", err)
	}
	return nil
}

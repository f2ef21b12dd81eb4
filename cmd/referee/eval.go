package main

import (
	"context"
	"encoding/json"
	"io"

	"github.com/spf13/cobra"

	"github.com/referee-project/referee/pipeline/evaluate"
)

// evalOptions configures "referee eval".
type evalOptions struct {
	Dir  string
	CV   string
	JSON bool
	Out  io.Writer
}

func newEvalCmd(a *app) *cobra.Command {
	var opts evalOptions
	cmd := &cobra.Command{
		Use:   "eval DIR",
		Short: "Measure how often the right-of-way engine agrees with referees",
		Long: `eval decides every labelled phrase of DIR with the right-of-way engine and
prints how often the call agrees with the referee's: overall, a confusion
table, by rule and by recording day, and every disagreement with its reason.

DIR holds NAME.tracks.json (referee-tracks/1), NAME.txt (the scoring box's
log) and labels.json mapping NAME to {"referee": "left"|"right"|"abstain"}.
The recording day is NAME's first 8 characters (YYYYMMDD).

DIR may also be what "referee serve" leaves (its output directory, or its
data directory): every phrase directory with result.json, tracks.json and
review.json (a referee's call recorded on the review page) is a labelled
phrase, its recording day the day of its start time, so that a club's own
reviews are its evaluation set.

A referee's left or right agrees only with the same winner (simultaneous,
none and undecided disagree); a referee's abstain agrees with simultaneous
or none. Undecided calls are also counted as coverage.

With --cv day, every recording day is decided with the engine's parameters
fitted on the other days only, and the in-sample figure (fitted on every
day) is printed beside it: the cross-validated figure is what to expect on
phrases the engine has not seen.`,
		Example: `  referee eval ../shared/testdata/tracks --cv day
  referee eval ../shared/testdata/tracks --json
  referee eval /var/lib/referee --cv day`,
		Args: exactArgs(1, "the directory of labelled phrases"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = args[0]
			opts.Out = a.streams.Out
			return runEval(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.CV, "cv", "", `cross-validation: "day" leaves one recording day out at a time`)
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the figures as one JSON object")
	return cmd
}

func runEval(_ context.Context, opts evalOptions) error {
	if opts.CV != "" && opts.CV != "day" && opts.CV != "none" {
		return usageErrorf("--cv %q: want day or none", opts.CV)
	}
	if opts.CV == "none" {
		opts.CV = ""
	}
	phrases, err := evaluate.Load(opts.Dir)
	if err != nil {
		return withExit(exitUsage, err)
	}
	rep, err := evaluate.Run(phrases, opts.CV)
	if err != nil {
		return err
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(opts.Out)
}

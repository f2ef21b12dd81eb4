package main

import (
	"context"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/referee-project/referee/pipeline/jobs/natsjobs"
	"github.com/referee-project/referee/server/worker"
)

// workerOptions is the resolved configuration of "referee worker".
type workerOptions struct {
	analyzerOptions
	NATS              natsjobs.Options
	DataDir           string
	ProcessingWorkers int

	Logger *slog.Logger
}

func newWorkerCmd(a *app) *cobra.Command {
	var opts workerOptions
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Analyse the phrases that serve nodes hand to a NATS JetStream cluster",
		Long: `worker takes analysis jobs from a NATS JetStream cluster that "referee
serve --nats" nodes submit phrases to: it fetches the phrase's video and
signal, decides it with the analyzer the serve node chose, and stores the
artifacts and the result back in JetStream, where the serve node takes them
to its client. Run as many workers as the analysis needs, on any machine
that reaches NATS; --processing-workers jobs run at once on each.

The analyzer is chosen by the serve node (its --analyzer) and travels with
the job; the worker's --analyzer-cmd and --analyzer-timeout say how to run
the external one on this machine. --analyzer names what this worker can run
besides motion and signal, which every worker runs.

A worker that stops (SIGINT, SIGTERM) gives its jobs back at once; one that
dies has them handed to another worker after --nats-ack-wait (a live
worker reports every third of it, so a long analysis is never taken from
it). A job that fails --nats-max-attempts times goes to the dead letters
(subject referee.dead.<phrase>) and its phrase fails with the reason. A
job is known by its phrase key, so a redelivered job never gives two
results.`,
		Example: `  # Two jobs at once, scratch space in /var/lib/referee-worker
  referee worker --nats nats://nats1:4222,nats://nats2:4222 --processing-workers 2 --data-dir /var/lib/referee-worker

  # An external analyzer installed on this machine
  referee worker --nats nats://nats1:4222 --analyzer external --analyzer-cmd "/opt/rw/bin/decide {video} {signal} {out}"`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Logger = a.logger
			return runWorker(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	addAnalyzerFlags(f, &opts.analyzerOptions)
	f.StringVar(&opts.DataDir, "data-dir", "./referee-worker", "scratch directory for the jobs being analysed (removed after each)")
	f.IntVar(&opts.ProcessingWorkers, "processing-workers", 0, "jobs analysed at once (0: one per CPU)")
	addNATSFlags(f, &opts.NATS, "NATS JetStream servers (nats://host:4222[,...]) to take jobs from (required)")
	return cmd
}

// runWorker analyses jobs until ctx is cancelled (SIGINT or SIGTERM).
func runWorker(ctx context.Context, opts workerOptions) error {
	if opts.NATS.URL == "" {
		return usageErrorf("worker needs --nats, the NATS JetStream servers the serve nodes submit to")
	}
	if opts.ProcessingWorkers < 0 {
		return usageErrorf("--processing-workers %d: want 0 (one per CPU) or more", opts.ProcessingWorkers)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	analyzers, err := newAnalyzers(opts.analyzerOptions)
	if err != nil {
		return err
	}
	conn, err := openNATS(opts.NATS, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	return flagHint(worker.Run(ctx, worker.Config{
		Source:    conn,
		DataDir:   opts.DataDir,
		Workers:   opts.ProcessingWorkers,
		Analyzers: analyzers,
		Logger:    log.With("node", conn.Name()),
	}))
}

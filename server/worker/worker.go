// Package worker analyses phrases that serve nodes submitted to a cluster:
// it takes jobs from a jobs.Source, fetches their inputs, runs
// pipeline.Run on them and hands the artifacts and the result back. It
// knows nothing of NATS: "referee worker" wires it to package natsjobs.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/jobs"
)

// Config configures a worker.
type Config struct {
	// Source hands out the jobs.
	Source jobs.Source
	// DataDir is the scratch space: a job's inputs and artifacts live in
	// DataDir/jobs/<phrase key>-<try> while it runs, and are removed after.
	DataDir string
	// Workers is the number of jobs analysed at once. Default GOMAXPROCS:
	// the CPUs this process may use.
	Workers int
	// Analyzers are the analyzers a job may name besides the built-in
	// pipeline.AnalyzerSignal, set up to run on this machine.
	Analyzers map[string]pipeline.Analyzer
	// Logger receives the log. Default: discarded.
	Logger *slog.Logger
}

// Run takes and analyses jobs, Workers at a time, until ctx ends; then it
// gives back the jobs it holds (another worker takes them at once) and
// returns nil once its goroutines have. A data directory that cannot be
// created is a *DataDirError.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Source == nil {
		return errors.New("worker: no job source")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	scratch := filepath.Join(cfg.DataDir, "jobs")
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return &DataDirError{fmt.Errorf("create the worker's scratch directory %s: %w", scratch, err)}
	}
	cfg.Logger.Info("worker started", "processing_workers", cfg.Workers, "data_dir", cfg.DataDir)
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				d, err := cfg.Source.Next(ctx)
				if err != nil {
					return // ctx ended
				}
				analyse(ctx, cfg, scratch, d)
			}
		}()
	}
	wg.Wait()
	cfg.Logger.Info("worker stopped")
	return nil
}

// analyse runs one try of a job and ends its delivery: Complete with the
// result, Fail with the error, or Release when ctx ended first.
func analyse(ctx context.Context, cfg Config, scratch string, d jobs.Delivery) {
	spec := d.Spec()
	log := cfg.Logger.With("session_id", spec.SessionID, "phrase", spec.Key, "attempt", d.Attempt())
	dir := filepath.Join(scratch, spec.Key+"-"+strconv.Itoa(d.Attempt()))
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("cannot remove a job's scratch directory", "path", dir, "err", err)
		}
	}()
	result, out, err := run(ctx, cfg, d, dir)
	if ctx.Err() != nil {
		log.Info("worker stopping: giving the job back", "err", err)
		d.Release()
		return
	}
	if err != nil {
		log.Warn("analysis failed", "err", err)
		if ferr := d.Fail(ctx, err); ferr != nil {
			log.Warn("cannot report the failure", "err", ferr)
		}
		return
	}
	if err := d.Complete(ctx, result, out); err != nil {
		log.Error("cannot store the result; the job will be tried again", "err", err)
		return
	}
	log.Info("job complete")
}

// run fetches the job's inputs into dir/in and analyses them into dir/out;
// it returns result.json's bytes and the artifact directory.
func run(ctx context.Context, cfg Config, d jobs.Delivery, dir string) ([]byte, string, error) {
	spec := d.Spec()
	inputs, err := d.Fetch(ctx, filepath.Join(dir, "in"))
	if err != nil {
		return nil, "", err
	}
	sig, err := os.ReadFile(inputs[jobs.SignalFile])
	if err != nil {
		return nil, "", fmt.Errorf("read the job's signal: %w", err)
	}
	video := inputs[spec.Video]
	if video == "" {
		return nil, "", fmt.Errorf("the job names the video %q, which is not among its inputs", spec.Video)
	}
	analyzers := maps.Clone(cfg.Analyzers)
	if analyzers == nil {
		analyzers = map[string]pipeline.Analyzer{}
	}
	// An unknown analyzer fails in pipeline.Run, which says so.
	if name, a, err := pipeline.PickAnalyzer(spec.Analyzer, analyzers); err == nil {
		analyzers[name] = withExtra{a, spec.Extra}
	}
	out := filepath.Join(dir, "out")
	var stats any
	if len(spec.StreamingStats) > 0 {
		stats = spec.StreamingStats
	}
	res, err := pipeline.Run(ctx, pipeline.Job{
		SessionID:      spec.SessionID,
		VideoPath:      video,
		Signal:         sig,
		ArtifactDir:    out,
		Analyzer:       spec.Analyzer,
		Analyzers:      analyzers,
		StreamingStats: stats,
	}, d.Progress)
	if err != nil {
		return nil, "", err
	}
	result, err := json.Marshal(res)
	if err != nil {
		return nil, "", fmt.Errorf("encode the result: %w", err)
	}
	return result, out, nil
}

// DataDirError is a Config.DataDir the worker cannot work in.
type DataDirError struct{ Err error }

func (e *DataDirError) Error() string { return e.Err.Error() }
func (e *DataDirError) Unwrap() error { return e.Err }

// withExtra is an analyzer whose verdict also carries the job's Extra, as
// the serve node would have added it analysing in place.
type withExtra struct {
	pipeline.Analyzer
	extra map[string]json.RawMessage
}

// Analyze implements pipeline.Analyzer.
func (w withExtra) Analyze(ctx context.Context, in pipeline.AnalysisInput, progress func(float64, string)) (pipeline.Verdict, error) {
	v, err := w.Analyzer.Analyze(ctx, in, progress)
	if err != nil || len(w.extra) == 0 {
		return v, err
	}
	extra := make(map[string]any, len(v.Extra)+len(w.extra))
	maps.Copy(extra, v.Extra)
	for k, raw := range w.extra {
		extra[k] = raw
	}
	v.Extra = extra
	return v, nil
}

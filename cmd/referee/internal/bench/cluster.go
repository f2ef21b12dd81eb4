package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"
)

// ClusterConfig is a cluster bench's resolved settings: Strips clients
// stream Frames frames each at once through Nodes serve nodes, once for
// every number of workers in Workers, each phrase's analysis taking Delay.
type ClusterConfig struct {
	Chain   Chain
	Strips  int
	Frames  int
	Nodes   int
	Workers []int
	Delay   time.Duration
	Logger  *slog.Logger
}

// ClusterSpec is what Chain.StartCluster starts: an embedded JetStream
// with its files in Dir, Nodes serve nodes taking MaxSessions sessions
// each, and Workers workers, each analysing one phrase at a time with an
// analyzer that takes Delay.
type ClusterSpec struct {
	Dir         string
	Nodes       int
	Workers     int
	MaxSessions int
	Delay       time.Duration
}

// The size of the cluster bench's frames: small, for the analysis is what
// it measures.
const clusterWidth, clusterHeight = 320, 240

// ClusterRow is the measure of the cluster bench with one number of
// workers.
type ClusterRow struct {
	Workers int `json:"workers"`
	// WallSeconds is from the first session's start to the last result.
	WallSeconds float64 `json:"wall_s"`
	// PhrasesPerMinute is the phrases decided per minute of WallSeconds.
	PhrasesPerMinute float64 `json:"phrases_per_min"`
	// FramesPerSecond is every strip's frames over the time from the first
	// session's start to the last session_ended.
	FramesPerSecond float64 `json:"frames_per_s"`
	// EndToResult are the median and the worst time from a client sending
	// session_end to its receipt of the result.
	EndToResultMedianMs float64 `json:"end_to_result_median_ms"`
	EndToResultMaxMs    float64 `json:"end_to_result_max_ms"`
	// Verified is true when every phrase came back decided with every
	// frame in its video, in order.
	Verified bool   `json:"verified"`
	Problem  string `json:"problem,omitempty"`
}

// ClusterReport is what a cluster bench found.
type ClusterReport struct {
	CPUs        int          `json:"cpus"`
	CPUModel    string       `json:"cpu_model"`
	Strips      int          `json:"strips"`
	Frames      int          `json:"frames_per_strip"`
	Nodes       int          `json:"serve_nodes"`
	DelayMs     float64      `json:"analysis_delay_ms"`
	Runs        []ClusterRow `json:"runs"`
	LoadAverage [2]float64   `json:"load_average"`

	failed []string
}

// Failure is nil when every run was verified, else an error listing those
// that were not.
func (r ClusterReport) Failure() error {
	if len(r.failed) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d cluster runs failed: %v", len(r.failed), len(r.Runs), r.failed)
}

// RunCluster measures the cluster once for every number of workers of
// cfg.Workers and returns the report; runs that failed are in it (see
// ClusterReport.Failure). The error is for a bench that could not run at
// all; a *TempDirError when its temporary directory could not be made.
func RunCluster(ctx context.Context, cfg ClusterConfig) (ClusterReport, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp("", "referee-bench-cluster-*")
	if err != nil {
		return ClusterReport{}, &TempDirError{fmt.Errorf("create the temporary directory: %w", err)}
	}
	defer os.RemoveAll(dir)
	inputs, err := writeInputs(ctx, cfg.Chain, dir, []Case{{Name: "cluster", Sessions: cfg.Strips, Frames: cfg.Frames, Width: clusterWidth, Height: clusterHeight}}, 1, log)
	if err != nil {
		return ClusterReport{}, err
	}
	rep := ClusterReport{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), Strips: cfg.Strips, Frames: cfg.Frames, Nodes: cfg.Nodes, DelayMs: ms(cfg.Delay)}
	rep.LoadAverage[0] = loadAverage()
	for _, w := range cfg.Workers {
		log.Info("Running the cluster", "strips", cfg.Strips, "frames", cfg.Frames, "serve_nodes", cfg.Nodes, "workers", w)
		run, err := runCluster(ctx, cfg, inputs["cluster"], w, filepath.Join(dir, "workers-"+strconv.Itoa(w)))
		if err != nil {
			if ctx.Err() != nil {
				return ClusterReport{}, fmt.Errorf("bench interrupted with %d workers: %w", w, context.Cause(ctx))
			}
			run.Problem = err.Error()
			rep.failed = append(rep.failed, fmt.Sprintf("%d workers: %v", w, err))
		}
		log.Info("Ran the cluster", "workers", w, "wall_s", round1(run.WallSeconds), "verified", run.Verified)
		rep.Runs = append(rep.Runs, run)
	}
	rep.LoadAverage[1] = loadAverage()
	return rep, nil
}

// runCluster runs one measure: a fresh cluster with w workers, every strip
// at once.
func runCluster(ctx context.Context, cfg ClusterConfig, in input, w int, dir string) (ClusterRow, error) {
	out := ClusterRow{Workers: w}
	urls, stop, err := cfg.Chain.StartCluster(ctx, ClusterSpec{Dir: dir, Nodes: cfg.Nodes, Workers: w, MaxSessions: cfg.Strips, Delay: cfg.Delay})
	if err != nil {
		return out, err
	}
	defer stop()

	sessions := make([]result, cfg.Strips)
	var wg sync.WaitGroup
	for i := range cfg.Strips {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := cfg.Chain.Stream(ctx, Stream{Server: urls[i%len(urls)], Video: in.video, Signal: in.signal,
				SessionID: fmt.Sprintf("strip%02d", i+1)})
			sessions[i] = result{s, err}
		}()
	}
	wg.Wait()

	var first, lastEnded, lastDone time.Time
	var waits []time.Duration
	var problems []error
	for i, r := range sessions {
		if r.err != nil {
			problems = append(problems, fmt.Errorf("strip %d: %w", i+1, r.err))
			continue
		}
		s := r.s
		if err := cfg.Chain.Verify(ctx, s); err != nil {
			problems = append(problems, fmt.Errorf("strip %d: %w", i+1, err))
		}
		if first.IsZero() || s.Started.Before(first) {
			first = s.Started
		}
		lastEnded, lastDone = later(lastEnded, s.Ended), later(lastDone, s.Completed)
		waits = append(waits, s.Completed.Sub(s.EndSent))
	}
	if len(waits) > 0 {
		slices.Sort(waits)
		out.WallSeconds = lastDone.Sub(first).Seconds()
		out.PhrasesPerMinute = float64(len(waits)) / out.WallSeconds * 60
		out.FramesPerSecond = float64(len(waits)*in.frames) / lastEnded.Sub(first).Seconds()
		out.EndToResultMedianMs = ms(waits[len(waits)/2])
		out.EndToResultMaxMs = ms(waits[len(waits)-1])
	}
	out.Verified = len(problems) == 0
	return out, errors.Join(problems...)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

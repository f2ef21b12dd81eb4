package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/referee-project/referee/client"
	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/jobs/natsjobs"
	"github.com/referee-project/referee/server"
	"github.com/referee-project/referee/server/worker"
)

// clusterOptions are bench's --cluster settings.
type clusterOptions struct {
	Strips  int
	Frames  int
	Nodes   int
	Workers []int
	Delay   time.Duration
}

// clusterAnalyzer is the name of the cluster bench's slow analyzer.
const clusterAnalyzer = "bench-slow"

// clusterRun is the measure of the cluster bench with one number of
// workers.
type clusterRun struct {
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

// clusterReport is what bench --cluster prints.
type clusterReport struct {
	CPUs        int          `json:"cpus"`
	CPUModel    string       `json:"cpu_model"`
	Strips      int          `json:"strips"`
	Frames      int          `json:"frames_per_strip"`
	Nodes       int          `json:"serve_nodes"`
	DelayMs     float64      `json:"analysis_delay_ms"`
	Runs        []clusterRun `json:"runs"`
	LoadAverage [2]float64   `json:"load_average"`
}

// runClusterBench streams opts.Strips phrases of opts.Frames frames at once
// through opts.Nodes serve nodes to an embedded JetStream, once for every
// number of workers, each worker analysing one phrase at a time with an
// analyzer that takes opts.Delay, and prints throughput and the time from
// session_end to the result.
func runClusterBench(ctx context.Context, opts benchOptions) error {
	co := opts.Cluster
	switch {
	case co.Strips < 1 || co.Strips > 200:
		return usageErrorf("--strips %d: want 1 to 200", co.Strips)
	case co.Frames < 1 || co.Frames > 10000:
		return usageErrorf("--cluster-frames %d: want 1 to 10000", co.Frames)
	case co.Nodes < 1 || co.Nodes > 16:
		return usageErrorf("--nodes %d: want 1 to 16", co.Nodes)
	case len(co.Workers) == 0 || slices.ContainsFunc(co.Workers, func(w int) bool { return w < 1 || w > 64 }):
		return usageErrorf("--cluster-workers %v: want numbers of workers from 1 to 64", co.Workers)
	case co.Delay < 0:
		return usageErrorf("--analysis-delay %v: want 0 or more", co.Delay)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp("", "referee-bench-cluster-*")
	if err != nil {
		return withExit(exitUsage, fmt.Errorf("create the temporary directory: %w (check $TMPDIR)", err))
	}
	defer os.RemoveAll(dir)
	inputs, err := benchInputs(ctx, dir, []benchCase{{Name: "cluster", Sessions: co.Strips, Frames: co.Frames, Width: 320, Height: 240}}, 1, log)
	if err != nil {
		return err
	}
	rep := clusterReport{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), Strips: co.Strips, Frames: co.Frames, Nodes: co.Nodes, DelayMs: ms(co.Delay)}
	rep.LoadAverage[0] = loadAverage()
	var failed []string
	for _, w := range co.Workers {
		log.Info("Running the cluster", "strips", co.Strips, "frames", co.Frames, "serve_nodes", co.Nodes, "workers", w)
		run, err := runCluster(ctx, co, inputs["cluster"], w, filepath.Join(dir, "workers-"+strconv.Itoa(w)))
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("bench interrupted with %d workers: %w", w, context.Cause(ctx))
			}
			run.Problem = err.Error()
			failed = append(failed, fmt.Sprintf("%d workers: %v", w, err))
		}
		log.Info("Ran the cluster", "workers", w, "wall_s", round1(run.WallSeconds), "verified", run.Verified)
		rep.Runs = append(rep.Runs, run)
	}
	rep.LoadAverage[1] = loadAverage()
	if opts.JSON {
		enc := json.NewEncoder(opts.Out)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = writeClusterTable(opts.Out, rep)
	}
	if err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	if len(failed) > 0 {
		return withExit(exitFailure, fmt.Errorf("%d of %d cluster runs failed: %v", len(failed), len(rep.Runs), failed))
	}
	return nil
}

// runCluster runs one measure: a fresh JetStream, the serve nodes, w
// workers, every strip at once.
func runCluster(ctx context.Context, co clusterOptions, in benchInput, w int, dir string) (clusterRun, error) {
	out := clusterRun{Workers: w}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: filepath.Join(dir, "jetstream"), NoLog: true, NoSigs: true})
	if err != nil {
		return out, fmt.Errorf("embedded NATS server: %w", err)
	}
	go ns.Start()
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	if !ns.ReadyForConnections(10 * time.Second) {
		return out, errors.New("the embedded NATS server did not start within 10 s")
	}
	nopts := natsjobs.Options{URL: ns.ClientURL(), PollInterval: 250 * time.Millisecond}
	analyzers := map[string]pipeline.Analyzer{clusterAnalyzer: sleepAnalyzer{co.Delay}}

	var conns []*natsjobs.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	open := func(name string) (*natsjobs.Conn, error) {
		o := nopts
		o.Name = name
		c, err := natsjobs.Open(o)
		if err == nil {
			conns = append(conns, c)
		}
		return c, err
	}
	wctx, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopWorkers()
		wg.Wait()
	}()
	for i := range w {
		c, err := open(fmt.Sprintf("worker-%d", i+1))
		if err != nil {
			return out, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker.Run(wctx, worker.Config{Source: c, DataDir: filepath.Join(dir, fmt.Sprintf("worker-%d", i+1)), Workers: 1, Analyzers: analyzers})
		}()
	}
	var urls []string
	for i := range co.Nodes {
		c, err := open(fmt.Sprintf("serve-%d", i+1))
		if err != nil {
			return out, err
		}
		srv, err := server.New(server.Config{Host: "127.0.0.1", DataDir: filepath.Join(dir, fmt.Sprintf("serve-%d", i+1)),
			MaxSessions: co.Strips, Analyzer: clusterAnalyzer, Analyzers: analyzers, Jobs: c})
		if err == nil {
			err = srv.Start(ctx)
		}
		if err != nil {
			return out, fmt.Errorf("serve node %d: %w", i+1, err)
		}
		defer srv.Close()
		urls = append(urls, "http://"+srv.Addr())
	}

	sessions := make([]benchSession, co.Strips)
	var swg sync.WaitGroup
	for i := range co.Strips {
		swg.Add(1)
		go func() {
			defer swg.Done()
			clock := newClientClock()
			res, err := client.Run(ctx, client.Options{Server: urls[i%len(urls)], Video: in.video, Signal: in.signal,
				SessionID: fmt.Sprintf("strip%02d", i+1), Timeout: 30 * time.Second, Logger: slog.New(clock)})
			sessions[i] = benchSession{res: res, clock: clock, err: err}
		}()
	}
	swg.Wait()

	var first, lastEnded, lastDone time.Time
	var waits []time.Duration
	var problems []error
	for i, s := range sessions {
		if s.err != nil {
			problems = append(problems, fmt.Errorf("strip %d: %w", i+1, s.err))
			continue
		}
		if err := verifyBenchSession(ctx, s.res); err != nil {
			problems = append(problems, fmt.Errorf("strip %d: %w", i+1, err))
		}
		started, ended, sent, done := s.clock.at(markStarted), s.clock.at(markEnded), s.clock.at(markEndSent), s.clock.at(markComplete)
		if first.IsZero() || started.Before(first) {
			first = started
		}
		lastEnded, lastDone = later(lastEnded, ended), later(lastDone, done)
		waits = append(waits, done.Sub(sent))
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

// sleepAnalyzer stands for a slow analysis (a pose model on a GPU box)
// without taking CPU, so that the bench shows how the analysis scales
// with workers whatever the cores of the machine it runs on.
type sleepAnalyzer struct{ delay time.Duration }

// Analyze implements pipeline.Analyzer: the lights' verdict, after delay.
func (a sleepAnalyzer) Analyze(ctx context.Context, in pipeline.AnalysisInput, _ func(float64, string)) (pipeline.Verdict, error) {
	select {
	case <-ctx.Done():
		return pipeline.Verdict{}, ctx.Err()
	case <-time.After(a.delay):
	}
	v := in.Phrase.SignalVerdict()
	return pipeline.Verdict{Winner: v.Winner, Reason: v.Reason}, nil
}

// writeClusterTable prints the cluster report as a table.
func writeClusterTable(w io.Writer, rep clusterReport) error {
	fmt.Fprintf(w, "Cluster: %d strips x %d frames (320x240 JPEG) at once through %d serve nodes and an embedded JetStream;\n", rep.Strips, rep.Frames, rep.Nodes)
	fmt.Fprintf(w, "each worker analyses one phrase at a time, the analysis taking %.0f ms (a sleep standing for a slow model).\n", rep.DelayMs)
	fmt.Fprintf(w, "%d CPUs (%s), load average %.2f at the start, %.2f at the end.\n\n", rep.CPUs, rep.CPUModel, rep.LoadAverage[0], rep.LoadAverage[1])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workers\twall s\tphrases/min\tframes/s\tend->result median ms\tend->result max ms\tverified\t")
	for _, r := range rep.Runs {
		fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%.0f\t%.0f\t%.0f\t%v\t\n", r.Workers, r.WallSeconds, r.PhrasesPerMinute, r.FramesPerSecond, r.EndToResultMedianMs, r.EndToResultMaxMs, r.Verified)
	}
	return tw.Flush()
}

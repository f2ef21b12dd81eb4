package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/referee-project/referee/cmd/referee/internal/bench"
	"github.com/referee-project/referee/protocol"
)

// benchOptions is the resolved configuration of "referee bench".
type benchOptions struct {
	RTT              time.Duration
	Cases            []string
	FramesScale      float64
	JSON             bool
	Keep             bool
	JPEGQuality      int
	Repeat           int
	CPUProfileClient string
	CPUProfileServer string
	// ClusterMode runs the cluster bench (--cluster) with Cluster instead.
	ClusterMode bool
	Cluster     clusterOptions

	Logger *slog.Logger
	Out    io.Writer
}

func newBenchCmd(a *app) *cobra.Command {
	opts := benchOptions{RTT: 20 * time.Millisecond, FramesScale: 1, JPEGQuality: protocol.DefaultJPEGQuality, Repeat: 1,
		Cluster: clusterOptions{Strips: 8, Frames: 50, Nodes: 2, Workers: []int{1, 2, 4}, Delay: time.Second}}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure streaming throughput, CPU, server memory and latency on this machine",
		Long: `bench measures the whole chain on this machine: it generates counter
videos (MJPG .avi) and a phrase log in a temporary directory, and for every
case streams them with the real client (in this process) to a fresh
"referee serve --analyzer signal" child process on 127.0.0.1, once with
protocol v1 and once with v2, once over plain loopback and once through a
built-in relay that delays each direction by --rtt/2 (order preserved, not
bandwidth-limited), as a real link's round trip does.

Cases (--cases picks some, comma-separated):
  640x480       1 session of 1800 frames 640x480
  1920x1080     1 session of 300 frames 1920x1080
  1280x720      1 session of 300 frames 1280x720
  10x1280x720   10 concurrent sessions of 1800 frames 1280x720

The table, one row per case, protocol and link:
  frames/s, Mbps    frames (JPEG bytes) delivered per second, from the
                    client's "session started" to its receipt of
                    session_ended (the server holds and has counted every
                    frame); over all sessions of a case
  client CPU s      this process's user+system CPU seconds during the run,
                    the relay's included
  server CPU s      the server process's user+system CPU seconds (rusage at
                    its exit)
  server RSS MB     the server process's peak resident memory (VmHWM)
  end->done ms      from the client sending session_end to its receipt of
                    process_complete, by the client's clock (worst session)
  v2/v1             frames/s of v2 over v1 on the same case and link

Every session's rebuilt video is then read back and its frame codes
checked in order, as "referee probe-video --verify-sequence" does; a lost,
duplicated or reordered frame fails the bench with exit status 1. Missed
performance targets are reported, not failed.

Other work on the machine takes CPU from both ends: run it on a quiet
machine, and with --repeat 3 for figures that hold; the load average at the
start and the end is printed with the table.

With --cluster, bench measures the cluster instead (serve --nats and
worker): in this process, an embedded NATS JetStream, --nodes serve nodes
and, in turn, each number of workers of --cluster-workers, every worker
analysing one phrase at a time with an analyzer that takes
--analysis-delay (a sleep, standing for a slow model: it shows how the
analysis scales with workers on any machine). --strips clients stream
--cluster-frames frames each at once, spread over the nodes. The table has
one row per number of workers: the wall time from the first session's
start to the last result, phrases decided per minute, frames/s streamed,
and the median and worst time from session_end to the result. Every
phrase's video is checked frame by frame as above.`,
		Example: `  # The full run (several minutes)
  referee bench

  # A quick look: a tenth of the frames, one case, a 50 ms link
  referee bench --cases 640x480 --frames-scale 0.1 --rtt 50ms

  # The cluster: 8 strips through 2 serve nodes with 1, 2 and 4 workers
  referee bench --cluster --strips 8 --nodes 2 --cluster-workers 1,2,4 --analysis-delay 1s

  # Machine-readable, with a CPU profile of the client
  referee bench --json --cpuprofile-client client.pprof > bench.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Logger = a.logger
			opts.Out = a.streams.Out
			return runBench(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opts.RTT, "rtt", opts.RTT, "round trip of the relayed link; each direction is delayed by half of it")
	f.StringSliceVar(&opts.Cases, "cases", nil, "cases to run, comma-separated: "+strings.Join(bench.CaseNames(), ", ")+" (default all)")
	f.Float64Var(&opts.FramesScale, "frames-scale", opts.FramesScale, "multiply every case's frames per session by this (e.g. 0.1 for a quick run)")
	f.BoolVar(&opts.JSON, "json", false, "print the results as JSON instead of a table")
	f.BoolVar(&opts.Keep, "keep", false, "keep the temporary directory (inputs, server data and logs) and print its path")
	f.IntVar(&opts.JPEGQuality, "jpeg-quality", opts.JPEGQuality, "JPEG quality the client encodes frames with, 1 to 100")
	f.IntVar(&opts.Repeat, "repeat", opts.Repeat, "run the whole set this many times and report, per row, the run of median frames/s (other work on the machine makes single runs noisy)")
	f.StringVar(&opts.CPUProfileClient, "cpuprofile-client", "", "write a pprof CPU profile of this process (client and relay) to FILE; samples carry the labels case, protocol, link and phase (stream or verify)")
	f.StringVar(&opts.CPUProfileServer, "cpuprofile-server", "", "write a pprof CPU profile of each server run to FILE with the run's name before the extension")
	f.BoolVar(&opts.ClusterMode, "cluster", false, "measure serve --nats nodes and workers on an embedded JetStream instead (see above)")
	f.IntVar(&opts.Cluster.Strips, "strips", opts.Cluster.Strips, "with --cluster: strips streaming a phrase at once")
	f.IntVar(&opts.Cluster.Frames, "cluster-frames", opts.Cluster.Frames, "with --cluster: frames of each strip's phrase")
	f.IntVar(&opts.Cluster.Nodes, "nodes", opts.Cluster.Nodes, "with --cluster: serve nodes the strips are spread over")
	f.IntSliceVar(&opts.Cluster.Workers, "cluster-workers", opts.Cluster.Workers, "with --cluster: the numbers of workers to measure with, in turn")
	f.DurationVar(&opts.Cluster.Delay, "analysis-delay", opts.Cluster.Delay, "with --cluster: how long each phrase's analysis takes")
	return cmd
}

// clusterOptions are bench's --cluster settings.
type clusterOptions struct {
	Strips  int
	Frames  int
	Nodes   int
	Workers []int
	Delay   time.Duration
}

// runBench checks the options, runs the bench (package bench does the
// measuring, with the real client and server of benchChain) and prints its
// report. A run that fails or loses frames fails the bench (exit 1) after
// the report is printed.
func runBench(ctx context.Context, opts benchOptions) error {
	if opts.ClusterMode {
		return runClusterBench(ctx, opts)
	}
	cases, err := opts.check()
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to start the server with: %w", err)
	}
	if opts.CPUProfileClient != "" {
		// Started before the inputs, so that a bad path fails at once.
		stop, err := startCPUProfile("cpuprofile-client", opts.CPUProfileClient)
		if err != nil {
			return err
		}
		defer stop()
	}
	rep, err := bench.Run(ctx, bench.Config{
		Exe:              exe,
		Chain:            benchChain{},
		Cases:            cases,
		RTT:              opts.RTT,
		FramesScale:      opts.FramesScale,
		JPEGQuality:      opts.JPEGQuality,
		Repeat:           opts.Repeat,
		Keep:             opts.Keep,
		CPUProfileServer: opts.CPUProfileServer,
		Logger:           opts.Logger,
	})
	if err != nil {
		return benchError(err)
	}
	return printReport(opts, rep, bench.WriteTable)
}

// runClusterBench checks the --cluster options, runs the cluster bench and
// prints its report.
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
	rep, err := bench.RunCluster(ctx, bench.ClusterConfig{Chain: benchChain{}, Strips: co.Strips, Frames: co.Frames,
		Nodes: co.Nodes, Workers: co.Workers, Delay: co.Delay, Logger: opts.Logger})
	if err != nil {
		return benchError(err)
	}
	return printReport(opts, rep, bench.WriteClusterTable)
}

// printReport writes rep to opts.Out, as JSON with --json, else as the
// table table writes; the error is the report's failure, exit status 1.
func printReport[R interface{ Failure() error }](opts benchOptions, rep R, table func(io.Writer, R) error) error {
	var err error
	if opts.JSON {
		err = writeJSON(opts.Out, rep)
	} else {
		err = table(opts.Out, rep)
	}
	if err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	return withExit(exitFailure, rep.Failure())
}

// benchError gives a bench that could not create its temporary directory
// exit status 2, with what to check.
func benchError(err error) error {
	var te *bench.TempDirError
	if errors.As(err, &te) {
		return withExit(exitUsage, fmt.Errorf("%w (check $TMPDIR)", err))
	}
	return err
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// check validates the options and returns the selected cases.
func (o *benchOptions) check() ([]bench.Case, error) {
	switch {
	case o.RTT < 0:
		return nil, usageErrorf("--rtt %v: want 0 or more", o.RTT)
	case !(o.FramesScale > 0 && o.FramesScale <= 10):
		return nil, usageErrorf("--frames-scale %v: want more than 0 and at most 10", o.FramesScale)
	case o.JPEGQuality < 1 || o.JPEGQuality > 100:
		return nil, usageErrorf("--jpeg-quality %d: want 1 to 100", o.JPEGQuality)
	case o.Repeat < 1 || o.Repeat > 100:
		return nil, usageErrorf("--repeat %d: want 1 to 100", o.Repeat)
	}
	all := bench.Cases()
	if len(o.Cases) == 0 {
		return all, nil
	}
	var cases []bench.Case
	for _, name := range o.Cases {
		i := slices.IndexFunc(all, func(c bench.Case) bool { return c.Name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, usageErrorf("--cases: unknown case %q; the cases are %s", name, strings.Join(bench.CaseNames(), ", "))
		}
		if !slices.ContainsFunc(cases, func(c bench.Case) bool { return c.Name == all[i].Name }) {
			cases = append(cases, all[i])
		}
	}
	return cases, nil
}

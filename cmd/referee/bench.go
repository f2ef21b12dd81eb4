package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/referee-project/referee/client"
	"github.com/referee-project/referee/client/netem"
	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio"
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

// Links a bench run goes over.
const (
	linkLoopback = "loopback"
	linkRelay    = "relay"
)

// benchCase is one workload: Sessions concurrent sessions, each streaming a
// counter video of Frames frames of Width x Height.
type benchCase struct {
	Name          string
	Sessions      int
	Frames        int
	Width, Height int
}

// benchCases are the workloads of issue 5, in the order they run. The
// 300-frame 1280x720 case is the one the session_end to process_complete
// target is stated for.
func benchCases() []benchCase {
	return []benchCase{
		{Name: "640x480", Sessions: 1, Frames: 1800, Width: 640, Height: 480},
		{Name: "1920x1080", Sessions: 1, Frames: 300, Width: 1920, Height: 1080},
		{Name: "1280x720", Sessions: 1, Frames: 300, Width: 1280, Height: 720},
		{Name: "10x1280x720", Sessions: 10, Frames: 1800, Width: 1280, Height: 720},
	}
}

func benchCaseNames() []string {
	var names []string
	for _, c := range benchCases() {
		names = append(names, c.Name)
	}
	return names
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
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("bench takes no arguments, got %q (see %s --help)", args, cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Logger = a.logger
			opts.Out = a.streams.Out
			return runBench(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opts.RTT, "rtt", opts.RTT, "round trip of the relayed link; each direction is delayed by half of it")
	f.StringSliceVar(&opts.Cases, "cases", nil, "cases to run, comma-separated: "+strings.Join(benchCaseNames(), ", ")+" (default all)")
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

// benchRun is the measure of one case over one link with one protocol.
type benchRun struct {
	Case     string  `json:"case"`
	Protocol string  `json:"protocol"`
	Link     string  `json:"link"`
	RTTms    float64 `json:"rtt_ms"`
	Sessions int     `json:"sessions"`
	Width    int     `json:"width"`
	Height   int     `json:"height"`
	// Frames is the total over the sessions, FrameBytes their JPEG bytes.
	Frames     int   `json:"frames"`
	FrameBytes int64 `json:"frame_bytes"`
	// StreamSeconds runs from the first session's "session started" to
	// the last session_ended, by the client's clock.
	StreamSeconds float64 `json:"stream_seconds"`
	FPS           float64 `json:"frames_per_second"`
	Mbps          float64 `json:"mbps"`
	// ClientSendFPS is the client's own rate, from its first frame handed
	// to the connection to its last, summed over sessions.
	ClientSendFPS   float64 `json:"client_send_fps"`
	ClientCPUSecs   float64 `json:"client_cpu_seconds"`
	ServerCPUSecs   float64 `json:"server_cpu_seconds"`
	ServerPeakRSSMB float64 `json:"server_peak_rss_mb"`
	// ServerPeakAnonMB is the largest sampled RssAnon: the heap and stacks,
	// without the shared libraries (OpenCV's alone are some 70 MB of the
	// RSS of an idle server). ServerIdleRSSMB is the RSS before the first
	// session.
	ServerPeakAnonMB float64 `json:"server_peak_anon_mb"`
	ServerIdleRSSMB  float64 `json:"server_idle_rss_mb"`
	// ServerRSSQuartersMB is the largest server RSS sampled in each quarter
	// of the stream: flat figures mean memory does not grow with frames.
	ServerRSSQuartersMB [4]float64 `json:"server_rss_quarters_mb"`
	// EndToCompleteMs is the worst session's time from sending
	// session_end to receiving process_complete, by the client's clock;
	// PipelineMs is the worst result's wall_time_seconds (the server's
	// reconstruction and analysis alone).
	EndToCompleteMs float64 `json:"session_end_to_process_complete_ms"`
	PipelineMs      float64 `json:"pipeline_wall_time_ms"`
	// V2OverV1 is, on v2 rows, FPS over the v1 row's of the same case and
	// link; 0 elsewhere.
	V2OverV1 float64 `json:"v2_over_v1,omitempty"`
	// Repeats is how many times the row was run; FPSAll their frames/s,
	// in the order run. The row's other figures are the median run's.
	Repeats int       `json:"repeats"`
	FPSAll  []float64 `json:"frames_per_second_all"`
	// Verified says every session's rebuilt video decoded to 0..N-1 in
	// order with N the frames sent; Problem says what was wrong if not.
	Verified bool   `json:"verified"`
	Problem  string `json:"problem,omitempty"`
}

// benchTarget is one of issue 5's targets and how this run did.
type benchTarget struct {
	Target   string  `json:"target"`
	Measured string  `json:"measured"`
	Value    float64 `json:"value"`
	Met      bool    `json:"met"`
}

// benchReport is what bench prints.
type benchReport struct {
	CPUs        int           `json:"cpus"`
	CPUModel    string        `json:"cpu_model"`
	RTTms       float64       `json:"rtt_ms"`
	FramesScale float64       `json:"frames_scale"`
	JPEGQuality int           `json:"jpeg_quality"`
	Runs        []benchRun    `json:"runs"`
	Repeat      int           `json:"repeat"`
	Targets     []benchTarget `json:"targets"`
	// LoadAverage is /proc/loadavg's 1-minute figure at the start and the
	// end: other work on the machine takes CPU from the figures.
	LoadAverage [2]float64 `json:"load_average"`
	TempDir     string     `json:"temp_dir,omitempty"`
}

// runBench generates the inputs, runs every selected case with both
// protocols over both links, verifies every rebuilt video and prints the
// report. A run that fails or loses frames fails the bench (exit 1) after
// the report is printed; the temporary directory is then kept.
func runBench(ctx context.Context, opts benchOptions) error {
	if opts.ClusterMode {
		return runClusterBench(ctx, opts)
	}
	cases, err := opts.check()
	if err != nil {
		return err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to start the server with: %w", err)
	}
	dir, err := os.MkdirTemp("", "referee-bench-*")
	if err != nil {
		return withExit(exitUsage, fmt.Errorf("create the temporary directory: %w (check $TMPDIR)", err))
	}
	keep := opts.Keep
	defer func() {
		if keep {
			log.Info("Kept the temporary directory", "dir", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()

	if opts.CPUProfileClient != "" {
		// Started before the inputs, so that a bad path fails at once.
		stop, err := startCPUProfile("cpuprofile-client", opts.CPUProfileClient)
		if err != nil {
			return err
		}
		defer stop()
	}
	inputs, err := benchInputs(ctx, dir, cases, opts.FramesScale, log)
	if err != nil {
		return err
	}

	rep := benchReport{
		CPUs:        runtime.NumCPU(),
		CPUModel:    cpuModel(),
		RTTms:       ms(opts.RTT),
		FramesScale: opts.FramesScale,
		JPEGQuality: opts.JPEGQuality,
		Repeat:      opts.Repeat,
	}
	rep.LoadAverage[0] = loadAverage()
	var failed []string
	// Repeats go over the whole set in turn rather than one row at a time,
	// so that a burst of other work on the machine hits one run of several
	// rows, not every run of one row.
	tries := map[string][]benchRun{}
	var order []string
	for i := range opts.Repeat {
		for _, c := range cases {
			for _, link := range []string{linkLoopback, linkRelay} {
				for _, proto := range []string{protocol.V1, protocol.V2} {
					b := benchRunner{opts: opts, exe: exe, c: c, link: link, proto: proto, input: inputs[c.Name]}
					b.dir = filepath.Join(dir, "runs", fmt.Sprintf("%s-%d", b.name(), i+1))
					log.Info("Running "+b.name(), "repeat", i+1, "sessions", c.Sessions, "frames_per_session", inputs[c.Name].frames)
					run, err := b.run(ctx)
					if err != nil {
						if ctx.Err() != nil {
							keep = true
							return fmt.Errorf("bench interrupted during %s: %w", b.name(), context.Cause(ctx))
						}
						run.Problem = err.Error()
					}
					log.Info("Ran "+b.name(), "repeat", i+1, "frames", run.Frames, "frames_per_s", round1(run.FPS), "verified", run.Verified)
					if !run.Verified {
						failed = append(failed, fmt.Sprintf("%s (repeat %d): %s", b.name(), i+1, run.Problem))
						keep = true
					} else if !opts.Keep {
						os.RemoveAll(b.dir)
					}
					if i == 0 {
						order = append(order, b.name())
					}
					tries[b.name()] = append(tries[b.name()], run)
				}
			}
		}
	}
	for _, name := range order {
		rep.Runs = append(rep.Runs, medianRun(tries[name]))
	}
	rep.LoadAverage[1] = loadAverage()
	setRatios(rep.Runs)
	rep.Targets = benchTargets(rep.Runs, opts.RTT)
	if keep {
		rep.TempDir = dir
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("write the report: %w", err)
		}
	} else if err := writeBenchTable(opts.Out, rep); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	if len(failed) > 0 {
		return withExit(exitFailure, fmt.Errorf("%d of %d runs failed: %s (logs and data kept in %s)",
			len(failed), len(rep.Runs), strings.Join(failed, "; "), dir))
	}
	return nil
}

// check validates the options and returns the selected cases.
func (o *benchOptions) check() ([]benchCase, error) {
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
	all := benchCases()
	if len(o.Cases) == 0 {
		return all, nil
	}
	var cases []benchCase
	for _, name := range o.Cases {
		i := slices.IndexFunc(all, func(c benchCase) bool { return c.Name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, usageErrorf("--cases: unknown case %q; the cases are %s", name, strings.Join(benchCaseNames(), ", "))
		}
		if !slices.ContainsFunc(cases, func(c benchCase) bool { return c.Name == all[i].Name }) {
			cases = append(cases, all[i])
		}
	}
	return cases, nil
}

// benchInput is a case's video and phrase log.
type benchInput struct {
	video, signal string
	frames        int
}

// benchInputs writes a counter video per case (cases of the same size and
// length share one) and a phrase log matching its length.
func benchInputs(ctx context.Context, dir string, cases []benchCase, scale float64, log *slog.Logger) (map[string]benchInput, error) {
	inputs := map[string]benchInput{}
	made := map[string]benchInput{}
	for _, c := range cases {
		frames := max(1, int(math.Round(float64(c.Frames)*scale)))
		key := fmt.Sprintf("counter_%dx%d_%d", c.Width, c.Height, frames)
		in, ok := made[key]
		if !ok {
			in = benchInput{
				video:  filepath.Join(dir, key+".avi"),
				signal: filepath.Join(dir, key+".txt"),
				frames: frames,
			}
			start := time.Now()
			if err := writeCounterVideo(ctx, in.video, frames, c.Width, c.Height); err != nil {
				return nil, err
			}
			log.Info("Generated "+filepath.Base(in.video), "seconds", round1(time.Since(start).Seconds()))
			spec := plainPhraseLog(float64(frames) / benchFPS)
			if err := os.WriteFile(in.signal, signal.Render(spec), 0o644); err != nil {
				return nil, withExit(exitUsage, fmt.Errorf("write the phrase log %s: %w", in.signal, err))
			}
			made[key] = in
		}
		inputs[c.Name] = in
	}
	return inputs, nil
}

// benchFPS is the frame rate of the generated videos: a camera's.
const benchFPS = 30

func writeCounterVideo(ctx context.Context, path string, frames, w, h int) error {
	vw, err := videoio.Create(path, "", benchFPS, w, h)
	if err != nil {
		return withExit(exitUsage, fmt.Errorf("create the input video: %w", err))
	}
	img := bgr.New(w, h)
	for i := range frames {
		if err := ctx.Err(); err != nil {
			vw.Close()
			return fmt.Errorf("bench interrupted while generating %s: %w", filepath.Base(path), context.Cause(ctx))
		}
		synth.DrawCounter(img, i)
		if err := vw.Write(img); err != nil {
			vw.Close()
			return fmt.Errorf("write frame %d of the input video %s: %w", i, path, err)
		}
	}
	if err := vw.Close(); err != nil {
		return fmt.Errorf("finish the input video %s: %w", path, err)
	}
	return nil
}

// benchRunner runs one case over one link with one protocol against a
// fresh server.
type benchRunner struct {
	opts  benchOptions
	exe   string
	c     benchCase
	link  string
	proto string
	input benchInput
	dir   string
}

func (b *benchRunner) name() string { return b.c.Name + "-" + b.link + "-" + b.proto }

// benchSession is what one client session brought back.
type benchSession struct {
	res   *client.Result
	clock *clientClock
	err   error
}

// run measures the run. The returned benchRun carries whatever was
// measured even when err is set.
func (b *benchRunner) run(ctx context.Context) (benchRun, error) {
	out := benchRun{
		Case: b.c.Name, Protocol: b.proto, Link: b.link, Sessions: b.c.Sessions,
		Width: b.c.Width, Height: b.c.Height,
	}
	if b.link == linkRelay {
		out.RTTms = ms(b.opts.RTT)
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return out, fmt.Errorf("create %s: %w", b.dir, err)
	}
	srv, err := startBenchServer(ctx, b.exe, b.dir, b.c.Sessions, b.serverProfile())
	if err != nil {
		return out, err
	}
	defer srv.kill()
	addr := srv.addr
	if b.link == linkRelay {
		relay, err := netem.Listen(netem.Config{Target: srv.addr, Delay: b.opts.RTT / 2})
		if err != nil {
			return out, fmt.Errorf("start the relay: %w", err)
		}
		defer relay.Close()
		addr = relay.Addr()
	}
	sampler := startRSSSampler(srv.pid())
	if st, err := procStatusMB(srv.pid()); err == nil {
		out.ServerIdleRSSMB = st["VmRSS"]
	}
	cpu0 := selfCPU()
	sessions := make([]benchSession, b.c.Sessions)
	labels := pprof.Labels("case", b.c.Name, "protocol", b.proto, "link", b.link, "phase", "stream")
	pprof.Do(ctx, labels, func(ctx context.Context) {
		var wg sync.WaitGroup
		for i := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sessions[i] = b.session(ctx, addr, i)
			}()
		}
		wg.Wait()
	})
	out.ClientCPUSecs = selfCPU() - cpu0
	samples := sampler.stop()
	for _, s := range samples {
		out.ServerPeakRSSMB = max(out.ServerPeakRSSMB, s.rss)
		out.ServerPeakAnonMB = max(out.ServerPeakAnonMB, s.anon)
	}
	if st, err := procStatusMB(srv.pid()); err == nil {
		// VmHWM is the kernel's own peak, between the samples too.
		out.ServerPeakRSSMB = max(out.ServerPeakRSSMB, st["VmHWM"])
	}
	cpu, stopErr := srv.stop()
	out.ServerCPUSecs = cpu
	var errs []error
	for i, s := range sessions {
		if s.err != nil {
			errs = append(errs, fmt.Errorf("session %d: %w", i, s.err))
		}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("%w (server log: %s)", errors.Join(errs...), srv.logPath)
	}
	if stopErr != nil {
		return out, fmt.Errorf("%w (server log: %s)", stopErr, srv.logPath)
	}
	if err := b.measure(&out, sessions, samples); err != nil {
		return out, err
	}
	return out, b.verify(ctx, &out, sessions)
}

// serverProfile is where this run's server writes its CPU profile, or "".
func (b *benchRunner) serverProfile() string {
	p := b.opts.CPUProfileServer
	if p == "" {
		return ""
	}
	ext := filepath.Ext(p)
	return strings.TrimSuffix(p, ext) + "." + b.name() + ext
}

// session streams one session and times it by the client's log lines.
func (b *benchRunner) session(ctx context.Context, addr string, i int) benchSession {
	clock := newClientClock()
	res, err := client.Run(ctx, client.Options{
		Server:      "http://" + addr,
		Video:       b.input.video,
		Signal:      b.input.signal,
		SessionID:   fmt.Sprintf("bench_%s_%s_%s_%02d", b.c.Name, b.link, b.proto, i),
		Encoding:    protocol.EncodingJPEG,
		JPEGQuality: b.opts.JPEGQuality,
		Protocol:    b.proto,
		Timeout:     30 * time.Second,
		Logger:      slog.New(clock),
	})
	return benchSession{res: res, clock: clock, err: err}
}

// measure fills the throughput and latency figures from the sessions.
func (b *benchRunner) measure(out *benchRun, sessions []benchSession, samples []rssSample) error {
	var first, last time.Time
	for _, s := range sessions {
		for _, m := range []string{markStarted, markEndSent, markEnded, markComplete} {
			if s.clock.at(m).IsZero() {
				return fmt.Errorf("the client did not log %q, which bench times sessions by (has the client's logging changed?)", m)
			}
		}
		out.Frames += s.res.Frames
		out.FrameBytes += s.res.FrameBytes
		out.ClientSendFPS += fpsOf(s.res)
		started, ended := s.clock.at(markStarted), s.clock.at(markEnded)
		if first.IsZero() || started.Before(first) {
			first = started
		}
		if ended.After(last) {
			last = ended
		}
		out.EndToCompleteMs = max(out.EndToCompleteMs, ms(s.clock.at(markComplete).Sub(s.clock.at(markEndSent))))
		var r struct {
			WallTimeSeconds float64 `json:"wall_time_seconds"`
		}
		if json.Unmarshal(s.res.Raw, &r) == nil {
			out.PipelineMs = max(out.PipelineMs, r.WallTimeSeconds*1000)
		}
	}
	if !last.After(first) {
		return fmt.Errorf("the sessions took no time by the client's clock (started %v, ended %v)", first, last)
	}
	out.StreamSeconds = last.Sub(first).Seconds()
	out.FPS = float64(out.Frames) / out.StreamSeconds
	out.Mbps = float64(out.FrameBytes) * 8 / out.StreamSeconds / 1e6
	quarter := last.Sub(first) / 4
	for _, s := range samples {
		if s.at.Before(first) || s.at.After(last) {
			continue
		}
		q := min(3, int(s.at.Sub(first)/max(quarter, 1)))
		out.ServerRSSQuartersMB[q] = max(out.ServerRSSQuartersMB[q], s.rss)
	}
	return nil
}

// verify reads back every session's rebuilt video and checks its frame
// codes are 0..N-1 in order, N the frames sent. Videos are read two at a
// time; this is not part of any figure.
func (b *benchRunner) verify(ctx context.Context, out *benchRun, sessions []benchSession) error {
	problems := make([]error, len(sessions))
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	pprof.Do(ctx, pprof.Labels("case", b.c.Name, "protocol", b.proto, "link", b.link, "phase", "verify"), func(ctx context.Context) {
		for i, s := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				if err := verifyBenchSession(ctx, s.res); err != nil {
					problems[i] = fmt.Errorf("session %d: %w", i, err)
				}
			}()
		}
		wg.Wait()
	})
	if err := errors.Join(problems...); err != nil {
		return err
	}
	out.Verified = true
	return nil
}

// verifyBenchSession checks one session's rebuilt video as
// "probe-video --verify-sequence" does, and that it holds every frame sent.
func verifyBenchSession(ctx context.Context, res *client.Result) error {
	var r struct {
		Artifacts struct {
			Video string `json:"video"`
		} `json:"artifacts"`
	}
	if err := json.Unmarshal(res.Raw, &r); err != nil || r.Artifacts.Video == "" {
		return fmt.Errorf("the result names no video (artifacts.video): %s", res.Raw)
	}
	rep, err := probeVideo(ctx, probeVideoOptions{Path: r.Artifacts.Video, VerifySequence: true})
	if err != nil {
		return fmt.Errorf("read the rebuilt video: %w", err)
	}
	seq := *rep.SequenceReport
	if !seq.SequenceOK || seq.Frames != res.Frames {
		return fmt.Errorf("%s: %d frames sent, %d in the video, sequence ok %v, missing %s, duplicated %s, out of order %s, undecodable %s",
			r.Artifacts.Video, res.Frames, seq.Frames, seq.SequenceOK, intList(seq.Missing, 10), intList(seq.Duplicated, 10),
			intList(seq.OutOfOrder, 10), intList(seq.Undecodable, 10))
	}
	return nil
}

// Client log lines a session is timed by: the client reports no
// timestamps of its own, and its log records carry the time they were
// made.
const (
	markStarted  = "Session started successfully"
	markEndSent  = "Sent session end"
	markEnded    = "Session ended successfully"
	markComplete = "Processing complete!"
)

// clientClock is a slog.Handler that keeps the time of the marks.
type clientClock struct {
	mu    sync.Mutex
	times map[string]time.Time
}

func newClientClock() *clientClock { return &clientClock{times: map[string]time.Time{}} }

func (c *clientClock) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (c *clientClock) Handle(_ context.Context, r slog.Record) error {
	for _, m := range []string{markStarted, markEndSent, markEnded, markComplete} {
		if strings.HasPrefix(r.Message, m) {
			c.mu.Lock()
			c.times[m] = r.Time
			c.mu.Unlock()
		}
	}
	return nil
}

func (c *clientClock) WithAttrs([]slog.Attr) slog.Handler { return c }

func (c *clientClock) WithGroup(string) slog.Handler { return c }

// at is when mark was logged; zero if it was not.
func (c *clientClock) at(mark string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.times[mark]
}

// benchServer is a "referee serve" child process.
type benchServer struct {
	cmd     *exec.Cmd
	addr    string
	logPath string
	logDone chan struct{}
	stopped bool
}

// serverStartTimeout bounds the wait for the server's "listening" line.
const serverStartTimeout = 20 * time.Second

// startBenchServer starts exe serve on a free loopback port with its data
// in dir/data, its log in dir/server.log, and returns once it listens.
func startBenchServer(ctx context.Context, exe, dir string, sessions int, profile string) (*benchServer, error) {
	args := []string{"serve", "--host", "127.0.0.1", "--port", "0",
		"--data-dir", filepath.Join(dir, "data"), "--output-dir", filepath.Join(dir, "data", "sessions"),
		"--analyzer", "signal", "--log-level", "info",
		"--max-streaming-sessions", strconv.Itoa(max(sessions, 1))}
	if profile != "" {
		args = append(args, "--cpuprofile", profile)
	}
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create the server log: %w", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout = logFile
	// A bench killed outright must not leave its server behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start the server: %w", err)
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start the server %s: %w", exe, err)
	}
	s := &benchServer{cmd: cmd, logPath: logPath, logDone: make(chan struct{})}
	listening := make(chan string, 1)
	go func() {
		defer close(s.logDone)
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if addr := listeningAddr(line); addr != "" {
				select {
				case listening <- addr:
				default:
				}
			}
		}
		// The pipe must be drained until the process exits, else it
		// blocks on a full pipe; the scanner stops at EOF or on a line
		// too long, after which the rest is copied as is.
		io.Copy(logFile, stderr)
	}()
	timer := time.NewTimer(serverStartTimeout)
	defer timer.Stop()
	select {
	case s.addr = <-listening:
		return s, nil
	case <-s.logDone:
		s.kill()
		return nil, fmt.Errorf("the server exited before listening (see %s)", logPath)
	case <-timer.C:
		s.kill()
		return nil, fmt.Errorf("the server did not log \"listening\" within %v (see %s)", serverStartTimeout, logPath)
	case <-ctx.Done():
		s.kill()
		return nil, context.Cause(ctx)
	}
}

// listeningAddr is the address of a server's "msg=listening addr=..." log
// line, or "".
func listeningAddr(line string) string {
	_, rest, ok := strings.Cut(line, " msg=listening ")
	if !ok {
		return ""
	}
	_, rest, ok = strings.Cut(rest, "addr=")
	if !ok {
		return ""
	}
	addr, _, _ := strings.Cut(rest, " ")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return ""
	}
	return addr
}

func (s *benchServer) pid() int { return s.cmd.Process.Pid }

// stopTimeout bounds a server's graceful shutdown after SIGTERM.
const stopTimeout = 30 * time.Second

// stop ends the server with SIGTERM, as an operator would, and returns the
// CPU seconds it used in all.
func (s *benchServer) stop() (float64, error) {
	s.stopped = true
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("stop the server: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	var err error
	select {
	case err = <-done:
	case <-timer.C:
		s.cmd.Process.Kill()
		<-done
		return 0, fmt.Errorf("the server did not stop within %v of SIGTERM", stopTimeout)
	}
	<-s.logDone
	cpu := 0.0
	if ru, ok := s.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu = tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
	}
	if err != nil {
		return cpu, fmt.Errorf("the server exited with %v after SIGTERM", err)
	}
	return cpu, nil
}

// kill ends a server that was not stopped, when a run is abandoned.
func (s *benchServer) kill() {
	if s.stopped {
		return
	}
	s.stopped = true
	s.cmd.Process.Kill()
	s.cmd.Wait()
	<-s.logDone
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// selfCPU is this process's user and system CPU seconds so far (0 where
// getrusage fails, which it does not on Linux).
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
}

// rssSample is a process's resident memory at a time, in MB: all of it,
// and its anonymous part.
type rssSample struct {
	at        time.Time
	rss, anon float64
}

// rssSampleEvery is how often the server's RSS is sampled.
const rssSampleEvery = 100 * time.Millisecond

// rssSampler reads a process's VmRSS every rssSampleEvery until stopped.
type rssSampler struct {
	stopc   chan struct{}
	done    chan struct{}
	samples []rssSample
}

func startRSSSampler(pid int) *rssSampler {
	r := &rssSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		t := time.NewTicker(rssSampleEvery)
		defer t.Stop()
		for {
			if st, err := procStatusMB(pid); err == nil {
				r.samples = append(r.samples, rssSample{at: time.Now(), rss: st["VmRSS"], anon: st["RssAnon"]})
			}
			select {
			case <-t.C:
			case <-r.stopc:
				return
			}
		}
	}()
	return r
}

// stop ends the sampling and returns the samples.
func (r *rssSampler) stop() []rssSample {
	close(r.stopc)
	<-r.done
	return r.samples
}

// procStatusMB reads the kB fields of /proc/PID/status (VmRSS, VmHWM,
// RssAnon, ...), in MB.
func procStatusMB(pid int) (map[string]float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	fields := map[string]float64{}
	for line := range strings.Lines(string(data)) {
		k, v, ok := strings.Cut(line, ":")
		v, kB := strings.CutSuffix(strings.TrimSpace(v), " kB")
		if !ok || !kB {
			continue
		}
		if n, err := strconv.ParseFloat(v, 64); err == nil {
			fields[k] = n / 1024
		}
	}
	if _, ok := fields["VmRSS"]; !ok {
		return nil, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
	}
	return fields, nil
}

// medianRun is the run of median frames/s among runs, with Repeats and
// FPSAll set; a failed run, if any, is returned instead, so that the
// failure shows.
func medianRun(runs []benchRun) benchRun {
	all := make([]float64, len(runs))
	for i, r := range runs {
		all[i] = r.FPS
	}
	var pick benchRun
	if i := slices.IndexFunc(runs, func(r benchRun) bool { return !r.Verified }); i >= 0 {
		pick = runs[i]
	} else {
		sorted := slices.Clone(runs)
		slices.SortFunc(sorted, func(a, b benchRun) int { return cmp.Compare(a.FPS, b.FPS) })
		pick = sorted[(len(sorted)-1)/2]
	}
	pick.Repeats, pick.FPSAll = len(runs), all
	return pick
}

// setRatios puts on each v2 run its frames/s over the v1 run's of the same
// case and link.
func setRatios(runs []benchRun) {
	for i, r := range runs {
		if r.Protocol != protocol.V2 {
			continue
		}
		if v1 := findRun(runs, r.Case, protocol.V1, r.Link); v1 != nil && v1.FPS > 0 {
			runs[i].V2OverV1 = r.FPS / v1.FPS
		}
	}
}

func findRun(runs []benchRun, name, proto, link string) *benchRun {
	for i := range runs {
		if r := &runs[i]; r.Case == name && r.Protocol == proto && r.Link == link && r.Verified {
			return r
		}
	}
	return nil
}

// benchTargets checks issue 5's targets against the runs that were made.
func benchTargets(runs []benchRun, rtt time.Duration) []benchTarget {
	var ts []benchTarget
	relayV2, relayV1 := findRun(runs, "640x480", protocol.V2, linkRelay), findRun(runs, "640x480", protocol.V1, linkRelay)
	loopV2 := findRun(runs, "640x480", protocol.V2, linkLoopback)
	if relayV2 != nil && relayV1 != nil {
		ts = append(ts, benchTarget{
			Target:   fmt.Sprintf("640x480 through the %v relay: v2 >= 10x v1 frames/s", rtt),
			Measured: fmt.Sprintf("%.0f vs %.1f frames/s: %.1fx", relayV2.FPS, relayV1.FPS, relayV2.V2OverV1),
			Value:    relayV2.V2OverV1, Met: relayV2.V2OverV1 >= 10,
		})
	}
	if relayV2 != nil && loopV2 != nil && loopV2.FPS > 0 {
		f := relayV2.FPS / loopV2.FPS
		ts = append(ts, benchTarget{
			Target:   fmt.Sprintf("640x480 v2 through the %v relay >= 80%% of its loopback frames/s", rtt),
			Measured: fmt.Sprintf("%.0f vs %.0f frames/s: %.0f%%", relayV2.FPS, loopV2.FPS, 100*f),
			Value:    f, Met: f >= 0.8,
		})
	}
	if loopV2 != nil {
		ts = append(ts, benchTarget{
			Target:   "640x480 v2 on loopback >= 400 frames/s end to end",
			Measured: fmt.Sprintf("%.0f frames/s", loopV2.FPS),
			Value:    loopV2.FPS, Met: loopV2.FPS >= 400,
		})
	}
	peak := 0.0
	found := false
	for _, r := range runs {
		if r.Case == "10x1280x720" && r.Verified {
			peak, found = max(peak, r.ServerPeakRSSMB), true
		}
	}
	if found {
		ts = append(ts, benchTarget{
			Target:   "10x1280x720: server peak RSS < 100 MB (every protocol and link)",
			Measured: fmt.Sprintf("%.0f MB at most", peak),
			Value:    peak, Met: peak < 100,
		})
	}
	if r := findRun(runs, "1280x720", protocol.V2, linkLoopback); r != nil {
		ts = append(ts, benchTarget{
			Target:   "1280x720 (300 frames) v2 on loopback: session_end to process_complete < 1 s",
			Measured: fmt.Sprintf("%.0f ms", r.EndToCompleteMs),
			Value:    r.EndToCompleteMs, Met: r.EndToCompleteMs < 1000,
		})
	}
	return ts
}

// writeBenchTable prints the report for people.
func writeBenchTable(w io.Writer, rep benchReport) error {
	fmt.Fprintf(w, "referee bench: %d CPUs (%s), relay RTT %.0f ms, frames scale %g, JPEG q%d, load average %.2f at the start, %.2f at the end\n\n",
		rep.CPUs, rep.CPUModel, rep.RTTms, rep.FramesScale, rep.JPEGQuality, rep.LoadAverage[0], rep.LoadAverage[1])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\tprotocol\tlink\tframes\tframes/s\tMbps\tclient CPU s\tserver CPU s\tserver peak RSS MB\tanon MB\tend->done ms\tv2/v1\tverified\t")
	for _, r := range rep.Runs {
		link := r.Link
		if r.Link == linkRelay {
			link = fmt.Sprintf("relay %.0fms", r.RTTms)
		}
		ratio := ""
		if r.V2OverV1 > 0 {
			ratio = fmt.Sprintf("%.1fx", r.V2OverV1)
		}
		verified := "ok"
		if !r.Verified {
			verified = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f\t%.0f\t%.0f\t%s\t%s\t\n",
			r.Case, r.Protocol, link, r.Frames, r.FPS, r.Mbps, r.ClientCPUSecs, r.ServerCPUSecs,
			r.ServerPeakRSSMB, r.ServerPeakAnonMB, r.EndToCompleteMs, ratio, verified)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rep.Repeat > 1 {
		fmt.Fprintf(w, "\nEach row is the run of median frames/s of %d; frames/s of every run:\n", rep.Repeat)
		for _, r := range rep.Runs {
			fmt.Fprintf(w, "  %s %s %s: %s\n", r.Case, r.Protocol, r.Link, floatList(r.FPSAll))
		}
	}
	fmt.Fprintln(w, "\nframes/s and Mbps: frames delivered, from the client's \"session started\" to its receipt of session_ended, all sessions together.")
	fmt.Fprintln(w, "end->done: client clock, sending session_end to receiving process_complete, worst session. Client CPU includes the relay.")
	fmt.Fprintln(w, "server peak RSS: VmHWM, shared libraries included; anon: the largest sampled RssAnon (heap, stacks).")
	if len(rep.Runs) > 0 {
		fmt.Fprintf(w, "An idle server's RSS here: %.0f MB.\n", rep.Runs[0].ServerIdleRSSMB)
	}
	for _, r := range rep.Runs {
		if r.Sessions > 1 && r.Verified {
			q := r.ServerRSSQuartersMB
			fmt.Fprintf(w, "server RSS MB by quarter of the stream, %s %s %s: %.0f %.0f %.0f %.0f\n", r.Case, r.Protocol, r.Link, q[0], q[1], q[2], q[3])
		}
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w, "\nTargets:")
		for _, t := range rep.Targets {
			status := "met"
			if !t.Met {
				status = "MISSED"
			}
			fmt.Fprintf(w, "  %-6s %s: %s\n", status, t.Target, t.Measured)
		}
	}
	for _, r := range rep.Runs {
		if r.Problem != "" {
			fmt.Fprintf(w, "\nFAILED %s %s %s: %s\n", r.Case, r.Protocol, r.Link, r.Problem)
		}
	}
	if rep.TempDir != "" {
		fmt.Fprintf(w, "\nData and server logs: %s\n", rep.TempDir)
	}
	return nil
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "unknown CPU".
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// loadAverage is the 1-minute load average, or 0 where unknown.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(data), " ")
	v, _ := strconv.ParseFloat(first, 64)
	return v
}

func floatList(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatFloat(x, 'f', 1, 64)
	}
	return strings.Join(parts, " ")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func round1(f float64) float64 { return math.Round(f*10) / 10 }

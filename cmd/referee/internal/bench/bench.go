// Package bench measures the whole streaming chain on this machine for
// "referee bench": it starts "referee serve" child processes, streams
// counter videos to them with the client, samples their CPU and memory,
// times every session from the client's own account of it, checks every
// rebuilt video and tells the figures as a report.
//
// The package imports neither package client nor server nor anything that
// needs OpenCV (of the client, only its relay, client/netem): the command
// gives it the real ones through Chain, so that it builds on any system.
// What it reads from /proc is Linux's, and reads as unknown (0) elsewhere.
package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/referee-project/referee/client/netem"
	"github.com/referee-project/referee/protocol"
)

// Links a bench run goes over.
const (
	LinkLoopback = "loopback"
	LinkRelay    = "relay"
)

// Case is one workload: Sessions concurrent sessions, each streaming a
// counter video of Frames frames of Width x Height.
type Case struct {
	Name          string
	Sessions      int
	Frames        int
	Width, Height int
}

// Cases are the workloads of issue 5, in the order they run. The
// 300-frame 1280x720 case is the one the session_end to process_complete
// target is stated for.
func Cases() []Case {
	return []Case{
		{Name: "640x480", Sessions: 1, Frames: 1800, Width: 640, Height: 480},
		{Name: "1920x1080", Sessions: 1, Frames: 300, Width: 1920, Height: 1080},
		{Name: "1280x720", Sessions: 1, Frames: 300, Width: 1280, Height: 720},
		{Name: "10x1280x720", Sessions: 10, Frames: 1800, Width: 1280, Height: 720},
	}
}

// CaseNames are the names of Cases, in their order.
func CaseNames() []string {
	var names []string
	for _, c := range Cases() {
		names = append(names, c.Name)
	}
	return names
}

// Chain is what the bench measures and checks with: the real client, the
// server and the video code, which this package leaves to its caller.
type Chain interface {
	// WriteInputs writes a counter video of frames frames of w x h to
	// video, and to signal the phrase log of a phrase as long.
	WriteInputs(ctx context.Context, video, signal string, frames, w, h int) error
	// Stream streams one session to completion.
	Stream(ctx context.Context, s Stream) (Session, error)
	// Verify checks that a session's rebuilt video holds the frames sent,
	// in order.
	Verify(ctx context.Context, s Session) error
	// StartCluster starts what RunCluster streams to and returns the base
	// URLs of its serve nodes, and stop, which ends it all.
	StartCluster(ctx context.Context, c ClusterSpec) (urls []string, stop func(), err error)
}

// Stream is one session to stream.
type Stream struct {
	// Server is the server's base URL.
	Server        string
	Video, Signal string
	SessionID     string
	// Protocol and JPEGQuality are the client's defaults when empty or 0.
	Protocol    string
	JPEGQuality int
}

// Session is what the client brought back from one session: the frames
// sent, the time from the first to the last, its milestones by the client's
// clock, and the result object of process_complete.
type Session struct {
	Frames     int
	FrameBytes int64
	StreamTime time.Duration
	Started    time.Time
	EndSent    time.Time
	Ended      time.Time
	Completed  time.Time
	Result     json.RawMessage
}

// TempDirError says the bench could not create its temporary directory:
// a local problem, not a measure that failed.
type TempDirError struct{ Err error }

func (e *TempDirError) Error() string { return e.Err.Error() }
func (e *TempDirError) Unwrap() error { return e.Err }

// Config is a streaming bench's resolved settings.
type Config struct {
	// Exe is the referee program the servers are started with, as
	// "Exe serve ...".
	Exe   string
	Chain Chain
	// Cases run in their order, each with both protocols over both links,
	// the relay delaying each direction by RTT/2; every case's frames are
	// multiplied by FramesScale. The whole set runs Repeat times.
	Cases       []Case
	RTT         time.Duration
	FramesScale float64
	JPEGQuality int
	Repeat      int
	// Keep keeps the temporary directory; it is kept anyway when a run
	// fails.
	Keep bool
	// CPUProfileServer, when set, is where each server writes its CPU
	// profile, with the run's name before the extension.
	CPUProfileServer string
	Logger           *slog.Logger
}

// Row is the measure of one case over one link with one protocol.
type Row struct {
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
	// StreamSeconds runs from the first session's session_started to the
	// last session_ended, by the client's clock.
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

// Target is one of issue 5's targets and how this run did.
type Target struct {
	Target   string  `json:"target"`
	Measured string  `json:"measured"`
	Value    float64 `json:"value"`
	Met      bool    `json:"met"`
}

// Report is what a streaming bench found.
type Report struct {
	CPUs        int      `json:"cpus"`
	CPUModel    string   `json:"cpu_model"`
	RTTms       float64  `json:"rtt_ms"`
	FramesScale float64  `json:"frames_scale"`
	JPEGQuality int      `json:"jpeg_quality"`
	Runs        []Row    `json:"runs"`
	Repeat      int      `json:"repeat"`
	Targets     []Target `json:"targets"`
	// LoadAverage is the 1-minute load average at the start and the end:
	// other work on the machine takes CPU from the figures.
	LoadAverage [2]float64 `json:"load_average"`
	TempDir     string     `json:"temp_dir,omitempty"`

	// failed lists the runs that failed or lost frames, each with why.
	failed []string
}

// Failure is nil when every run was measured and verified, else an error
// listing those that were not.
func (r Report) Failure() error {
	if len(r.failed) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d runs failed: %s (logs and data kept in %s)",
		len(r.failed), len(r.Runs), strings.Join(r.failed, "; "), r.TempDir)
}

// Run generates the inputs in a temporary directory, runs every case with
// both protocols over both links against a fresh server each, verifies
// every rebuilt video and returns the report. Runs that fail or lose
// frames are in the report (see Report.Failure), and the temporary
// directory is then kept. The error is for a bench that could not run at
// all; a *TempDirError when its temporary directory could not be made.
func Run(ctx context.Context, cfg Config) (Report, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp("", "referee-bench-*")
	if err != nil {
		return Report{}, &TempDirError{fmt.Errorf("create the temporary directory: %w", err)}
	}
	keep := cfg.Keep
	defer func() {
		if keep {
			log.Info("Kept the temporary directory", "dir", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()
	inputs, err := writeInputs(ctx, cfg.Chain, dir, cfg.Cases, cfg.FramesScale, log)
	if err != nil {
		return Report{}, err
	}

	rep := Report{
		CPUs:        runtime.NumCPU(),
		CPUModel:    cpuModel(),
		RTTms:       ms(cfg.RTT),
		FramesScale: cfg.FramesScale,
		JPEGQuality: cfg.JPEGQuality,
		Repeat:      cfg.Repeat,
	}
	rep.LoadAverage[0] = loadAverage()
	// Repeats go over the whole set in turn rather than one row at a time,
	// so that a burst of other work on the machine hits one run of several
	// rows, not every run of one row.
	tries := map[string][]Row{}
	var order []string
	for i := range cfg.Repeat {
		for _, c := range cfg.Cases {
			for _, link := range []string{LinkLoopback, LinkRelay} {
				for _, proto := range []string{protocol.V1, protocol.V2} {
					r := runner{cfg: cfg, c: c, link: link, proto: proto, input: inputs[c.Name]}
					r.dir = filepath.Join(dir, "runs", fmt.Sprintf("%s-%d", r.name(), i+1))
					log.Info("Running "+r.name(), "repeat", i+1, "sessions", c.Sessions, "frames_per_session", inputs[c.Name].frames)
					row, err := r.run(ctx)
					if err != nil {
						if ctx.Err() != nil {
							keep = true
							return Report{}, fmt.Errorf("bench interrupted during %s: %w", r.name(), context.Cause(ctx))
						}
						row.Problem = err.Error()
					}
					log.Info("Ran "+r.name(), "repeat", i+1, "frames", row.Frames, "frames_per_s", round1(row.FPS), "verified", row.Verified)
					if !row.Verified {
						rep.failed = append(rep.failed, fmt.Sprintf("%s (repeat %d): %s", r.name(), i+1, row.Problem))
						keep = true
					} else if !cfg.Keep {
						os.RemoveAll(r.dir)
					}
					if i == 0 {
						order = append(order, r.name())
					}
					tries[r.name()] = append(tries[r.name()], row)
				}
			}
		}
	}
	for _, name := range order {
		rep.Runs = append(rep.Runs, medianRun(tries[name]))
	}
	rep.LoadAverage[1] = loadAverage()
	setRatios(rep.Runs)
	rep.Targets = targets(rep.Runs, cfg.RTT)
	if keep {
		rep.TempDir = dir
	}
	return rep, nil
}

// input is a case's video and phrase log.
type input struct {
	video, signal string
	frames        int
}

// writeInputs writes a counter video per case (cases of the same size and
// length share one) and a phrase log matching its length.
func writeInputs(ctx context.Context, chain Chain, dir string, cases []Case, scale float64, log *slog.Logger) (map[string]input, error) {
	inputs := map[string]input{}
	made := map[string]input{}
	for _, c := range cases {
		frames := max(1, int(math.Round(float64(c.Frames)*scale)))
		key := fmt.Sprintf("counter_%dx%d_%d", c.Width, c.Height, frames)
		in, ok := made[key]
		if !ok {
			in = input{
				video:  filepath.Join(dir, key+".avi"),
				signal: filepath.Join(dir, key+".txt"),
				frames: frames,
			}
			start := time.Now()
			if err := chain.WriteInputs(ctx, in.video, in.signal, frames, c.Width, c.Height); err != nil {
				return nil, err
			}
			log.Info("Generated "+filepath.Base(in.video), "seconds", round1(time.Since(start).Seconds()))
			made[key] = in
		}
		inputs[c.Name] = in
	}
	return inputs, nil
}

// runner runs one case over one link with one protocol against a fresh
// server.
type runner struct {
	cfg   Config
	c     Case
	link  string
	proto string
	input input
	dir   string
}

func (r *runner) name() string { return r.c.Name + "-" + r.link + "-" + r.proto }

// result is what one client session brought back.
type result struct {
	s   Session
	err error
}

// run measures the run. The returned Row carries whatever was measured
// even when err is set.
func (r *runner) run(ctx context.Context) (Row, error) {
	out := Row{
		Case: r.c.Name, Protocol: r.proto, Link: r.link, Sessions: r.c.Sessions,
		Width: r.c.Width, Height: r.c.Height,
	}
	if r.link == LinkRelay {
		out.RTTms = ms(r.cfg.RTT)
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return out, fmt.Errorf("create %s: %w", r.dir, err)
	}
	srv, err := startServer(ctx, r.cfg.Exe, r.dir, r.c.Sessions, r.serverProfile())
	if err != nil {
		return out, err
	}
	defer srv.kill()
	addr := srv.addr
	if r.link == LinkRelay {
		relay, err := netem.Listen(netem.Config{Target: srv.addr, Delay: r.cfg.RTT / 2})
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
	sessions := make([]result, r.c.Sessions)
	labels := pprof.Labels("case", r.c.Name, "protocol", r.proto, "link", r.link, "phase", "stream")
	pprof.Do(ctx, labels, func(ctx context.Context) {
		var wg sync.WaitGroup
		for i := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := r.cfg.Chain.Stream(ctx, Stream{
					Server:      "http://" + addr,
					Video:       r.input.video,
					Signal:      r.input.signal,
					SessionID:   fmt.Sprintf("bench_%s_%s_%s_%02d", r.c.Name, r.link, r.proto, i),
					Protocol:    r.proto,
					JPEGQuality: r.cfg.JPEGQuality,
				})
				sessions[i] = result{s, err}
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
	if err := measure(&out, sessions, samples); err != nil {
		return out, err
	}
	return out, r.verify(ctx, &out, sessions)
}

// serverProfile is where this run's server writes its CPU profile, or "".
func (r *runner) serverProfile() string {
	p := r.cfg.CPUProfileServer
	if p == "" {
		return ""
	}
	ext := filepath.Ext(p)
	return strings.TrimSuffix(p, ext) + "." + r.name() + ext
}

// measure fills the throughput and latency figures from the sessions'
// milestones.
func measure(out *Row, sessions []result, samples []rssSample) error {
	var first, last time.Time
	for _, r := range sessions {
		s := r.s
		out.Frames += s.Frames
		out.FrameBytes += s.FrameBytes
		if secs := s.StreamTime.Seconds(); secs > 0 && s.Frames > 1 {
			out.ClientSendFPS += float64(s.Frames-1) / secs
		}
		if first.IsZero() || s.Started.Before(first) {
			first = s.Started
		}
		if s.Ended.After(last) {
			last = s.Ended
		}
		out.EndToCompleteMs = max(out.EndToCompleteMs, ms(s.Completed.Sub(s.EndSent)))
		var res struct {
			WallTimeSeconds float64 `json:"wall_time_seconds"`
		}
		if json.Unmarshal(s.Result, &res) == nil {
			out.PipelineMs = max(out.PipelineMs, res.WallTimeSeconds*1000)
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
// codes are 0..N-1 in order, N the frames sent. Videos are read
// GOMAXPROCS at a time; this is not part of any figure.
func (r *runner) verify(ctx context.Context, out *Row, sessions []result) error {
	problems := make([]error, len(sessions))
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	pprof.Do(ctx, pprof.Labels("case", r.c.Name, "protocol", r.proto, "link", r.link, "phase", "verify"), func(ctx context.Context) {
		for i, s := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				if err := r.cfg.Chain.Verify(ctx, s.s); err != nil {
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

// medianRun is the run of median frames/s among runs, with Repeats and
// FPSAll set; a failed run, if any, is returned instead, so that the
// failure shows.
func medianRun(runs []Row) Row {
	all := make([]float64, len(runs))
	for i, r := range runs {
		all[i] = r.FPS
	}
	var pick Row
	if i := slices.IndexFunc(runs, func(r Row) bool { return !r.Verified }); i >= 0 {
		pick = runs[i]
	} else {
		sorted := slices.Clone(runs)
		slices.SortFunc(sorted, func(a, b Row) int { return cmp.Compare(a.FPS, b.FPS) })
		pick = sorted[(len(sorted)-1)/2]
	}
	pick.Repeats, pick.FPSAll = len(runs), all
	return pick
}

// setRatios puts on each v2 run its frames/s over the v1 run's of the same
// case and link.
func setRatios(runs []Row) {
	for i, r := range runs {
		if r.Protocol != protocol.V2 {
			continue
		}
		if v1 := findRun(runs, r.Case, protocol.V1, r.Link); v1 != nil && v1.FPS > 0 {
			runs[i].V2OverV1 = r.FPS / v1.FPS
		}
	}
}

func findRun(runs []Row, name, proto, link string) *Row {
	for i := range runs {
		if r := &runs[i]; r.Case == name && r.Protocol == proto && r.Link == link && r.Verified {
			return r
		}
	}
	return nil
}

// targets checks issue 5's targets against the runs that were made.
func targets(runs []Row, rtt time.Duration) []Target {
	var ts []Target
	relayV2, relayV1 := findRun(runs, "640x480", protocol.V2, LinkRelay), findRun(runs, "640x480", protocol.V1, LinkRelay)
	loopV2 := findRun(runs, "640x480", protocol.V2, LinkLoopback)
	if relayV2 != nil && relayV1 != nil {
		ts = append(ts, Target{
			Target:   fmt.Sprintf("640x480 through the %v relay: v2 >= 10x v1 frames/s", rtt),
			Measured: fmt.Sprintf("%.0f vs %.1f frames/s: %.1fx", relayV2.FPS, relayV1.FPS, relayV2.V2OverV1),
			Value:    relayV2.V2OverV1, Met: relayV2.V2OverV1 >= 10,
		})
	}
	if relayV2 != nil && loopV2 != nil && loopV2.FPS > 0 {
		f := relayV2.FPS / loopV2.FPS
		ts = append(ts, Target{
			Target:   fmt.Sprintf("640x480 v2 through the %v relay >= 80%% of its loopback frames/s", rtt),
			Measured: fmt.Sprintf("%.0f vs %.0f frames/s: %.0f%%", relayV2.FPS, loopV2.FPS, 100*f),
			Value:    f, Met: f >= 0.8,
		})
	}
	if loopV2 != nil {
		ts = append(ts, Target{
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
		ts = append(ts, Target{
			Target:   "10x1280x720: server peak RSS < 100 MB (every protocol and link)",
			Measured: fmt.Sprintf("%.0f MB at most", peak),
			Value:    peak, Met: peak < 100,
		})
	}
	if r := findRun(runs, "1280x720", protocol.V2, LinkLoopback); r != nil {
		ts = append(ts, Target{
			Target:   "1280x720 (300 frames) v2 on loopback: session_end to process_complete < 1 s",
			Measured: fmt.Sprintf("%.0f ms", r.EndToCompleteMs),
			Value:    r.EndToCompleteMs, Met: r.EndToCompleteMs < 1000,
		})
	}
	return ts
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func round1(f float64) float64 { return math.Round(f*10) / 10 }

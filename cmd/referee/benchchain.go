package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/referee-project/referee/client"
	"github.com/referee-project/referee/cmd/referee/internal/bench"
	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/jobs/natsjobs"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio"
	"github.com/referee-project/referee/protocol"
	"github.com/referee-project/referee/server"
	"github.com/referee-project/referee/server/worker"
)

// benchChain is what "referee bench" measures: the real client, server,
// worker and OpenCV, wired for package bench.
type benchChain struct{}

// benchTimeout is the client's timeout in every bench session.
const benchTimeout = 30 * time.Second

// WriteInputs implements bench.Chain: a counter video, and the plain
// phrase log gen-test-video writes beside one.
func (benchChain) WriteInputs(ctx context.Context, video, sig string, frames, w, h int) error {
	if err := writeCounterVideo(ctx, video, frames, w, h); err != nil {
		return err
	}
	if err := os.WriteFile(sig, signal.Render(plainPhraseLog(float64(frames)/benchFPS)), 0o644); err != nil {
		return withExit(exitUsage, fmt.Errorf("write the phrase log %s: %w", sig, err))
	}
	return nil
}

// benchFPS is the frame rate of the bench's videos: a camera's.
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

// Stream implements bench.Chain with client.Run.
func (benchChain) Stream(ctx context.Context, s bench.Stream) (bench.Session, error) {
	res, err := client.Run(ctx, client.Options{
		Server:      s.Server,
		Video:       s.Video,
		Signal:      s.Signal,
		SessionID:   s.SessionID,
		Encoding:    protocol.EncodingJPEG,
		JPEGQuality: s.JPEGQuality,
		Protocol:    s.Protocol,
		Timeout:     benchTimeout,
	})
	if err != nil {
		return bench.Session{}, err
	}
	return bench.Session{
		Frames:     res.Frames,
		FrameBytes: res.FrameBytes,
		StreamTime: res.StreamTime,
		Started:    res.Times.Started,
		EndSent:    res.Times.EndSent,
		Ended:      res.Times.Ended,
		Completed:  res.Times.Completed,
		Result:     res.Raw,
	}, nil
}

// Verify implements bench.Chain with verifyBenchSession.
func (benchChain) Verify(ctx context.Context, s bench.Session) error {
	return verifyBenchSession(ctx, s.Frames, s.Result)
}

// verifyBenchSession checks the video the result raw names as
// "probe-video --verify-sequence" does, and that it holds the frames sent.
func verifyBenchSession(ctx context.Context, frames int, raw json.RawMessage) error {
	var r struct {
		Artifacts struct {
			Video string `json:"video"`
		} `json:"artifacts"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.Artifacts.Video == "" {
		return fmt.Errorf("the result names no video (artifacts.video): %s", raw)
	}
	rep, err := probeVideo(ctx, probeVideoOptions{Path: r.Artifacts.Video, VerifySequence: true})
	if err != nil {
		return fmt.Errorf("read the rebuilt video: %w", err)
	}
	seq := *rep.SequenceReport
	if !seq.SequenceOK || seq.Frames != frames {
		return fmt.Errorf("%s: %d frames sent, %d in the video, sequence ok %v, missing %s, duplicated %s, out of order %s, undecodable %s",
			r.Artifacts.Video, frames, seq.Frames, seq.SequenceOK, intList(seq.Missing, 10), intList(seq.Duplicated, 10),
			intList(seq.OutOfOrder, 10), intList(seq.Undecodable, 10))
	}
	return nil
}

// clusterAnalyzer is the name of the cluster bench's slow analyzer.
const clusterAnalyzer = "bench-slow"

// StartCluster implements bench.Chain: in this process, an embedded NATS
// JetStream, the workers and the serve nodes, each on its own connection.
// stop ends them in the reverse order.
func (benchChain) StartCluster(ctx context.Context, c bench.ClusterSpec) (urls []string, stop func(), err error) {
	var undo []func()
	stop = func() {
		for _, f := range slices.Backward(undo) {
			f()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: filepath.Join(c.Dir, "jetstream"), NoLog: true, NoSigs: true})
	if err != nil {
		return nil, nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	go ns.Start()
	undo = append(undo, func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(10 * time.Second) {
		return nil, nil, errors.New("the embedded NATS server did not start within 10 s")
	}
	analyzers := map[string]pipeline.Analyzer{clusterAnalyzer: sleepAnalyzer{c.Delay}}
	open := func(name string) (*natsjobs.Conn, error) {
		conn, err := natsjobs.Open(natsjobs.Options{URL: ns.ClientURL(), PollInterval: 250 * time.Millisecond, Name: name})
		if err == nil {
			undo = append(undo, conn.Close)
		}
		return conn, err
	}
	var sources []*natsjobs.Conn
	for i := range c.Workers {
		conn, err := open(fmt.Sprintf("worker-%d", i+1))
		if err != nil {
			return nil, nil, err
		}
		sources = append(sources, conn)
	}
	// The workers stop before their connections close.
	wctx, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	undo = append(undo, func() {
		stopWorkers()
		wg.Wait()
	})
	for i, conn := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker.Run(wctx, worker.Config{Source: conn, DataDir: filepath.Join(c.Dir, fmt.Sprintf("worker-%d", i+1)), Workers: 1, Analyzers: analyzers})
		}()
	}
	for i := range c.Nodes {
		conn, err := open(fmt.Sprintf("serve-%d", i+1))
		if err != nil {
			return nil, nil, err
		}
		srv, err := server.New(server.Config{Host: "127.0.0.1", DataDir: filepath.Join(c.Dir, fmt.Sprintf("serve-%d", i+1)),
			MaxSessions: c.MaxSessions, Analyzer: clusterAnalyzer, Analyzers: analyzers, Jobs: conn})
		if err != nil {
			return nil, nil, fmt.Errorf("serve node %d: %w", i+1, err)
		}
		// Closed by stop whether or not it starts: New has opened the
		// spools of any session it recovered, and conn closes after it.
		undo = append(undo, func() { srv.Close() })
		if err := srv.Start(ctx); err != nil {
			return nil, nil, fmt.Errorf("serve node %d: %w", i+1, err)
		}
		urls = append(urls, "http://"+srv.Addr())
	}
	return urls, stop, nil
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

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/referee-project/referee/client"
	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/jobs/natsjobs"
	"github.com/referee-project/referee/pipeline/jobs/natsjobs/natstest"
	"github.com/referee-project/referee/server"
	"github.com/referee-project/referee/server/servertest"
	"github.com/referee-project/referee/server/worker"
)

// jetStream is an embedded NATS server with JetStream, which a test may
// stop and start again on the same port and store.
type jetStream struct {
	t     *testing.T
	port  int
	store string
	ns    *natsserver.Server
}

func startJetStream(t *testing.T) *jetStream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	js := &jetStream{t: t, port: port, store: t.TempDir()}
	js.start()
	return js
}

func (js *jetStream) url() string { return "nats://127.0.0.1:" + strconv.Itoa(js.port) }

func (js *jetStream) start() {
	js.t.Helper()
	js.ns = natstest.Start(js.t, js.port, js.store)
}

func (js *jetStream) stop() {
	if js.ns != nil {
		js.ns.Shutdown()
		js.ns.WaitForShutdown()
		js.ns = nil
	}
}

// slowAnalyzer decides by the lights after a pause, and says on started
// which worker began.
type slowAnalyzer struct {
	delay   time.Duration
	worker  string
	started chan string
}

func (a slowAnalyzer) Analyze(ctx context.Context, in pipeline.AnalysisInput, progress func(float64, string)) (pipeline.Verdict, error) {
	if a.started != nil {
		a.started <- a.worker
	}
	progress(0.5, "thinking")
	select {
	case <-ctx.Done():
		return pipeline.Verdict{}, ctx.Err()
	case <-time.After(a.delay):
	}
	v := in.Phrase.SignalVerdict()
	return pipeline.Verdict{Winner: v.Winner, Reason: v.Reason, Confidence: 1}, nil
}

// testCluster is serve nodes and workers on one embedded JetStream.
type testCluster struct {
	t     *testing.T
	js    *jetStream
	opts  natsjobs.Options
	delay time.Duration
	// started hears the name of a worker when it begins an analysis.
	started chan string
	// unknownAnalyzer makes the workers unable to run the nodes' analyzer.
	unknownAnalyzer bool
	// livePeriod is the nodes' server.Config.LivePeriod; 0 the default.
	livePeriod time.Duration
}

func newTestCluster(t *testing.T, delay time.Duration, edit func(*natsjobs.Options)) *testCluster {
	js := startJetStream(t)
	opts := natsjobs.Options{URL: js.url(), AckWait: time.Second, ReconnectWait: 100 * time.Millisecond, PollInterval: 200 * time.Millisecond, OpTimeout: 2 * time.Second}
	if edit != nil {
		edit(&opts)
	}
	return &testCluster{t: t, js: js, opts: opts, delay: delay, started: make(chan string, 16)}
}

func (tc *testCluster) conn(name string, log *servertest.LogBuffer) *natsjobs.Conn {
	tc.t.Helper()
	opts := tc.opts
	opts.Name = name
	if log != nil {
		opts.Logger = log.Logger().With("node", name)
	}
	c, err := natsjobs.Open(opts)
	if err != nil {
		tc.t.Fatal(err)
	}
	return c
}

// began waits up to 20 s for a worker to begin an analysis and returns
// its name.
func (tc *testCluster) began() string {
	tc.t.Helper()
	select {
	case w := <-tc.started:
		return w
	case <-time.After(20 * time.Second):
		tc.t.Fatal("no worker began an analysis in 20 s")
		return ""
	}
}

type testNode struct {
	name string
	srv  *server.Server
	url  string
	logs *servertest.LogBuffer
	conn *natsjobs.Conn
}

// node starts a serve node that hands its phrases to the cluster.
func (tc *testCluster) node(name string) *testNode {
	tc.t.Helper()
	return tc.nodeIn(name, tc.t.TempDir())
}

// nodeIn starts a serve node with the data directory dataDir.
func (tc *testCluster) nodeIn(name, dataDir string) *testNode {
	tc.t.Helper()
	return tc.nodeWith(name, dataDir, nil)
}

// nodeWith starts a serve node with the data directory dataDir and the
// configuration edit changes, if not nil.
func (tc *testCluster) nodeWith(name, dataDir string, edit func(*server.Config)) *testNode {
	tc.t.Helper()
	logs := &servertest.LogBuffer{}
	conn := tc.conn(name, logs)
	cfg := server.Config{
		Host: "127.0.0.1", DataDir: dataDir, Logger: logs.Logger().With("node", name),
		Analyzer: "slow", Analyzers: map[string]pipeline.Analyzer{"slow": slowAnalyzer{}},
		Jobs: conn, LivePeriod: tc.livePeriod,
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		tc.t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		tc.t.Fatal(err)
	}
	tc.t.Cleanup(func() {
		srv.Close()
		conn.Close()
	})
	return &testNode{name: name, srv: srv, url: "http://" + srv.Addr(), logs: logs, conn: conn}
}

type testWorker struct {
	name   string
	logs   *servertest.LogBuffer
	conn   *natsjobs.Conn
	cancel context.CancelFunc
	done   chan struct{}
}

// worker starts a worker taking one job at a time.
func (tc *testCluster) worker(name string) *testWorker {
	tc.t.Helper()
	logs := &servertest.LogBuffer{}
	conn := tc.conn(name, logs)
	ctx, cancel := context.WithCancel(context.Background())
	w := &testWorker{name: name, logs: logs, conn: conn, cancel: cancel, done: make(chan struct{})}
	analyzers := map[string]pipeline.Analyzer{"slow": slowAnalyzer{delay: tc.delay, worker: name, started: tc.started}}
	if tc.unknownAnalyzer {
		analyzers = nil
	}
	go func() {
		defer close(w.done)
		err := worker.Run(ctx, worker.Config{
			Source: conn, DataDir: tc.t.TempDir(), Workers: 1, Logger: logs.Logger().With("node", name), Analyzers: analyzers,
		})
		if err != nil {
			tc.t.Errorf("worker %s: %v", name, err)
		}
	}()
	tc.t.Cleanup(w.stop)
	return w
}

// stop stops the worker as SIGTERM does: it gives its job back.
func (w *testWorker) stop() {
	w.cancel()
	<-w.done
	w.conn.Close()
}

// kill stops the worker as a crash does: its connection goes first, so
// it can give nothing back and its job waits for the ack wait.
func (w *testWorker) kill() {
	w.conn.Close()
	w.cancel()
	<-w.done
}

// streamPhrase streams a counter video and the sample signal to url.
func streamPhrase(t *testing.T, url, id string, frames int, fps float64) (*client.Result, error) {
	t.Helper()
	video := counterVideo(t, ".avi", frames, 160, 120)
	return client.Run(context.Background(), client.Options{Server: url, Video: video, Signal: sampleSignal, SessionID: id, FPS: fps, Timeout: 20 * time.Second})
}

// checkResult checks a streamed phrase's result: decided, its artifacts
// on the serve node, the video frame by frame.
func checkResult(t *testing.T, res *client.Result, id string, frames int) {
	t.Helper()
	var got e2eResult
	if err := json.Unmarshal(res.Raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != "success" || got.SessionID != id || got.Winner != "right" || got.StreamingStats.FramesReceived != frames {
		t.Errorf("result of %s: %+v", id, got)
	}
	for _, p := range []string{got.Artifacts.Video, got.Artifacts.Signal, got.Artifacts.ResultJSON} {
		if !strings.HasPrefix(p, got.ArtifactDir+string(filepath.Separator)) {
			t.Errorf("artifact %q is not in the serve node's artifact directory %s", p, got.ArtifactDir)
		}
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("artifact %q: %v", p, err)
		}
	}
	var stored map[string]any
	data, err := os.ReadFile(got.Artifacts.ResultJSON)
	if err != nil || json.Unmarshal(data, &stored) != nil || stored["validation"] == nil {
		t.Errorf("result.json on the serve node: %v, validation %v", err, stored["validation"])
	}
	verifyVideo(t, got.Artifacts.Video, frames)
}

// waitRecord waits up to 20 s for the record of key to be in state.
func waitRecord(t *testing.T, c *natsjobs.Conn, key, state string) natsjobs.Record {
	t.Helper()
	var rec natsjobs.Record
	var err error
	if !within(20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		rec, _, err = c.Record(ctx, key)
		return err == nil && rec.State == state
	}) {
		t.Fatalf("phrase %s: record %+v, %v; want state %s", key, rec, err, state)
	}
	return rec
}

// TestClusterTwoNodesTwoWorkers streams phrases through two serve nodes,
// two of them with the same session id, and has two workers analyse them.
func TestClusterTwoNodesTwoWorkers(t *testing.T) {
	tc := newTestCluster(t, 300*time.Millisecond, nil)
	nodes := []*testNode{tc.node("serve-1"), tc.node("serve-2")}
	workers := []*testWorker{tc.worker("worker-1"), tc.worker("worker-2")}
	ids := []string{"strip1", "strip1", "strip2", "strip3"}
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := nodes[i%2]
			res, err := streamPhrase(t, n.url, id, 8, 0)
			if err != nil {
				t.Errorf("phrase %d (%s) through %s: %v\nlog:\n%s", i, id, n.url, err, n.logs.String())
				return
			}
			checkResult(t, res, id, 8)
		}()
	}
	wg.Wait()
	for _, key := range []string{"strip1", "strip1-2", "strip2", "strip3"} {
		rec := waitRecord(t, nodes[0].conn, key, natsjobs.StateDone)
		if rec.Attempts != 1 || len(rec.Files) == 0 {
			t.Errorf("phrase %s: %d tries, artifacts %q; want 1 try and artifacts", key, rec.Attempts, rec.Files)
		}
	}
	for _, w := range workers {
		if n := len(w.logs.Lines("job complete")); n == 0 {
			t.Errorf("%s analysed no phrase; the other took all four", w.name)
		}
	}
}

// TestClusterWorkerKilledMidAnalysis kills the worker analysing a phrase:
// the other worker gets the job after the ack wait and the client gets
// one result. A job delivered again after its result was stored is
// acknowledged and dropped.
func TestClusterWorkerKilledMidAnalysis(t *testing.T) {
	tc := newTestCluster(t, 1500*time.Millisecond, nil)
	n := tc.node("serve-1")
	first := tc.worker("worker-1")
	done := make(chan error, 1)
	var res *client.Result
	go func() {
		var err error
		res, err = streamPhrase(t, n.url, "strip7", 8, 0)
		done <- err
	}()
	if w := tc.began(); w != "worker-1" {
		t.Fatalf("the analysis began on %s, want worker-1", w)
	}
	second := tc.worker("worker-2")
	first.kill()
	if w := tc.began(); w != "worker-2" {
		t.Fatalf("the job was taken again by %s, want worker-2", w)
	}
	if err := recv(t, done); err != nil {
		t.Fatalf("stream: %v\nlog:\n%s", err, n.logs.String())
	}
	checkResult(t, res, "strip7", 8)
	rec := waitRecord(t, n.conn, "strip7", natsjobs.StateDone)
	if rec.Worker != "worker-2" || rec.Attempts != 2 || !strings.HasPrefix(rec.Prefix, "strip7/out/2/") {
		t.Errorf("record %+v: want done by worker-2 on its second try", rec)
	}
	if lines := first.logs.Lines("job complete"); len(lines) != 0 {
		t.Errorf("the killed worker completed the job: %q", lines)
	}

	// The job again, as JetStream would redeliver it had the ack been lost.
	spec, err := json.Marshal(map[string]string{"key": "strip7", "session_id": "strip7", "video": "video.avi"})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, tc.js.url(), natsjobs.JobsSubject, spec)
	second.logs.WaitFor(t, "job already ended; acknowledging its redelivery", "phrase=strip7")
	if again := waitRecord(t, n.conn, "strip7", natsjobs.StateDone); again.Finished != rec.Finished || again.Worker != rec.Worker {
		t.Errorf("the redelivered job changed the result: %+v, was %+v", again, rec)
	}
	if n := len(second.logs.Lines("job complete")); n != 1 {
		t.Errorf("worker-2 completed %d jobs, want 1", n)
	}
}

// TestClusterServeNodeKilledAfterSignalAck stops a serve node at once
// once it has submitted a phrase: the job completes, its result and
// artifacts stay in JetStream, and the other node goes on taking phrases.
func TestClusterServeNodeKilledAfterSignalAck(t *testing.T) {
	tc := newTestCluster(t, time.Second, nil)
	n1, n2 := tc.node("serve-1"), tc.node("serve-2")
	tc.worker("worker-1")
	done := make(chan error, 1)
	video := counterVideo(t, ".avi", 8, 160, 120)
	go func() {
		_, err := client.Run(context.Background(), client.Options{Server: n1.url, Video: video, Signal: sampleSignal, SessionID: "strip4",
			Timeout: 20 * time.Second, ResumeTries: 1, ResumeBackoff: 50 * time.Millisecond})
		done <- err
	}()
	n1.logs.WaitFor(t, "phrase submitted to the analysis cluster", "session_id=strip4")
	tc.began()
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	n1.srv.Shutdown(expired)
	if err := recv(t, done); err == nil {
		t.Fatal("the client of the stopped node got a result")
	}
	rec := waitRecord(t, n2.conn, "strip4", natsjobs.StateDone)
	var got e2eResult
	if err := json.Unmarshal(rec.Result, &got); err != nil || got.Winner != "right" || got.SessionID != "strip4" {
		t.Errorf("stored result %s: %v", rec.Result, err)
	}
	for _, want := range []string{"video.avi", "signal.txt", "result.json"} {
		if !slices.Contains(rec.Files, want) {
			t.Errorf("stored artifacts %q lack %s", rec.Files, want)
		}
	}
	// The other node lists the phrase of the stopped one as done, from
	// the job, and serves its result.
	if s := n2.listed(t, "strip4"); s == nil || s["status"] != "done" || s["winner"] != "right" || s["node"] != "serve-1" {
		t.Errorf("serve-2 lists strip4 of the stopped serve-1 as %v; want done, right, on serve-1", s)
	}
	status, _, body := call(t, "GET", n2.url+server.PathSessions+"/strip4/files/result.json", "", nil)
	var compact bytes.Buffer
	if status != http.StatusOK || json.Compact(&compact, body) != nil || !bytes.Equal(compact.Bytes(), rec.Result) {
		t.Errorf("serve-2 serves strip4's result.json: %d %s; want the worker's %s", status, body, rec.Result)
	}
	res, err := streamPhrase(t, n2.url, "strip4", 8, 0)
	if err != nil {
		t.Fatalf("the other node: %v", err)
	}
	checkResult(t, res, "strip4", 8)
	waitRecord(t, n2.conn, "strip4-2", natsjobs.StateDone)
}

// TestClusterJetStreamRestart stops JetStream while a phrase is analysed
// and another streams: new sessions are refused saying why, nothing is
// lost, and both results come once it is back.
func TestClusterJetStreamRestart(t *testing.T) {
	tc := newTestCluster(t, 1500*time.Millisecond, func(o *natsjobs.Options) { o.AckWait = 5 * time.Second })
	n := tc.node("serve-1")
	w := tc.worker("worker-1")
	type outcome struct {
		res *client.Result
		err error
	}
	first, second := make(chan outcome, 1), make(chan outcome, 1)
	go func() {
		res, err := streamPhrase(t, n.url, "strip5", 8, 0)
		first <- outcome{res, err}
	}()
	tc.began()
	go func() {
		res, err := streamPhrase(t, n.url, "strip6", 10, 5)
		second <- outcome{res, err}
	}()
	n.logs.WaitFor(t, "session_id=strip6", "created session")
	tc.js.stop()
	deadline := time.Now().Add(10 * time.Second)
	for n.conn.Ready() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	_, err := streamPhrase(t, n.url, "refused", 2, 0)
	var ce *client.Error
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "SESSION_START_FAILED") || !strings.Contains(err.Error(), "the analysis cluster is unreachable") {
		t.Errorf("a session while JetStream is down: %v; want SESSION_START_FAILED naming the unreachable cluster", err)
	}
	if status, body := getReady(t, n.url); status != http.StatusServiceUnavailable || !strings.Contains(body, "the analysis cluster is unreachable: ") {
		t.Errorf("/readyz while JetStream is down: %d %s; want 503 naming the unreachable cluster", status, body)
	}
	n.logs.WaitFor(t, "waiting to submit the phrase", "session_id=strip6")
	tc.js.start()
	for i, ch := range []chan outcome{first, second} {
		o := recv(t, ch)
		if o.err != nil {
			t.Fatalf("phrase %d: %v\nserve log:\n%s\nworker log:\n%s", i, o.err, n.logs.String(), w.logs.String())
		}
	}
	for _, key := range []string{"strip5", "strip6"} {
		waitRecord(t, n.conn, key, natsjobs.StateDone)
	}
	if status, body := getReady(t, n.url); status != http.StatusOK {
		t.Errorf("/readyz once JetStream is back: %d %s; want 200", status, body)
	}
	if c := len(w.logs.Lines("job complete")); c != 2 {
		t.Errorf("%d jobs completed, want 2", c)
	}
}

// TestClusterDeadLetter fails every try of a job: after the last it goes
// to the dead letters and the client hears why.
func TestClusterDeadLetter(t *testing.T) {
	tc := newTestCluster(t, 0, func(o *natsjobs.Options) { o.MaxAttempts = 2 })
	tc.unknownAnalyzer = true
	n := tc.node("serve-1")
	w := tc.worker("worker-1")
	_, err := streamPhrase(t, n.url, "strip8", 4, 0)
	if err == nil {
		t.Fatal("a job that fails on every try gave a result")
	}
	want := "the analysis of phrase strip8 failed on every one of its 2 tries, and went to the dead letters: "
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "unknown analyzer") {
		t.Errorf("client error %q; want %q and the analyzer's error", err, want)
	}
	rec := waitRecord(t, n.conn, "strip8", natsjobs.StateFailed)
	if rec.Attempts != 2 {
		t.Errorf("record %+v: want 2 tries", rec)
	}
	w.logs.WaitFor(t, "job failed on every try; sent to the dead letters", "subject="+natsjobs.DeadSubjectBase+"strip8")
}

// getReady returns the status and body of GET /readyz.
func getReady(t *testing.T, url string) (int, string) {
	t.Helper()
	status, _, body := call(t, "GET", url+server.PathReady, "", nil)
	return status, string(body)
}

// recv waits up to a minute for a value on ch.
func recv[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Minute):
		t.Fatal("nothing came in a minute")
		panic("unreachable")
	}
}

// publish publishes data on subject through a connection of its own.
func publish(t *testing.T, url, subject string, data []byte) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, subject, data); err != nil {
		t.Fatalf("publish on %s: %v", subject, err)
	}
}

// TestClusterObjectStoreFull gives the object store less room than a
// phrase's video: the phrase fails saying which limit to raise.
func TestClusterObjectStoreFull(t *testing.T) {
	tc := newTestCluster(t, 0, func(o *natsjobs.Options) { o.MaxBytes = 4096 })
	n := tc.node("serve-1")
	tc.worker("worker-1")
	_, err := streamPhrase(t, n.url, "strip9", 8, 0)
	if err == nil || !strings.Contains(err.Error(), "PROCESSING_FAILED") || !strings.Contains(err.Error(), "store the input video.avi of phrase strip9") || !strings.Contains(err.Error(), "check --nats-max-bytes") {
		t.Errorf("a phrase larger than the object store: %v; want PROCESSING_FAILED naming the input and --nats-max-bytes", err)
	}
}

// TestClusterQueueFull holds more phrases than the queue takes while no
// worker runs: the one beyond --nats-max-jobs waits for room, saying so,
// and both are decided once a worker comes.
func TestClusterQueueFull(t *testing.T) {
	tc := newTestCluster(t, 0, func(o *natsjobs.Options) { o.MaxJobs = 1 })
	n := tc.node("serve-1")
	done := make(chan error, 2)
	for _, id := range []string{"strip10", "strip11"} {
		go func() {
			_, err := streamPhrase(t, n.url, id, 4, 0)
			done <- err
		}()
	}
	n.logs.WaitFor(t, "waiting to submit the phrase", "the queue holds at most 1 jobs, --nats-max-jobs")
	tc.worker("worker-1")
	for range 2 {
		if err := recv(t, done); err != nil {
			t.Errorf("phrase: %v", err)
		}
	}
}

// TestClusterServeNodeRestart stops a serve node while its phrase is
// analysed in the cluster: the node keeps the session on disk with its
// phrase key, and once it is back on the same data directory the client's
// resume gets the result of the same job: one analysis, one phrase key.
func TestClusterServeNodeRestart(t *testing.T) {
	tc := newTestCluster(t, 2*time.Second, nil)
	w := tc.worker("worker-1")
	var logs1, logs2 servertest.LogBuffer
	conn := tc.conn("serve-1", &logs1)
	t.Cleanup(conn.Close)
	cfg := server.Config{Host: "127.0.0.1", DataDir: t.TempDir(), Logger: logs1.Logger(),
		Analyzer: "slow", Analyzers: map[string]pipeline.Analyzer{"slow": slowAnalyzer{}}, Jobs: conn}
	srv1, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := srv1.Addr()
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)

	video := counterVideo(t, ".avi", 8, 160, 120)
	out := filepath.Join(t.TempDir(), "result.json")
	type outcome struct {
		code int
		se   string
	}
	done := make(chan outcome, 1)
	go func() {
		code, _, se := run(t, "stream", "http://"+addr, "--video", video, "--signal", sampleSignal, "--session-id", "strip12",
			"--output", out, "--resume-timeout", "20", "-v")
		done <- outcome{code, se}
	}()
	logs1.WaitFor(t, "phrase submitted to the analysis cluster", "session_id=strip12")
	tc.began()
	sctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	srv1.Shutdown(sctx) // cuts the wait for the analysis: an error, by design
	logs1.WaitFor(t, "kept session on disk for recovery", "session_id=strip12", "phrase strip12")

	cfg.Port, cfg.Logger = port, logs2.Logger()
	srv2, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := srv2.Start(context.Background())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restart on port %d: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() { srv2.Close() })
	o := recv(t, done)
	if o.code != exitOK {
		t.Fatalf("stream: exit %d\n%s\nserver log:\n%s", o.code, o.se, logs2.String())
	}
	logs2.WaitFor(t, "waiting for the job submitted before the restart", "phrase=strip12")
	var got e2eResult
	data, err := os.ReadFile(out)
	if err != nil || json.Unmarshal(data, &got) != nil || got.Winner != "right" || got.SessionID != "strip12" {
		t.Errorf("result %s: %v", data, err)
	}
	if rec := waitRecord(t, conn, "strip12", natsjobs.StateDone); rec.Attempts != 1 {
		t.Errorf("record %+v: want one try", rec)
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if _, _, err := conn.Record(ctx, "strip12-2"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("a second phrase key after the restart: %v; want none", err)
	}
	if n := len(w.logs.Lines("job complete")); n != 1 {
		t.Errorf("%d analyses, want 1", n)
	}
}

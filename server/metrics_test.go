package server

import (
	"bufio"
	"bytes"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/referee-project/referee/protocol"
)

// scrape returns the samples of GET /metrics by their name with labels.
func (ts *testServer) scrape() map[string]float64 {
	ts.t.Helper()
	status, h, body := ts.request("GET", PathMetrics, "")
	if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		ts.t.Fatalf("GET /metrics: %d %s", status, h.Get("Content-Type"))
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			ts.t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetrics scrapes /metrics after a completed session, a refused frame
// and a session ended by a protocol error.
func TestMetrics(t *testing.T) {
	ts := startServer(t, nil)
	before := ts.scrape()
	for _, name := range []string{"referee_sessions_active", "referee_sessions_started_total", "referee_sessions_completed_total",
		"referee_frames_received_total", "referee_frames_received_bytes_total", "referee_spool_bytes", "referee_processing_duration_seconds_count"} {
		if v, ok := before[name]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0 on a new server", name, v, ok)
		}
	}
	if before["referee_spool_limit_bytes"] != DefaultMaxSpoolBytes {
		t.Errorf("referee_spool_limit_bytes %v", before["referee_spool_limit_bytes"])
	}
	build := `referee_build_info{goversion="` + runtime.Version() + `",version="test"}`
	if before[build] != 1 {
		t.Errorf("%s = %v, want 1", build, before[build])
	}
	for _, name := range []string{"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "go_goroutines"} {
		if _, ok := before[name]; !ok {
			t.Errorf("no %s: the process and Go collectors are not both registered", name)
		}
	}
	checkMetricNames(t, ts)

	c, f := ts.startedWithFrames("m1", 3)
	c.send(protocol.Frame{SessionID: "m1", FrameNumber: 3, Encoding: protocol.EncodingJPEG, Size: 5})
	c.sendBinary([]byte("hello"))
	c.expectError(protocol.CodeFrameProcessingFailed, "frame 3 rejected", true)
	expect[protocol.FrameAck](c)
	during := ts.scrape()
	if during["referee_sessions_active"] != 1 || during["referee_spool_bytes"] <= 0 || during["referee_frames_received_total"] != 4 {
		t.Errorf("during the session: active %v, spool bytes %v, frames %v; want 1, > 0, 4",
			during["referee_sessions_active"], during["referee_spool_bytes"], during["referee_frames_received_total"])
	}
	c.complete("m1", 3)

	bad := ts.dial()
	bad.startV1("m2")
	bad.sendBinary([]byte("x"))
	bad.expectFatal(protocol.CodeProtocolError, "got a binary message", websocket.ClosePolicyViolation)
	ts.waitIdle()

	var bytesSent float64
	for i := range 3 {
		bytesSent += float64(len(f.jpeg(i)))
	}
	want := map[string]float64{
		"referee_sessions_active":                                   0,
		"referee_sessions_started_total":                            2,
		"referee_sessions_completed_total":                          1,
		`referee_sessions_failed_total{reason="protocol_error"}`:    1,
		"referee_frames_received_total":                             4,
		"referee_frames_received_bytes_total":                       bytesSent + 5,
		"referee_spool_bytes":                                       0,
		"referee_processing_duration_seconds_count":                 1,
		`referee_errors_sent_total{code="FRAME_PROCESSING_FAILED"}`: 1,
		`referee_errors_sent_total{code="PROTOCOL_ERROR"}`:          1,
	}
	after := ts.scrape()
	for name, v := range want {
		if got, ok := after[name]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, v)
		}
	}
	if after["referee_processing_duration_seconds_sum"] <= 0 {
		t.Errorf("processing duration sum %v", after["referee_processing_duration_seconds_sum"])
	}
}

// checkMetricNames runs the Prometheus linter on everything /metrics
// serves: base-unit suffixes, _total on counters, help on every metric.
func checkMetricNames(t *testing.T, ts *testServer) {
	t.Helper()
	_, _, body := ts.request("GET", PathMetrics, "")
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
}

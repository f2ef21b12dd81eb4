package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/referee-project/referee/pipeline/videoio/videotest"
	"github.com/referee-project/referee/protocol"
)

func TestHealth(t *testing.T) {
	ts := startServer(t, nil)
	line := ts.logs.WaitFor(t, `msg=listening`)
	if !strings.Contains(line, "addr="+ts.srv.Addr()+" ") || strings.HasSuffix(ts.srv.Addr(), ":0") {
		t.Errorf("the listening line %q does not give the real address %s", line, ts.srv.Addr())
	}
	h := ts.health()
	if h.Version != "test" || h.ActiveSessions != 0 || !slices.Equal(h.Protocols, []string{"v1", "v2"}) || h.UptimeSeconds < 0 {
		t.Errorf("health %+v", h)
	}
	c := ts.dial()
	c.startV1("one")
	if h := ts.health(); h.ActiveSessions != 1 {
		t.Errorf("health says %d active sessions, want 1", h.ActiveSessions)
	}
}

// TestStats checks the field names of protocol-v1.md and the figures of a
// session in progress.
func TestStats(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxSessions = 4; c.MaxMemoryMB = 512 })
	c := ts.dial()
	id := c.startV1("stats")
	f := newFrames(t, testWidth, testHeight)
	for _, n := range []int{0, 1, 1, 3} {
		c.sendFrameV1(id, n, protocol.EncodingJPEG, f.jpeg(n))
	}
	var raw map[string]any
	ts.getJSON(PathStats, &raw)
	want := []string{"active_sessions", "max_sessions", "total_memory_mb", "max_memory_mb", "total_frames", "sessions"}
	if got := keys(raw); !slices.Equal(got, sorted(want)) {
		t.Errorf("stats fields %q, want %q", got, sorted(want))
	}
	sessions, _ := raw["sessions"].(map[string]any)
	sess, _ := sessions[id].(map[string]any)
	for _, k := range []string{"session_id", "fps", "width", "height", "expected_frames", "frames_received", "total_frames_received", "duplicate_frames", "out_of_order_frames", "missing_frames", "has_signal", "duration_seconds", "idle_seconds", "memory_mb", "completed", "aborted"} {
		if _, ok := sess[k]; !ok {
			t.Errorf("session stats lack %q: %v", k, sess)
		}
	}
	var st protocol.Stats
	ts.getJSON(PathStats, &st)
	ss := st.Sessions[id]
	if st.ActiveSessions != 1 || st.MaxSessions != 4 || st.MaxMemoryMB != 512 || st.TotalFrames != 3 || st.TotalMemoryMB != ss.MemoryMB {
		t.Errorf("stats %+v", st)
	}
	if ss.SessionID != id || ss.FPS != 15 || ss.Width != testWidth || ss.FramesReceived != 3 || ss.TotalFramesReceived != 4 ||
		ss.DuplicateFrames != 1 || ss.MissingFrames != 1 || ss.OutOfOrderFrames != 0 || ss.HasSignal || ss.Completed || ss.Aborted ||
		ss.Protocol != protocol.V1 || ss.MemoryMB <= 0 || ss.BytesReceived <= 0 {
		t.Errorf("session stats %+v", ss)
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return sorted(out)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestIdleTimeout: the reaper ends a session idle longer than the timeout,
// closes its connection saying why, and logs it.
func TestIdleTimeout(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.SessionTimeout = idleTimeout })
	c, _ := ts.startedWithFrames("quiet", 2)
	if ce := c.expectClose(); ce.Code != websocket.ClosePolicyViolation || ce.Text != "session quiet idle timeout" {
		t.Errorf("close %d %q", ce.Code, ce.Text)
	}
	ts.logs.WaitFor(t, `msg="removed session"`, "session_id=quiet", `reason="idle timeout: no message for`, "after 2 frames")
	if h := ts.health(); h.ActiveSessions != 0 {
		t.Errorf("%d active sessions after the timeout", h.ActiveSessions)
	}
	ts.checkServing()
	checkNoPartialArtifacts(t, ts.cfg)
}

func TestNewRejectsBadConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"port", Config{Port: 70000}, "port 70000: want 0 (any free port) to 65535"},
		{"sessions", Config{MaxSessions: -1}, "max sessions -1"},
		{"memory", Config{MaxMemoryMB: -5}, "max memory -5 MB"},
		{"timeout", Config{SessionTimeout: -time.Second}, "session timeout -1s"},
		{"frame limit", Config{MaxFrameBytes: 2 << 30}, "max frame bytes 2147483648"},
		{"signal limit", Config{MaxSignalBytes: 2 << 20}, "the phrase-log parser's limit"},
		{"analyzer", Config{Analyzer: "motion"}, `analyzer "motion": known analyzers are signal`},
		{"video format", Config{VideoFormat: "gif"}, `video format "gif"`},
		{"data dir is a file", Config{DataDir: file}, "create directory " + file},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cfg.DataDir == "" {
				tc.cfg.DataDir = t.TempDir()
			}
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New returned %v, want an error holding %q", err, tc.want)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	dir := t.TempDir()
	srv, err := New(Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := srv.cfg
	if c.OutputDir != filepath.Join(dir, "sessions") || c.MaxSessions != 10 || c.MaxMemoryMB != 2048 || c.SessionTimeout != 300*time.Second ||
		c.ReaperInterval != 10*time.Second || c.Analyzer != "signal" || c.MaxFrameBytes != 32<<20 || c.MaxSignalBytes != 1<<20 || c.Window != 64 {
		t.Errorf("defaults %+v", c)
	}
	for _, d := range []string{c.OutputDir, filepath.Join(dir, "spool")} {
		if info, err := os.Stat(d); err != nil || !info.IsDir() {
			t.Errorf("directory %s not created: %v", d, err)
		}
	}
	if srv.Addr() != "" {
		t.Errorf("Addr before Start is %q", srv.Addr())
	}
}

func TestStartPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	srv, err := New(Config{Host: "127.0.0.1", Port: port, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	err = srv.Start(context.Background())
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "listen on 127.0.0.1:"+strconv.Itoa(port)) {
		t.Errorf("Start returned %v, want \"address already in use\" naming the address", err)
	}
}

// part is one field of a multipart upload.
type part struct{ field, filename, content string }

func (ts *testServer) postAnalyze(contentType string, body io.Reader) (int, []byte) {
	ts.t.Helper()
	resp, err := ts.http.Post(ts.base+PathAnalyze, contentType, body)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp.StatusCode, data
}

func multipartBody(t testing.TB, parts []part) (string, *bytes.Buffer) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range parts {
		w, err := mw.CreateFormFile(p.field, p.filename)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, p.content)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), &body
}

func TestAnalyze(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxUploadBytes = 1 << 20 })
	videoPath := filepath.Join(t.TempDir(), "phrase.avi")
	videotest.WriteCounterVideo(t, videoPath, "", 15, 10, testWidth, testHeight)
	video, err := os.ReadFile(videoPath)
	if err != nil {
		t.Fatal(err)
	}
	sig := string(readPhrase(t, logSingleLeft))

	status, body := ts.postAnalyze(multipartBody(t, []part{{"video", "phrase.avi", string(video)}, {"signal", "phrase.txt", sig}}))
	if status != http.StatusOK {
		t.Fatalf("POST /analyze: %d %s", status, body)
	}
	var res map[string]any
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	id, _ := res["session_id"].(string)
	if !protocol.ValidSessionID(id) || res["status"] != "success" || res["winner"] != "left" {
		t.Errorf("result %s", body)
	}
	if _, ok := res["streaming_stats"]; ok {
		t.Errorf("an upload's result has streaming_stats: %s", body)
	}
	arts, _ := res["artifacts"].(map[string]any)
	if v, _ := arts["video"].(string); filepath.Dir(v) != res["artifact_dir"] {
		t.Errorf("the video %v is not in the artifact directory %v", arts["video"], res["artifact_dir"])
	}
	checkResult(t, res, seq(10))
	ts.logs.WaitFor(t, `msg="analysis complete"`, "session_id="+id, "winner=left")

	tests := []struct {
		name        string
		contentType string
		body        io.Reader
		status      int
		code        protocol.ErrorCode
		want        string
	}{
		{"missing video", "", nil, http.StatusBadRequest, protocol.CodeInvalidMessage, `missing the "video" field`},
		{"missing signal", "", nil, http.StatusBadRequest, protocol.CodeInvalidMessage, `missing the "signal" field`},
		{"empty video", "", nil, http.StatusBadRequest, protocol.CodeInvalidMessage, `the "video" field is empty`},
		{"signal that is not a phrase log", "", nil, http.StatusBadRequest, protocol.CodeInvalidMessage, "is not a scoring-box phrase log"},
		{"not multipart", "application/json", strings.NewReader(`{"video": "x"}`), http.StatusBadRequest, protocol.CodeInvalidMessage, "expected a multipart/form-data upload"},
		{"video that is not a video", "", nil, http.StatusUnprocessableEntity, protocol.CodeProcessingFailed, "video_reconstruction: "},
		{"phrase log as the video", "", nil, http.StatusUnprocessableEntity, protocol.CodeProcessingFailed, "/video.txt: cannot open video: it is text, not a video: FFmpeg reads it as ANSI art (codec ansi)"},
		{"upload over the limit", "", nil, http.StatusRequestEntityTooLarge, protocol.CodeLimitExceeded, "over the 1048576-byte limit"},
	}
	bodies := map[string][]part{
		"missing video":                   {{"signal", "phrase.txt", sig}},
		"missing signal":                  {{"video", "phrase.avi", string(video)}},
		"empty video":                     {{"video", "phrase.avi", ""}, {"signal", "phrase.txt", sig}},
		"signal that is not a phrase log": {{"video", "phrase.avi", string(video)}, {"signal", "phrase.txt", "hello\n"}},
		"video that is not a video":       {{"video", "phrase.avi", strings.Repeat("not a video ", 100)}, {"signal", "phrase.txt", sig}},
		"phrase log as the video":         {{"video", "phrase.txt", sig}, {"signal", "phrase.txt", sig}},
		"upload over the limit":           {{"video", "phrase.avi", strings.Repeat("x", 2<<20)}, {"signal", "phrase.txt", sig}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			contentType, body := tc.contentType, tc.body
			if body == nil {
				contentType, body = multipartBody(t, bodies[tc.name])
			}
			status, data := ts.postAnalyze(contentType, body)
			m, err := protocol.Decode(data)
			e, ok := m.(protocol.Error)
			if status != tc.status || err != nil || !ok || e.ErrorCode != tc.code || !strings.Contains(e.ErrorMessage, tc.want) {
				t.Errorf("answer %d %s, want %d with %s holding %q", status, data, tc.status, tc.code, tc.want)
			}
			ts.logs.WaitFor(t, `msg="analysis failed"`, "code="+string(tc.code))
		})
	}
	checkNoPartialArtifacts(t, ts.cfg)
	// The two phrases that failed in processing are kept, with why; the
	// refused uploads left nothing (checkNoPartialArtifacts).
	failed, err := filepath.Glob(filepath.Join(ts.cfg.OutputDir, "*", FailureFileName))
	if err != nil || len(failed) != 2 {
		t.Fatalf("failed phrases %v (%v), want the video that is not a video and the phrase log as the video", failed, err)
	}
	for _, path := range failed {
		data, err := os.ReadFile(path)
		var f Failure
		if err != nil || json.Unmarshal(data, &f) != nil || f.Stage != "video_reconstruction" {
			t.Errorf("%s of a video that is not a video: %s %v", FailureFileName, data, err)
		}
	}
	ts.health()
}

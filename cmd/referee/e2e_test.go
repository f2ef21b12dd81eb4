package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/referee-project/referee/pipeline/videoio/videotest"
	"github.com/referee-project/referee/server/servertest"

	"github.com/referee-project/referee/client"
	"github.com/referee-project/referee/server"
)

// startServer runs the real server on a loopback port and returns its base
// URL and log.
func startServer(t *testing.T, edit func(*server.Config)) (*server.Server, string, *servertest.LogBuffer) {
	t.Helper()
	logs := &servertest.LogBuffer{}
	cfg := server.Config{
		Host:    "127.0.0.1",
		DataDir: t.TempDir(),
		Logger:  logs.Logger(),
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv, "http://" + srv.Addr(), logs
}

// counterVideo writes a counter video and returns its path.
func counterVideo(t *testing.T, ext string, frames, w, h int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "phrase"+ext)
	videotest.WriteCounterVideo(t, path, "", benchFPS, frames, w, h)
	return path
}

const sampleSignal = "../../testdata/signal/20260204_213217_phrase119.txt"

// verifyVideo reads a reconstructed video back and checks it holds the
// counter frames 0..n-1 exactly once, in order.
func verifyVideo(t *testing.T, path string, n int) {
	t.Helper()
	rep, err := probeVideo(context.Background(), probeVideoOptions{Path: path, VerifySequence: true})
	if err != nil {
		t.Fatalf("reconstructed video: %v", err)
	}
	if seq := rep.SequenceReport; !seq.SequenceOK || seq.Frames != n {
		t.Errorf("reconstructed video %s: %+v, want %d frames in order", path, seq, n)
	}
}

type e2eResult struct {
	Status      string `json:"status"`
	SessionID   string `json:"session_id"`
	Winner      string `json:"winner"`
	Reason      string `json:"reason"`
	ArtifactDir string `json:"artifact_dir"`
	Artifacts   struct {
		Video      string `json:"video"`
		Signal     string `json:"signal"`
		ResultJSON string `json:"result_json"`
	} `json:"artifacts"`
	StreamingStats struct {
		FramesReceived int `json:"frames_received"`
	} `json:"streaming_stats"`
}

// TestEndToEnd streams generated videos with the real client to the real
// server and checks the result and the reconstructed video frame by frame.
func TestEndToEnd(t *testing.T) {
	_, url, logs := startServer(t, nil)
	cases := []struct {
		ext, encoding, protocol string
		frames, w, h            int
	}{
		{".avi", "jpeg", "v2", 10, 640, 480},
		{".mp4", "jpeg", "v1", 10, 640, 480},
		{".avi", "jpeg", "v2", 300, 640, 480},
		{".mp4", "jpeg", "v1", 300, 640, 480},
		{".mp4", "png", "v2", 10, 640, 480},
		{".avi", "png", "v1", 300, 320, 240},
		{".avi", "raw", "v2", 10, 640, 480},
		{".mp4", "raw", "v1", 300, 320, 240},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%s_%d_%s_%s", strings.TrimPrefix(tc.ext, "."), tc.frames, tc.encoding, tc.protocol)
		t.Run(name, func(t *testing.T) {
			video := counterVideo(t, tc.ext, tc.frames, tc.w, tc.h)
			res, err := client.Run(context.Background(), client.Options{
				Server: url, Video: video, Signal: sampleSignal,
				SessionID: name, Encoding: tc.encoding, Protocol: tc.protocol,
			})
			if err != nil {
				t.Fatalf("stream: %v\nserver log:\n%s", err, logs.String())
			}
			if res.Protocol != tc.protocol || res.Frames != tc.frames {
				t.Errorf("streamed %d frames with %s, want %d with %s", res.Frames, res.Protocol, tc.frames, tc.protocol)
			}
			var got e2eResult
			if err := json.Unmarshal(res.Raw, &got); err != nil {
				t.Fatal(err)
			}
			if got.Status != "success" || got.SessionID != name || got.Winner != "right" || got.StreamingStats.FramesReceived != tc.frames {
				t.Errorf("result %+v", got)
			}
			for _, p := range []string{got.Artifacts.Video, got.Artifacts.Signal, got.Artifacts.ResultJSON} {
				if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
					t.Errorf("artifact %q: %v", p, err)
				}
			}
			verifyVideo(t, got.Artifacts.Video, tc.frames)
			logs.WaitFor(t, "session_id="+name+" reason=completed")
		})
	}
}

// TestStreamCommandExitStatuses runs "referee stream" against the real
// server for each way it can end.
func TestStreamCommandExitStatuses(t *testing.T) {
	_, url, logs := startServer(t, func(c *server.Config) { c.MaxSessions = 1 })
	video := counterVideo(t, ".avi", 20, 320, 240)
	out := filepath.Join(t.TempDir(), "result.json")

	code, _, errs := run(t, "stream", url, "--video", video, "--signal", sampleSignal, "--output", out)
	if code != exitOK {
		t.Fatalf("good stream: exit %d: %s", code, errs)
	}
	var res e2eResult
	data, err := os.ReadFile(out)
	if err != nil || json.Unmarshal(data, &res) != nil || res.Winner != "right" {
		t.Errorf("result file %s: %v %s", out, err, data)
	}

	dir := t.TempDir()
	notVideo := filepath.Join(dir, "notes.mp4")
	must(t, os.WriteFile(notVideo, []byte("not a video"), 0o644))
	empty := filepath.Join(dir, "empty.txt")
	must(t, os.WriteFile(empty, nil, 0o644))
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing video", []string{"stream", url, "--video", filepath.Join(dir, "nope.avi"), "--signal", sampleSignal}, exitUsage, "Cannot open video"},
		{"not a video", []string{"stream", url, "--video", notVideo, "--signal", sampleSignal}, exitUsage, "Cannot open video"},
		{"missing signal", []string{"stream", url, "--video", video, "--signal", filepath.Join(dir, "nope.txt")}, exitUsage, "Signal file not found"},
		{"empty signal", []string{"stream", url, "--video", video, "--signal", empty}, exitUsage, "is empty"},
		{"server down", []string{"stream", "http://127.0.0.1:1", "--video", video, "--signal", sampleSignal, "--timeout", "2"}, exitUnavailable, "127.0.0.1:1"},
		{"bad encoding", []string{"stream", url, "--video", video, "--signal", sampleSignal, "--encoding", "gif"}, exitUsage, "gif"},
	}
	for _, tc := range cases {
		code, _, errs := run(t, tc.args...)
		lines := strings.Split(strings.TrimSpace(errs), "\n")
		last := lines[len(lines)-1]
		if code != tc.code || !strings.Contains(last, tc.want) {
			t.Errorf("%s: exit %d, last line %q; want exit %d and %q", tc.name, code, last, tc.code, tc.want)
		}
	}
	if strings.Count(logs.String(), "created session") != 1 {
		t.Errorf("local failures reached the server:\n%s", logs.String())
	}
}

// TestServerRefusalExitsOne fills the server's only session slot and checks
// that the next client exits 1 with the server's reason.
func TestServerRefusalExitsOne(t *testing.T) {
	_, url, _ := startServer(t, func(c *server.Config) { c.MaxSessions = 1 })
	video := counterVideo(t, ".avi", 300, 320, 240)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow := make(chan error, 1)
	go func() {
		_, err := client.Run(ctx, client.Options{Server: url, Video: video, Signal: sampleSignal, SessionID: "holder", FPS: 20})
		slow <- err
	}()
	waitHealth(t, url, `"active_sessions":1`)
	code, _, errs := run(t, "stream", url, "--video", video, "--signal", sampleSignal)
	if code != exitFailure || !strings.Contains(errs, "SESSION_START_FAILED") {
		t.Errorf("second session: exit %d, stderr %q; want exit 1 naming SESSION_START_FAILED", code, errs)
	}
	cancel()
	if err := <-slow; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled holder returned %v", err)
	}
}

// TestAbortAndServerClose checks both ways a live session can be cut: the
// client gives up (the server logs the client's reason, not "0 frames") and
// the server goes away (the client reports a lost connection, exit 3).
func TestAbortAndServerClose(t *testing.T) {
	video := counterVideo(t, ".avi", 300, 320, 240)

	_, url, logs := startServer(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := client.Run(ctx, client.Options{Server: url, Video: video, Signal: sampleSignal, SessionID: "quitter", FPS: 50})
		done <- err
	}()
	logs.WaitFor(t, "session_id=quitter frame=0")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("client returned %v, want context.Canceled", err)
	}
	logs.WaitFor(t, "aborted by the client: interrupted")

	srv, url2, logs2 := startServer(t, nil)
	go func() {
		_, err := client.Run(context.Background(), client.Options{Server: url2, Video: video, Signal: sampleSignal, SessionID: "cut", FPS: 50,
			ResumeTries: 2, ResumeBackoff: 50 * time.Millisecond})
		done <- err
	}()
	logs2.WaitFor(t, "session_id=cut frame=0")
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	err := <-done
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Kind != client.KindConnection ||
		!strings.HasPrefix(err.Error(), "Connection lost and not regained: 2 attempts to resume session cut in ") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Errorf("client returned %v, want a connection error naming 2 attempts and the refused connection", err)
	}
	if got := streamExit(err); exitCode(got) != exitUnavailable {
		t.Errorf("exit status %d for %v, want 3", exitCode(got), err)
	}
}

// waitHealth polls /health until its body holds want.
func waitHealth(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + "/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if bytes.Contains(bytes.ReplaceAll(body, []byte(" "), nil), []byte(want)) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health never held %s", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTextGivenAsVideo gives text that FFmpeg would play as ANSI art (the
// phrase log itself, a letter) as the video to every command that takes
// one: each exits 2 with one line saying it is text, nothing reaches the
// server, and the server goes on serving.
func TestTextGivenAsVideo(t *testing.T) {
	_, url, logs := startServer(t, nil)
	letter := filepath.Join(t.TempDir(), "letter.txt")
	must(t, os.WriteFile(letter, []byte(strings.Repeat("Dear fencers, the tournament starts at nine.\n", 20)), 0o644))
	const text = "it is text, not a video: FFmpeg reads it as ANSI art (codec ansi)"
	artifacts := filepath.Join(t.TempDir(), "analyze")
	for _, path := range []string{sampleSignal, letter} {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"probe-video", path}, "referee: video " + path + ": cannot open video: " + text},
			{[]string{"stream", url, "--video", path, "--signal", sampleSignal}, "referee: Cannot open video " + path + ": " + text + " (check the --video path: the phrase log goes to --signal)"},
			{[]string{"analyze", "--video", path, "--signal", sampleSignal, "--out", artifacts}, "referee: video " + path + ": cannot open video: " + text},
		} {
			code, out, errs := run(t, tc.args...)
			if code != exitUsage || errs != tc.want+"\n" {
				t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errs, tc.want)
			}
			if tc.args[0] == "probe-video" && out != "Opened: False\nRead frame: False\n" {
				t.Errorf("%v: stdout %q", tc.args, out)
			}
		}
	}
	if strings.Contains(logs.String(), "created session") {
		t.Errorf("text given as the video reached the server:\n%s", logs.String())
	}
	if _, err := os.Stat(artifacts); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("analyze made its artifact directory for text: %v", err)
	}
	video := counterVideo(t, ".avi", 20, 320, 240)
	out := filepath.Join(t.TempDir(), "result.json")
	if code, _, errs := run(t, "stream", url, "--video", video, "--signal", sampleSignal, "--output", out); code != exitOK {
		t.Fatalf("a good stream after the refusals: exit %d: %s", code, errs)
	}
	var res e2eResult
	if data, err := os.ReadFile(out); err != nil || json.Unmarshal(data, &res) != nil || res.Winner != "right" || res.StreamingStats.FramesReceived != 20 {
		t.Errorf("the good stream's result %s: %v %+v", out, err, res)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/referee-project/referee/pipeline/videoio/mjpegtest"
	"github.com/referee-project/referee/pipeline/videoio/videotest"
)

// startCamera serves n counter frames of 320x240 at fps as an IP camera's
// MJPEG stream, which then stops.
func startCamera(t *testing.T, n int, fps float64) string {
	t.Helper()
	cam := mjpegtest.Start(videotest.CounterJPEGs(t, n, 320, 240, 90), fps)
	t.Cleanup(cam.Close)
	return cam.URL
}

// runWithStdin is run with stdin reading from in.
func runWithStdin(t *testing.T, in string, args ...string) (int, string, string) {
	t.Helper()
	var out, errw bytes.Buffer
	code := execute(args, streams{In: strings.NewReader(in), Out: &out, Err: &errw})
	return code, out.String(), errw.String()
}

func decodeResult(t *testing.T, out string) e2eResult {
	t.Helper()
	var res e2eResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("result %q: %v", out, err)
	}
	return res
}

// TestStreamFromAnMJPEGCameraThatStops streams a network camera that stops
// after 30 frames of the 10 s asked: the session ends cleanly with those
// frames, in order, and a warning.
func TestStreamFromAnMJPEGCameraThatStops(t *testing.T) {
	_, url, _ := startServer(t, nil)
	cam := startCamera(t, 30, 30)
	code, out, errs := run(t, "stream", url, "--video", cam, "--duration", "10", "--signal", sampleSignal, "--session-id", "ipcam")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, `level=WARN msg="The video `+cam+` stopped after 30 frames (`) || !strings.Contains(errs, " s of the 10s asked): the session ends with what was captured") {
		t.Errorf("no warning that the camera stopped early:\n%s", errs)
	}
	res := decodeResult(t, out)
	if res.Winner != "right" || res.StreamingStats.FramesReceived != 30 {
		t.Errorf("result %+v", res)
	}
	verifyVideo(t, res.Artifacts.Video, 30)

	// --duration is for live sources, a URL among them, not for files.
	video := counterVideo(t, ".avi", 5, 320, 240)
	code, _, errs = run(t, "stream", url, "--video", video, "--duration", "3", "--signal", sampleSignal)
	if code != exitUsage || !strings.Contains(errs, "--duration applies to --camera and --video URL only") {
		t.Errorf("--duration with a file: exit %d, %q", code, errs)
	}
	code, _, errs = run(t, "stream", url, "--video", "http://127.0.0.1:1/video.mjpg", "--signal", sampleSignal)
	if code != exitUsage || !strings.Contains(errs, "Cannot open video http://127.0.0.1:1/video.mjpg: nothing answered there") {
		t.Errorf("a URL nothing answers: exit %d, %q", code, errs)
	}
}

// TestLiveCaptureReadsTheSignalWhenItEnds: the box writes its log only
// when the phrase ends, after the capture started; the client waits for it.
func TestLiveCaptureReadsTheSignalWhenItEnds(t *testing.T) {
	_, url, logs := startServer(t, nil)
	data, err := os.ReadFile(sampleSignal)
	must(t, err)
	dir := t.TempDir()

	// Written in two parts after the capture (0.5 s) ended.
	sig := filepath.Join(dir, "phrase119.txt")
	go func() {
		time.Sleep(800 * time.Millisecond)
		f, err := os.Create(sig)
		if err != nil {
			return
		}
		defer f.Close()
		f.Write(data[:len(data)/2])
		time.Sleep(300 * time.Millisecond)
		f.Write(data[len(data)/2:])
	}()
	code, out, errs := run(t, "stream", url, "--video", startCamera(t, 15, 30), "--signal", sig, "--session-id", "boxlate")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if res := decodeResult(t, out); res.Winner != "right" || res.StreamingStats.FramesReceived != 15 {
		t.Errorf("result %+v", res)
	}

	// A log that never comes: a clear error once --signal-wait is over,
	// and the server is told why.
	never := filepath.Join(dir, "never.txt")
	code, _, errs = run(t, "stream", url, "--video", startCamera(t, 5, 30), "--signal", never, "--signal-wait", "0.5", "--session-id", "boxsilent")
	want := "referee: Signal file " + never + " did not appear within 500ms of the end of the capture (check that the scoring box writes its phrase log there, or raise --signal-wait)\n"
	if lines := strings.SplitAfter(errs, "\n"); code != exitUsage || lines[len(lines)-2] != want {
		t.Errorf("exit %d, stderr %q; want exit 2 ending with %q", code, errs, want)
	}
	logs.WaitFor(t, "session_id=boxsilent", "aborted by the client: Signal file "+never+" did not appear")

	// Only the folder is checked at the start, and it must be there.
	missing := filepath.Join(dir, "no-such-folder", "p.txt")
	code, _, errs = run(t, "stream", url, "--video", startCamera(t, 5, 30), "--signal", missing, "--session-id", "nofolder")
	if code != exitUsage || !strings.Contains(errs, "Cannot read the folder of the signal file "+missing+": ") {
		t.Errorf("missing folder: exit %d, %q", code, errs)
	}
	if strings.Contains(logs.String(), "session_id=nofolder") {
		t.Errorf("a missing signal folder reached the server")
	}
}

// TestSignalFromStdin reads the phrase log from standard input, for a
// file before the session and for a live capture after it.
func TestSignalFromStdin(t *testing.T) {
	_, url, _ := startServer(t, nil)
	data, err := os.ReadFile(sampleSignal)
	must(t, err)
	video := counterVideo(t, ".avi", 10, 320, 240)
	for name, source := range map[string]string{"file": video, "camera": startCamera(t, 10, 30)} {
		code, out, errs := runWithStdin(t, string(data), "stream", url, "--video", source, "--signal", "-", "--session-id", "stdin-"+name)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", name, code, errs)
		}
		if res := decodeResult(t, out); res.Winner != "right" || res.StreamingStats.FramesReceived != 10 {
			t.Errorf("%s: result %+v", name, res)
		}
	}
	code, _, errs := runWithStdin(t, "hello\n", "stream", url, "--video", video, "--signal", "-")
	if code != exitUsage || !strings.Contains(errs, "Signal from standard input is not a scoring-box phrase log (check what is piped in)") {
		t.Errorf("prose on stdin: exit %d, %q", code, errs)
	}
}

// TestCtrlCEndsCaptureWith130 interrupts a live capture as Ctrl-C does:
// the server hears why, and the exit status is 130.
func TestCtrlCEndsCaptureWith130(t *testing.T) {
	_, url, logs := startServer(t, nil)
	cam := startCamera(t, 600, 30)
	type outcome struct {
		code      int
		out, errs string
	}
	done := make(chan outcome, 1)
	go func() {
		code, out, errs := run(t, "stream", url, "--video", cam, "--duration", "20", "--signal", sampleSignal, "--session-id", "ctrlc")
		done <- outcome{code, out, errs}
	}()
	// execute catches SIGINT from its start, before any session exists.
	logs.WaitFor(t, "session_id=ctrlc frame=0")
	must(t, syscall.Kill(os.Getpid(), syscall.SIGINT))
	var got outcome
	select {
	case got = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the client did not stop on SIGINT")
	}
	lines := strings.Split(strings.TrimSpace(got.errs), "\n")
	if got.code != exitInterrupted || !strings.HasPrefix(lines[len(lines)-1], "referee: interrupted after ") || got.out != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 130 and an interrupted line", got.code, got.out, got.errs)
	}
	logs.WaitFor(t, "session_id=ctrlc", "aborted by the client: interrupted")
}

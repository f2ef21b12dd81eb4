package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/referee-project/referee/server"
)

// fakePoseTool builds the pose package's stand-in estimator (it writes a
// synthetic scenario's true positions) into dir.
func fakePoseTool(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "fakepose")
	if out, err := exec.Command("go", "build", "-o", path, "../../pipeline/pose/testdata/fakepose").CombinedOutput(); err != nil {
		t.Fatalf("build fakepose: %v: %s", err, out)
	}
	return path
}

func TestAnalyzeWithThePoseAnalyzer(t *testing.T) {
	dir := t.TempDir()
	fake := fakePoseTool(t, dir)
	video, sig := genPhrase(t, dir, "right-attack-left-retreat")
	code, out, errs := run(t, "analyze", "--video", video, "--signal", sig, "--out", filepath.Join(dir, "out"), "--json",
		"--analyzer", "pose", "--pose-cmd", fake+" {frames} {fps} {out} right-attack-left-retreat")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var res struct {
		Winner    string            `json:"winner"`
		Analyzer  string            `json:"analyzer"`
		Artifacts map[string]string `json:"artifacts"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if res.Winner != "right" {
		t.Errorf("winner %q, want right", res.Winner)
	}
	for _, name := range []string{"tracks", "timeline_png", "overlay_video"} {
		if _, err := os.Stat(res.Artifacts[name]); err != nil {
			t.Errorf("artifact %s: %v", name, err)
		}
	}
}

func TestAnalyzePoseToolFailureExits1(t *testing.T) {
	dir := t.TempDir()
	video, sig := genPhrase(t, dir, "left-attack-right-pause")
	script := filepath.Join(dir, "pose.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'model file missing' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, errs := run(t, "analyze", "--video", video, "--signal", sig, "--out", filepath.Join(dir, "out"),
		"--analyzer", "pose", "--pose-cmd", script+" {frames} {fps} {out}")
	if code != exitFailure || !strings.Contains(errs, "pose tool pose.sh failed: exit status 1; stderr: model file missing") {
		t.Errorf("exit %d, stderr %q: want 1 and the tool's stderr", code, errs)
	}
	code, _, errs = run(t, "analyze", "--video", video, "--signal", sig, "--analyzer", "pose", "--pose-cmd", "pose {fps} {out}")
	if want := `pose analyzer: the command line "pose {fps} {out}" gives the tool neither {frames} nor {video}`; code != exitUsage || !strings.Contains(errs, want) {
		t.Errorf("exit %d, stderr %q: want 2 and %q", code, errs, want)
	}
	code, _, errs = run(t, "analyze", "--video", video, "--signal", sig, "--analyzer", "pose", "--pose-cmd", "referee-no-such-pose-tool {frames} {fps} {out}")
	if want := "pose tool referee-no-such-pose-tool is not installed (make build installs the project's beside referee; or set --pose-cmd): "; code != exitUsage || !strings.Contains(errs, want) {
		t.Errorf("exit %d, stderr %q: want 2 and %q", code, errs, want)
	}
	code, _, errs = run(t, "analyze", "--video", video, "--signal", sig, "--analyzer", "pose", "--pose-cmd", "")
	if want := "--analyzer pose needs --pose-cmd, the pose estimator to run"; code != exitUsage || !strings.Contains(errs, want) {
		t.Errorf("exit %d, stderr %q: want 2 and %q", code, errs, want)
	}
}

func TestProbePose(t *testing.T) {
	dir := t.TempDir()
	fake := fakePoseTool(t, dir)
	code, out, errs := run(t, "probe-pose", "--pose-cmd", fake+" {frames} {fps} {out} left-attack-right-pause 2",
		"--frames", "12", "--size", "320x240", "--fps", "30", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep probePoseReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if rep.Check != nil || rep.Frames != 12 || rep.Width != 320 || rep.Poses != 6 || rep.PoseFPS != 15 ||
		rep.LeftFound != 6 || rep.RightFound != 6 || !(rep.Seconds > 0) {
		t.Errorf("report %+v: want no check, 12 frames of 320 posed as 6 at 15 fps, both found in all", rep)
	}
}

func TestProbePoseSaysWhenTheStageIsMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "referee-pose")
	for _, c := range []struct{ cmd, want string }{
		{missing + " {frames} {fps} {out}", "the pose stage does not run here: pose tool referee-pose is not installed: "},
		{"referee-no-such-pose-tool {frames} {fps} {out}", "pose tool referee-no-such-pose-tool is not installed: "},
	} {
		code, _, errs := run(t, "probe-pose", "--pose-cmd", c.cmd, "--frames", "4", "--size", "64x48")
		if code != exitFailure || !strings.Contains(errs, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 1 and %q", c.cmd, code, errs, c.want)
		}
	}
}

// TestServePoseAnalyzer streams a phrase to the real server deciding with
// the pose analyzer: a tool that works gives the phrase's call, one that
// crashes ends the session with PROCESSING_FAILED and its stderr.
func TestServePoseAnalyzer(t *testing.T) {
	dir := t.TempDir()
	fake := fakePoseTool(t, dir)
	crash := filepath.Join(dir, "crash.sh")
	if err := os.WriteFile(crash, []byte("#!/bin/sh\necho 'cannot load movenet-lightning.json' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	video, sig := genPhrase(t, dir, "right-attack-left-retreat")
	for _, c := range []struct {
		cmd, want string
		code      int
	}{
		{fake + " {frames} {fps} {out} right-attack-left-retreat", `"winner": "right"`, 0},
		{crash + " {frames} {fps} {out}", "PROCESSING_FAILED", exitFailure},
	} {
		analyzers, err := newAnalyzers(analyzerOptions{Analyzer: "pose", PoseCmd: c.cmd})
		if err != nil {
			t.Fatal(err)
		}
		_, url, _ := startServer(t, func(cfg *server.Config) { cfg.Analyzer, cfg.Analyzers = "pose", analyzers })
		code, out, errs := run(t, "stream", url, "--video", video, "--signal", sig)
		if code != c.code || !strings.Contains(out+errs, c.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %d and %q", c.cmd, code, out, errs, c.code, c.want)
		}
		if c.code != 0 && !strings.Contains(errs, "pose tool crash.sh failed: exit status 1; stderr: cannot load movenet-lightning.json") {
			t.Errorf("stderr %q does not quote the tool's", errs)
		}
	}
}

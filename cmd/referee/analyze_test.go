package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/referee-project/referee/pipeline/synth"
)

// TestAnalyzeCallsEveryScenario generates every scenario with
// gen-test-video (video and signal) and requires runAnalyze to give the
// documented call, with the motion analyzer's artifacts in the result.
func TestAnalyzeCallsEveryScenario(t *testing.T) {
	dir := t.TempDir()
	for _, sc := range synth.Scenarios() {
		video := filepath.Join(dir, sc.Name+".avi")
		sig := filepath.Join(dir, sc.Name+".txt")
		if code, _, errs := run(t, "gen-test-video", video, "--pattern", "fencers", "--scenario", sc.Name,
			"--signal", sig, "--fps", "15", "--noise", "10"); code != 0 {
			t.Fatalf("gen-test-video %s: exit %d: %s", sc.Name, code, errs)
		}
		var out bytes.Buffer
		opts := analyzeOptions{
			analyzerOptions: analyzerOptions{Analyzer: "motion"},
			Video:           video, Signal: sig, OutDir: filepath.Join(dir, sc.Name), JSON: true, Out: &out,
		}
		if err := runAnalyze(context.Background(), opts); err != nil {
			t.Fatalf("%s: %v", sc.Name, err)
		}
		var res struct {
			Winner     string            `json:"winner"`
			Reason     string            `json:"reason"`
			Confidence float64           `json:"confidence"`
			Artifacts  map[string]string `json:"artifacts"`
			Timeline   struct {
				Events []struct {
					Frame int `json:"frame"`
				} `json:"events"`
			} `json:"timeline"`
		}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("%s: output %q: %v", sc.Name, out.String(), err)
		}
		if res.Winner != sc.Call {
			t.Errorf("%s: winner %q (%s), want %q", sc.Name, res.Winner, res.Reason, sc.Call)
		}
		// The tracks the video analysis left decide the phrase again,
		// without the video, to the same call.
		var again bytes.Buffer
		opts = analyzeOptions{Tracks: res.Artifacts["tracks"], Signal: sig, OutDir: filepath.Join(dir, sc.Name+"-tracks"), JSON: true, Out: &again}
		if err := runAnalyze(context.Background(), opts); err != nil {
			t.Fatalf("%s: analyze --tracks: %v", sc.Name, err)
		}
		var res2 struct {
			Winner     string            `json:"winner"`
			Reason     string            `json:"reason"`
			Confidence float64           `json:"confidence"`
			Artifacts  map[string]string `json:"artifacts"`
		}
		if err := json.Unmarshal(again.Bytes(), &res2); err != nil {
			t.Fatal(err)
		}
		if res2.Winner != res.Winner || res2.Reason != res.Reason || res2.Confidence != res.Confidence {
			t.Errorf("%s: from the tracks %s %.2f %q; from the video %s %.2f %q", sc.Name, res2.Winner, res2.Confidence, res2.Reason, res.Winner, res.Confidence, res.Reason)
		}
		if _, err := os.Stat(res2.Artifacts["timeline_png"]); err != nil {
			t.Errorf("%s: analyze --tracks left no timeline.png: %v", sc.Name, err)
		}
		for _, name := range []string{"video", "signal", "result_json", "timeline_png", "overlay_video", "touch_clip", "tracks"} {
			if _, err := os.Stat(res.Artifacts[name]); err != nil {
				t.Errorf("%s: artifact %s: %v", sc.Name, name, err)
			}
		}
		if len(res.Timeline.Events) == 0 {
			t.Errorf("%s: result has no timeline events", sc.Name)
		}
	}
}

func TestAnalyzeSummaryAndSignalAnalyzer(t *testing.T) {
	dir := t.TempDir()
	video, sig := genPhrase(t, dir, "simultaneous-attack")
	var out bytes.Buffer
	opts := analyzeOptions{analyzerOptions: analyzerOptions{Analyzer: "signal"}, Video: video, Signal: sig, OutDir: filepath.Join(dir, "out"), Out: &out}
	if err := runAnalyze(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	want := "winner:     undecided\nconfidence: 0.00\nreason:     double touch: right-of-way needs the video analysis\nartifacts:  " + filepath.Join(dir, "out") + "\n            result.json, video.avi, signal.txt\n"
	if out.String() != want {
		t.Errorf("summary:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestAnalyzeRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	video, sig := genPhrase(t, dir, "left-attack-right-pause")
	notLog := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notLog, []byte("shopping list\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.avi")
	for _, c := range []struct {
		name string
		opts analyzeOptions
		want string
	}{
		{"no video", analyzeOptions{Signal: sig, analyzerOptions: analyzerOptions{Analyzer: "motion"}}, "give --signal and one of --video or --tracks"},
		{"video and tracks", analyzeOptions{Video: video, Tracks: video, Signal: sig, analyzerOptions: analyzerOptions{Analyzer: "motion"}}, "give --signal and one of --video or --tracks"},
		{"bad analyzer", analyzeOptions{Video: video, Signal: sig, analyzerOptions: analyzerOptions{Analyzer: "yolo"}}, `--analyzer "yolo": want motion, signal, external, pose`},
		{"external without command", analyzeOptions{Video: video, Signal: sig, analyzerOptions: analyzerOptions{Analyzer: "external"}}, "--analyzer external needs --analyzer-cmd, the command to run"},
		{"external without out", analyzeOptions{Video: video, Signal: sig, analyzerOptions: analyzerOptions{Analyzer: "external", AnalyzerCmd: "rw {video}"}}, `external analyzer: the command line "rw {video}" has no {out} placeholder for the result file (check --analyzer-cmd)`},
		{"external with a blank command", analyzeOptions{Video: video, Signal: sig, analyzerOptions: analyzerOptions{Analyzer: "external", AnalyzerCmd: "  "}}, "external analyzer: the command line is empty (check --analyzer-cmd)"},
		{"pose with a blank command", analyzeOptions{Video: video, Signal: sig, analyzerOptions: analyzerOptions{Analyzer: "pose", PoseCmd: " "}}, "pose analyzer: the command line is empty (check --pose-cmd)"},
		{"missing signal", analyzeOptions{Video: video, Signal: missing, analyzerOptions: analyzerOptions{Analyzer: "motion"}}, "read the signal: open " + missing + ": no such file or directory"},
		{"not a log", analyzeOptions{Video: video, Signal: notLog, analyzerOptions: analyzerOptions{Analyzer: "motion"}}, "signal " + notLog + ": "},
		{"missing video", analyzeOptions{Video: missing, Signal: sig, analyzerOptions: analyzerOptions{Analyzer: "motion"}}, "video " + missing + " does not exist"},
	} {
		out := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
		c.opts.OutDir, c.opts.Out = out, &bytes.Buffer{}
		err := runAnalyze(context.Background(), c.opts)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || exitCode(err) != exitUsage {
			t.Errorf("%s: error %v (exit %d), want exit 2 and %q", c.name, err, exitCode(err), c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: artifact directory created for a rejected input", c.name)
		}
	}
}

func TestAnalyzeExternalFailureExits1(t *testing.T) {
	dir := t.TempDir()
	video, sig := genPhrase(t, dir, "left-attack-right-pause")
	script := filepath.Join(dir, "rw.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'no GPU found' >&2\nexit 4\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	opts := analyzeOptions{
		analyzerOptions: analyzerOptions{Analyzer: "external", AnalyzerCmd: script + " {video} {signal} {out}"},
		Video:           video, Signal: sig, OutDir: filepath.Join(dir, "out"), Out: &bytes.Buffer{},
	}
	err := runAnalyze(context.Background(), opts)
	if err == nil || exitCode(err) != exitFailure || !strings.Contains(err.Error(), "external analyzer rw.sh failed: exit status 4; stderr: no GPU found") {
		t.Errorf("error %v (exit %d), want exit 1 with the command's stderr", err, exitCode(err))
	}
}

// genPhrase writes a 15 fps fencers video of the scenario and its phrase log
// into dir with "referee gen-test-video", and returns their paths.
func genPhrase(t *testing.T, dir, scenario string) (video, sig string) {
	t.Helper()
	video, sig = filepath.Join(dir, "p.avi"), filepath.Join(dir, "p.txt")
	if code, _, errs := run(t, "gen-test-video", video, "--pattern", "fencers", "--scenario", scenario, "--signal", sig, "--fps", "15"); code != 0 {
		t.Fatal(errs)
	}
	return video, sig
}

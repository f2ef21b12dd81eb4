package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/referee-project/referee/pipeline/synth"
)

// TestHelpNamesOnlyRealScenarios reads every --scenario in every command's
// help and examples, and in the README, and wants each to exist.
func TestHelpNamesOnlyRealScenarios(t *testing.T) {
	re := regexp.MustCompile(`--scenario[ =]([a-z0-9-]+)`)
	texts := map[string]string{}
	walk(newRootCmd(&app{}), func(c *cobra.Command) { texts[c.CommandPath()] = c.Long + "\n" + c.Example })
	texts["README.md"] = readFile(t, filepath.Join("..", "..", "README.md"))
	found := 0
	for where, text := range texts {
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			found++
			if _, err := synth.ScenarioByName(m[1]); err != nil {
				t.Errorf("%s names scenario %q: %v", where, m[1], err)
			}
		}
	}
	if found < 2 {
		t.Errorf("found %d scenarios named in the help and README; the regexp is wrong", found)
	}
}

func TestScenarioNeedsPatternFencers(t *testing.T) {
	dir := t.TempDir()
	code, _, errs := run(t, "gen-test-video", filepath.Join(dir, "x.avi"), "--pattern", "counter", "--scenario", "simultaneous-attack")
	if want := "referee: --scenario simultaneous-attack applies to --pattern fencers only; this is --pattern counter\n"; code != exitUsage || errs != want {
		t.Errorf("exit %d, stderr %q; want 2 and %q", code, errs, want)
	}
	// Without --scenario, fencers still play the default script.
	code, out, errs := run(t, "gen-test-video", filepath.Join(dir, "y.avi"), "--pattern", "fencers", "--width", "96", "--height", "96", "--frames", "2")
	if code != exitOK || !strings.HasPrefix(out, "Created ") {
		t.Errorf("fencers without --scenario: exit %d, %q %q", code, out, errs)
	}
}

// TestVerifySequenceSaysThereIsNoCounterCode probes a noise video, which
// decodes well but carries no counter code.
func TestVerifySequenceSaysThereIsNoCounterCode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "noise.avi")
	if code, _, errs := run(t, "gen-test-video", path, "--frames", "5"); code != exitOK {
		t.Fatalf("gen-test-video: %s", errs)
	}
	code, out, errs := run(t, "probe-video", path, "--verify-sequence")
	want := "referee: " + path + ` has no counter code in any of its 5 frames: --verify-sequence checks videos made from "referee gen-test-video --pattern counter" (use --decode-all for other videos)` + "\n"
	if code != exitUsage || errs != want {
		t.Errorf("exit %d, stderr %q; want 2 and %q", code, errs, want)
	}
	if strings.Contains(out, "Undecodable") || !strings.Contains(out, "Decoded frames: 5") {
		t.Errorf("stdout says the frames are undecodable, or not that 5 decoded:\n%s", out)
	}
}

// TestProbeSignalFrameRateMatchesGenTestVideo: a log written beside a
// generated video is read at the video's rate unless told otherwise, and
// the timeline says which rate it used.
func TestProbeSignalFrameRateMatchesGenTestVideo(t *testing.T) {
	defaults := map[string]string{}
	walk(newRootCmd(&app{}), func(c *cobra.Command) {
		if f := c.Flags().Lookup("fps"); f != nil {
			defaults[c.Name()] = f.DefValue
		}
	})
	if defaults["probe-signal"] != defaults["gen-test-video"] {
		t.Errorf("--fps defaults: probe-signal %s, gen-test-video %s", defaults["probe-signal"], defaults["gen-test-video"])
	}
	code, out, errs := run(t, "probe-signal", sampleSignal)
	if code != exitOK || !strings.Contains(out, "video frame at "+defaults["gen-test-video"]+" fps") {
		t.Errorf("exit %d (%s); the timeline does not say it used %s fps:\n%s", code, errs, defaults["gen-test-video"], out)
	}
	// 3.198 s is frame 96 at 30 fps (frame 48 at 15).
	if !strings.Contains(out, "3.198s      96  valid hit registered") {
		t.Errorf("the hit is not at frame 96:\n%s", out)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

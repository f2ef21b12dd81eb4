package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/referee-project/referee/pipeline/rightofway"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/tracks"
)

// sharedTracks holds the 113 refereed sabre phrases as tracks.
var sharedTracks = filepath.Join("..", "..", "..", "shared", "testdata", "tracks")

func TestAnalyzeTracksRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	sig := filepath.Join(sharedTracks, "20251020_210329_phrase09.txt")
	pose := "[" + strings.TrimSuffix(strings.Repeat("[1,2],", 17), ",") + "]"
	for _, c := range []struct {
		name, data, want string
	}{
		{"malformed", `{"format":"referee-tracks/1","fps":15,"units":"m","left":[` + pose, "malformed tracks file: invalid JSON"},
		{"zero fps", `{"format":"referee-tracks/1","fps":0,"units":"m","left":[],"right":[]}`, "malformed tracks file: fps 0 is not a positive number"},
		{"fps not a number", `{"format":"referee-tracks/1","fps":"fast","units":"m","left":[],"right":[]}`, "malformed tracks file: json: cannot unmarshal string"},
		{"unequal lengths", `{"format":"referee-tracks/1","fps":15,"units":"m","left":[null],"right":[]}`, "malformed tracks file: left has 1 frames and right 0; both need one entry per frame"},
		{"18 keypoints", `{"format":"referee-tracks/1","fps":15,"units":"m","left":[[` + strings.TrimSuffix(strings.Repeat("[1,2],", 18), ",") + `]],"right":[null]}`, "malformed tracks file: left frame 0: 18 keypoints: want 17 (COCO order)"},
		{"not tracks", "Phrase 9 initialized at 2025-10-20 21:03:29\n", "not a referee-tracks/1 file: not a JSON object"},
		{"a result", `{"status":"success","winner":"left"}`, `not a referee-tracks/1 file: it has no "format" field`},
		{"one frame", `{"format":"referee-tracks/1","fps":15,"units":"m","left":[null],"right":[null]}`, "1 frames; a decision needs at least 2"},
		{"pixels of no scale", `{"format":"referee-tracks/1","fps":15,"units":"px","left":[null,null],"right":[null,null]}`, "pixel tracks without m_per_px, and no frame shows a fencer's eyes and ankles to measure the scale from: add m_per_px"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".json")
			if err := os.WriteFile(path, []byte(c.data), 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out-"+filepath.Base(path))
			code, stdout, stderr := run(t, "analyze", "--tracks", path, "--signal", sig, "--out", out)
			want := "referee: tracks " + path + ": " + c.want
			if code != exitUsage || !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 || stdout != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit 2 and one line starting %q", code, stderr, stdout, want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("an artifact directory was made for a refused file")
			}
		})
	}
}

func TestAnalyzeTracksOfASharedPhrase(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	name := filepath.Join(sharedTracks, "20251021_205541_phrase10")
	code, stdout, stderr := run(t, "analyze", "--tracks", name+".tracks.json", "--signal", name+".txt", "--out", out, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res struct {
		Status    string            `json:"status"`
		Winner    string            `json:"winner"`
		Artifacts map[string]string `json:"artifacts"`
		Timeline  struct {
			Frames int `json:"frames"`
			Left   struct {
				PositionM []*float64 `json:"position_m"`
			} `json:"left"`
		} `json:"timeline"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	tr, err := tracks.ReadFile(name + ".tracks.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := signal.ParseFile(name + ".txt")
	if err != nil {
		t.Fatal(err)
	}
	want, err := rightofway.Decide(tr, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "success" || res.Winner != want.Decision.Winner || res.Winner == "undecided" {
		t.Errorf("status %q winner %q, want the engine's %q", res.Status, res.Winner, want.Decision.Winner)
	}
	if res.Timeline.Frames != len(res.Timeline.Left.PositionM) || res.Timeline.Frames < 10 {
		t.Errorf("timeline of %d frames with %d positions", res.Timeline.Frames, len(res.Timeline.Left.PositionM))
	}
	for _, a := range []string{"tracks", "timeline_png", "signal", "result_json"} {
		if _, err := os.Stat(res.Artifacts[a]); err != nil {
			t.Errorf("artifact %s: %v", a, err)
		}
	}
	if res.Artifacts["video"] != "" {
		t.Errorf("a phrase without video lists video %q", res.Artifacts["video"])
	}
}

// TestNoCallWithoutEvidence: a video that stops long before the hit, and a
// video with no fencers at all, are undecided with confidence 0 in the
// JSON, not called.
func TestNoCallWithoutEvidence(t *testing.T) {
	dir := t.TempDir()
	_, sig := genPhrase(t, dir, "simultaneous-attack")
	short := filepath.Join(dir, "short.avi")
	if code, _, errs := run(t, "gen-test-video", short, "--pattern", "fencers", "--scenario", "simultaneous-attack", "--frames", "5", "--fps", "15"); code != 0 {
		t.Fatal(errs)
	}
	counter := filepath.Join(dir, "counter.avi")
	if code, _, errs := run(t, "gen-test-video", counter, "--pattern", "counter", "--frames", "45", "--fps", "15", "--width", "640", "--height", "480"); code != 0 {
		t.Fatal(errs)
	}
	for _, c := range []struct{ name, video, reason string }{
		{"video stops before the hit", short, "The tracks end at 0.27 s, 1.53 s before the hit at 1.80 s"},
		{"no fencers", counter, "fencer is not seen in 16 of the 16 frames before the hit at 1.80 s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := run(t, "analyze", "--video", c.video, "--signal", sig, "--out", filepath.Join(dir, "out-"+filepath.Base(c.video)), "--json")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var res map[string]any
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatal(err)
			}
			conf, present := res["confidence"]
			if res["winner"] != "undecided" || !present || conf != 0.0 || !strings.Contains(res["reason"].(string), c.reason) {
				t.Errorf("winner %v confidence %v (present %v) reason %q; want undecided, 0, %q", res["winner"], conf, present, res["reason"], c.reason)
			}
		})
	}
}

func TestGenTestVideoCutShortLogsNothingAfterItsEnd(t *testing.T) {
	dir := t.TempDir()
	video, sig := filepath.Join(dir, "p.avi"), filepath.Join(dir, "p.txt")
	// simultaneous-attack hits at 1.80 s; 20 frames at 15 fps end at 1.33 s.
	if code, _, errs := run(t, "gen-test-video", video, "--pattern", "fencers", "--scenario", "simultaneous-attack", "--frames", "20", "--fps", "15", "--signal", sig); code != 0 {
		t.Fatal(errs)
	}
	p, err := signal.ParseFile(sig)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range p.Events {
		if ev.TimeS > 20.0/15+1e-9 {
			t.Errorf("event %+v after the video's end at %.3f s", ev, 20.0/15)
		}
	}
	if p.FirstHitS != nil || p.Box == nil || p.Box.Left || p.Box.Right {
		t.Errorf("first hit %v, box %+v: want no hit and no light", p.FirstHitS, p.Box)
	}
}

func TestEvalOfTheSharedPhrases(t *testing.T) {
	start := time.Now()
	code, stdout, stderr := run(t, "eval", sharedTracks, "--cv", "day", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// Wide margin: the target is 5 s on 2 cores; this catches a gross
	// regression only.
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("eval took %v", d)
	}
	var rep struct {
		CV      string `json:"cv"`
		Overall struct {
			Calls, Agree, Abstentions, Undecided, Phrases int
			NoTouch                                       int `json:"no_touch"`
		} `json:"overall"`
		InSample  *struct{ Calls, Agree int }      `json:"in_sample"`
		ByDay     map[string]struct{ Phrases int } `json:"by_day"`
		Confusion map[string]map[string]int
		Calls     []struct {
			Name, Referee, Winner, Reason string
			Agrees                        bool
		}
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	o := rep.Overall
	if rep.CV != "day" || o.Phrases != 113 || o.Calls != 105 || o.Abstentions != 8 || len(rep.ByDay) != 7 || rep.InSample == nil || rep.InSample.Calls != 105 {
		t.Fatalf("report: cv %q, overall %+v, %d days, in-sample %v", rep.CV, o, len(rep.ByDay), rep.InSample)
	}
	// The README's figure is 93 of 105 leaving one day out (88.6%; the
	// issue's bar is 85%, 90 of 105): fail under it.
	if o.Agree < 93 {
		t.Errorf("left/right calls agreeing with the referee, one day left out: %d of %d, under the README's 93", o.Agree, o.Calls)
	}
	agree, sum := 0, 0
	for _, c := range rep.Calls {
		if c.Agrees && (c.Referee == "left" || c.Referee == "right") {
			agree++
		}
		if c.Reason == "" {
			t.Errorf("%s: no reason", c.Name)
		}
	}
	for _, row := range rep.Confusion {
		for _, n := range row {
			sum += n
		}
	}
	if agree != o.Agree || sum != 113 || rep.Confusion["left"]["left"]+rep.Confusion["right"]["right"] != o.Agree {
		t.Errorf("agreement %d, confusion total %d and diagonal %d disagree with the overall %d",
			agree, sum, rep.Confusion["left"]["left"]+rep.Confusion["right"]["right"], o.Agree)
	}
}

// TestReadmeShowsTodaysEval keeps the README's "How well does it call?"
// true: its copy of the eval's tables, from the agreement to the last
// recording day, must be what eval prints today.
func TestReadmeShowsTodaysEval(t *testing.T) {
	code, stdout, stderr := run(t, "eval", sharedTracks, "--cv", "day")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	from := strings.Index(stdout, "left/right calls agreeing")
	to := strings.Index(stdout, "\ndisagreements")
	if from < 0 || to < from {
		t.Fatalf("eval's output has no agreement and disagreements:\n%s", stdout)
	}
	tables := stdout[from:to]
	if readme := readFile(t, filepath.Join("..", "..", "README.md")); !strings.Contains(readme, "\n"+tables+"```\n") {
		t.Errorf("the README's eval tables are not today's; paste eval's output:\n%s", tables)
	}
}

func TestEvalRefusesBadInput(t *testing.T) {
	empty := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"eval", sharedTracks, "--cv", "week"}, `referee: --cv "week": want day or none`},
		{[]string{"eval", empty}, "referee: " + empty + " has no labelled phrases: a directory to evaluate holds NAME.tracks.json, NAME.txt and labels.json with the referee's calls, or phrase directories with result.json, tracks.json and review.json"},
		{[]string{"eval"}, "referee: eval takes 1 argument"},
	} {
		code, _, stderr := run(t, c.args...)
		if code != exitUsage || !strings.HasPrefix(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

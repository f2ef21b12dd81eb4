package rightofway

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/tracks"
)

// sharedDir holds the 113 refereed sabre phrases.
var sharedDir = filepath.Join("..", "..", "..", "shared", "testdata", "tracks")

// shared reads phrase name of the shared set: its tracks and its log.
func shared(t testing.TB, name string) (*tracks.Tracks, []byte) {
	t.Helper()
	tr, err := tracks.ReadFile(filepath.Join(sharedDir, name+".tracks.json"))
	if err != nil {
		t.Fatalf("the shared phrases must be in %s: %v", sharedDir, err)
	}
	log, err := os.ReadFile(filepath.Join(sharedDir, name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	return tr, log
}

func sharedNames(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(sharedDir, "*.tracks.json"))
	if err != nil || len(paths) != 113 {
		t.Fatalf("want the 113 shared phrases in %s: %d found (%v)", sharedDir, len(paths), err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = strings.TrimSuffix(filepath.Base(p), ".tracks.json")
	}
	return names
}

// decided is Decide's timeline of tr and p, failing the test on an error.
func decided(t testing.TB, tr *tracks.Tracks, p *signal.Phrase) Timeline {
	t.Helper()
	tl, err := Decide(tr, p)
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

func parse(t testing.TB, log []byte) *signal.Phrase {
	t.Helper()
	p, err := signal.Parse(log)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCallsInTheLogAreNoInput adds a referee's call, and the other
// system's lines, to every shared phrase's log: the engine's call must not
// change, whichever winner they name.
func TestCallsInTheLogAreNoInput(t *testing.T) {
	for _, name := range sharedNames(t) {
		tr, log := shared(t, name)
		want := decided(t, tr, parse(t, log))
		for _, who := range []string{"Left Fencer (Red Lamp)", "Right Fencer (Green Lamp)", "Abstain"} {
			extra := string(log) + "[2025-10-20 21:03:31] Awaiting manual winner selection (double hit)\n" +
				"[2025-10-20 21:03:34] Manual selection winner: " + who + "\n" +
				"[2025-10-20 21:03:35] Confirmed result winner: " + who + "\n" +
				"[2025-10-20 21:03:35] Remote referee decision: winner " + who + "\n"
			p := parse(t, []byte(extra))
			if p.RefereeDecision == nil {
				t.Fatalf("%s: the added lines were not read as a decision", name)
			}
			got := decided(t, tr, p)
			g, _ := json.Marshal(got.Decision)
			w, _ := json.Marshal(want.Decision)
			if string(g) != string(w) {
				t.Fatalf("%s: with %q in the log the call is %s, without it %s", name, who, g, w)
			}
		}
	}
}

// cut returns t's first n frames.
func cut(t *tracks.Tracks, n int) *tracks.Tracks {
	c := *t
	c.Left, c.Right = t.Left[:n], t.Right[:n]
	return &c
}

// hide returns t with side's poses from frame a to b (inclusive) removed.
func hide(t *tracks.Tracks, side string, a, b int) *tracks.Tracks {
	c := *t
	c.Left = append([]*tracks.Pose(nil), t.Left...)
	c.Right = append([]*tracks.Pose(nil), t.Right...)
	ps := c.Left
	if side == "right" {
		ps = c.Right
	}
	for i := a; i <= b && i < len(ps); i++ {
		ps[i] = nil
	}
	return &c
}

func TestNoConfidentCallWithoutEvidence(t *testing.T) {
	// Phrase 9 of 2025-10-20: 1.58 s at 15 fps, first hit at 1.291 s.
	tr, log := shared(t, "20251020_210329_phrase09")
	p := parse(t, log)
	hit := *p.FirstHitS
	hitFrame := int(hit*tr.FPS + 0.5)
	for _, c := range []struct {
		name   string
		tracks *tracks.Tracks
		reason string
	}{
		{"tracks end 0.6 s before the hit", cut(tr, int((hit-0.6)*tr.FPS)), "The tracks end at 0.60 s, 0.69 s before the hit at 1.29 s"},
		{"right missing before the hit", hide(tr, "right", hitFrame-12, hitFrame), "The right fencer is not seen in 13 of the 16 frames before the hit at 1.29 s"},
		{"left missing before the hit", hide(tr, "left", 0, len(tr.Left)), "The left fencer is not seen in 16 of the 16 frames before the hit at 1.29 s"},
		{"nobody found", hide(hide(tr, "left", 0, len(tr.Left)), "right", 0, len(tr.Right)), "No fencer was found, so right-of-way cannot be told"},
		{"right unseen for the final action", hide(tr, "right", hitFrame-3, hitFrame), "The right fencer is not seen in 4 of the last 5 frames before the hit at 1.29 s"},
		{"left unseen for 0.4 s of the last second", hide(tr, "left", hitFrame-10, hitFrame-5), "The left fencer is not seen for 0.40 s, from 0.60 to 1.00 s, in the second before the hit at 1.29 s"},
		{"a scale ten times too large", scaled(tr, 10), "The fencers measure"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tl := decided(t, c.tracks, p)
			d := tl.Decision
			if d.Winner != WinnerUndecided || d.Confidence != 0 || d.Rule != "no_evidence" || !strings.HasPrefix(d.Reason, c.reason) {
				t.Fatalf("decision %+v, want undecided with confidence 0 because %q", d, c.reason)
			}
		})
	}
}

// scaled returns t in pixels of 1/f metres each, declaring a scale of 1 m
// per pixel: f times too large.
func scaled(t *tracks.Tracks, f float64) *tracks.Tracks {
	c := *t
	c.Units, c.MetresPerPixel = tracks.UnitsPixels, 1
	grow := func(p *tracks.Pose) {
		for k := range p {
			p[k].X, p[k].Y = p[k].X*f, p[k].Y*f
		}
	}
	c.Left, c.Right = eachPose(t.Left, grow), eachPose(t.Right, grow)
	return &c
}

func TestScale(t *testing.T) {
	tr, log := shared(t, "20251020_210329_phrase09")
	// The same phrase in pixels of 5 mm without a declared scale: the
	// fencers' height gives it, and the call is the same.
	px := scaled(tr, 200)
	px.MetresPerPixel = 0
	s, err := Scale(px)
	if err != nil || s < 0.003 || s > 0.008 {
		t.Fatalf("scale %v (%v), want about 0.005 m per pixel", s, err)
	}
	want := decided(t, tr, parse(t, log))
	got := decided(t, px, parse(t, log))
	if got.Decision.Winner != want.Decision.Winner {
		t.Errorf("in pixels %s, in metres %s", got.Decision.Winner, want.Decision.Winner)
	}
	// Hips only, in pixels, no scale: nothing to measure it from.
	hips := scaled(tr, 200)
	hips.MetresPerPixel = 0
	for _, p := range append(hips.Left, hips.Right...) {
		for k := range p {
			if k != tracks.LeftHip && k != tracks.RightHip {
				p[k] = tracks.Keypoint{}
			}
		}
	}
	_, err = Decide(hips, parse(t, log))
	if err == nil || err.Error() != "pixel tracks without m_per_px, and no frame shows a fencer's eyes and ankles to measure the scale from: add m_per_px" {
		t.Errorf("error %v", err)
	}
}

// TestScaleFromHeight: pixel tracks of unknown scale are measured by the
// fencers' height, which varies with the fencers and their guard. On every
// shared phrase it must come within 0.85 to 1.35 of the true scale (today
// 0.90 to 1.29, the README's figure).
func TestScaleFromHeight(t *testing.T) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, name := range sharedNames(t) {
		tr, _ := shared(t, name)
		px := scaled(tr, 300)
		px.MetresPerPixel = 0
		s, err := Scale(px)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		lo, hi = math.Min(lo, s*300), math.Max(hi, s*300)
	}
	t.Logf("measured scale %.2f to %.2f of the true one", lo, hi)
	if lo < 0.85 || hi > 1.35 {
		t.Errorf("measured scale %.2f to %.2f of the true one, want within 0.85 to 1.35", lo, hi)
	}
}

func TestLowScoreKeypointsAreNotSeen(t *testing.T) {
	tr, log := shared(t, "20251020_210329_phrase09")
	c := *tr
	c.Right = make([]*tracks.Pose, len(tr.Right))
	for i, p := range tr.Right {
		q := *p
		for k := range q {
			q[k].Score = 0.1
		}
		c.Right[i] = &q
	}
	tl := decided(t, &c, parse(t, log))
	if d := tl.Decision; d.Winner != WinnerUndecided || !strings.Contains(d.Reason, "right fencer is not seen") {
		t.Errorf("a right fencer of 0.1-score keypoints gives %+v, want undecided", d)
	}
}

func TestNoBoxVerdictIsUndecided(t *testing.T) {
	tr, log := shared(t, "20251020_210329_phrase09")
	var kept []string
	for _, line := range strings.Split(string(log), "\n") {
		if !strings.HasPrefix(line, "Scores") && !strings.Contains(line, "Interpretation") {
			kept = append(kept, line)
		}
	}
	tl := decided(t, tr, parse(t, []byte(strings.Join(kept, "\n"))))
	if d := tl.Decision; d.Winner != WinnerUndecided || d.Rule != "no_box_verdict" || d.Confidence != 0 {
		t.Errorf("a log without the box's verdict gives %+v, want undecided by no_box_verdict", d)
	}
}

func TestTracksEndingJustBeforeTheHitDecide(t *testing.T) {
	tr, log := shared(t, "20251020_210329_phrase09")
	p := parse(t, log)
	// The recording stops as the lights come on: up to 0.5 s before the
	// log's hit is not missing evidence.
	n := int((*p.FirstHitS - 0.38) * tr.FPS)
	tl := decided(t, cut(tr, n), p)
	if d := tl.Decision; d.Winner == WinnerUndecided || !(d.Confidence > 0) {
		t.Fatalf("decision %+v, want a call", d)
	}
}

func TestUnseenFramesAreGapsInTheTimeline(t *testing.T) {
	tr, log := shared(t, "20251020_210329_phrase09")
	tl := decided(t, hide(tr, "left", 3, 6), parse(t, log))
	for i, v := range tl.Left.PositionM {
		if hidden := i >= 3 && i <= 6; hidden != (v != v) {
			t.Errorf("frame %d: position %v; hidden %v", i, v, hidden)
		}
	}
	if got := PhaseAt(tl.Left.Phases, 4); got != PhaseUnseen {
		t.Errorf("phase at an unseen frame %q, want %q", got, PhaseUnseen)
	}
	data, err := tl.Left.PositionM.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), ",null,null,null,null,") {
		t.Errorf("positions %s: want null for the four unseen frames", data)
	}
	var back Series
	if err := back.UnmarshalJSON(data); err != nil || len(back) != len(tl.Left.PositionM) || back[4] == back[4] {
		t.Errorf("read back %v (%v)", back, err)
	}
}

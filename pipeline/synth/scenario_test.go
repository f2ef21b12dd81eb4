package synth

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/signal"
)

const frame15 = 1.0 / 15 // one frame at the capture box's 15 fps

// wantScenarios is the list the referee pipeline is tested against: each
// required situation with its call and the box's lights.
var wantScenarios = []struct {
	name        string
	call        string
	left, right bool
}{
	{"left-attack-right-pause", CallLeft, true, true},
	{"right-attack-left-retreat", CallRight, true, true},
	{"both-pause-left-resumes", CallLeft, true, true},
	{"simultaneous-attack", CallSimultaneous, true, true},
	{"beat-left-attack-right-counter", CallRight, true, true},
	{"single-left", CallLeft, true, false},
	{"single-right", CallRight, false, true},
}

func TestScenariosAreTheRequiredOnes(t *testing.T) {
	all := Scenarios()
	if len(all) != len(wantScenarios) {
		t.Fatalf("%d scenarios, want %d", len(all), len(wantScenarios))
	}
	phrases := map[int]bool{}
	for i, w := range wantScenarios {
		s := all[i]
		if s.Name != w.name || s.Call != w.call {
			t.Errorf("scenario %d = %s (call %s), want %s (call %s)", i, s.Name, s.Call, w.name, w.call)
		}
		if err := s.Validate(); err != nil {
			t.Error(err)
		}
		if s.Description == "" || s.Why == "" {
			t.Errorf("%s: description or why is empty", s.Name)
		}
		if phrases[s.Phrase] {
			t.Errorf("%s: phrase number %d used twice", s.Name, s.Phrase)
		}
		phrases[s.Phrase] = true
		got, err := ScenarioByName(w.name)
		if err != nil || got.Name != w.name {
			t.Errorf("ScenarioByName(%q) = %q, %v", w.name, got.Name, err)
		}
	}
}

func TestScenarioByNameUnknown(t *testing.T) {
	_, err := ScenarioByName("nope")
	want := `no scenario named "nope"; the scenarios are [left-attack-right-pause right-attack-left-retreat ` +
		`both-pause-left-resumes simultaneous-attack beat-left-attack-right-counter single-left single-right]`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

func TestScenariosReturnsFreshValues(t *testing.T) {
	a := Scenarios()
	a[0].Left.Actions[0].End = 99
	a[0].Events[0].TimeS = 99
	b := Scenarios()
	if b[0].Left.Actions[0].End == 99 || b[0].Events[0].TimeS == 99 {
		t.Error("changing a returned scenario changed the next call's")
	}
}

func TestSignalParsesToTheScriptedPhrase(t *testing.T) {
	start := time.Date(2025, 11, 6, 20, 42, 36, 0, time.UTC)
	for i, w := range wantScenarios {
		s := Scenarios()[i]
		p, err := signal.Parse(signal.Render(s.Signal(start)))
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		if p.Box == nil || p.Box.Left != w.left || p.Box.Right != w.right {
			t.Errorf("%s: box %+v, want left %v right %v", s.Name, p.Box, w.left, w.right)
		}
		touch := map[[2]bool]string{{true, true}: "double", {true, false}: "left", {false, true}: "right"}[[2]bool{w.left, w.right}]
		if p.Touch == nil || *p.Touch != touch {
			t.Errorf("%s: touch %v, want %s", s.Name, p.Touch, touch)
		}
		if p.Phrase == nil || *p.Phrase != s.Phrase {
			t.Errorf("%s: phrase %v, want %d", s.Name, p.Phrase, s.Phrase)
		}
		if p.RecordingStartedAt != "2025-11-06 20:42:36" {
			t.Errorf("%s: recording started at %q", s.Name, p.RecordingStartedAt)
		}
		if p.RefereeDecision != nil {
			t.Errorf("%s: the log carries referee decision %q; the analysis must find it", s.Name, *p.RefereeDecision)
		}

		var hits, contacts []Event
		for _, ev := range s.Events {
			if ev.Kind == signal.EventHit {
				hits = append(hits, ev)
			} else {
				contacts = append(contacts, ev)
			}
		}
		first := hits[0].TimeS
		near := func(name string, got *float64, want float64) {
			if got == nil || math.Abs(*got-want) > 0.0005 {
				t.Errorf("%s: %s = %v, want %.3f", s.Name, name, got, want)
			}
		}
		near("first hit", p.FirstHitS, first)
		near("lockout start", p.LockoutStartS, first+0.023)
		near("recording start", p.RecordingStartS, 0.001)
		near("recording end", p.RecordingEndS, s.Duration)
		if p.RecordingEndS != nil && math.Abs(*p.RecordingEndS-first-0.24) > 0.0005 {
			t.Errorf("%s: recording ends %.3f s after the first hit, want 0.240", s.Name, *p.RecordingEndS-first)
		}
		if len(hits) == 2 {
			near("simultaneous hit", p.SimultaneousHitS, hits[1].TimeS)
		} else if p.SimultaneousHitS != nil {
			t.Errorf("%s: single light with a simultaneous hit line at %v", s.Name, *p.SimultaneousHitS)
		}
		if len(p.BladeContactsS) != len(contacts) {
			t.Errorf("%s: %d blade contacts in the log, want %d", s.Name, len(p.BladeContactsS), len(contacts))
		}
		for k, c := range contacts {
			if k < len(p.BladeContactsS) && math.Abs(p.BladeContactsS[k]-c.TimeS) > 0.0005 {
				t.Errorf("%s: blade contact %d at %v, want %v", s.Name, k, p.BladeContactsS[k], c.TimeS)
			}
		}
		// The real box names the side opposite to the single light.
		for _, ev := range p.Events {
			if ev.Kind == signal.EventHit && ev.Side != opposite(hits[0].Side) {
				t.Errorf("%s: hit line names %q, want %q like the real box", s.Name, ev.Side, opposite(hits[0].Side))
			}
		}
		if v := p.SignalVerdict(); len(hits) == 1 && v.Winner != s.Call {
			t.Errorf("%s: the box alone gives %q, the call is %q", s.Name, v.Winner, s.Call)
		}
	}
}

func TestValidateCatchesBrokenScenarios(t *testing.T) {
	base := func() Scenario { return Scenarios()[0] }
	tests := []struct {
		name   string
		modify func(*Scenario)
		want   string
	}{
		{"unknown call", func(s *Scenario) { s.Call = "double" }, `call "double" is not one of left, right, simultaneous, none`},
		{"gap in a script", func(s *Scenario) { s.Left.Actions[1].Start += 0.1 }, "left script: action 1 (advance) spans 0.5..1.6 s, want it to start at 0.4 s and last"},
		{"negative distance", func(s *Scenario) { s.Right.Actions[1].Distance = -0.1 }, "right script: action 1 (advance) has distance -0.1"},
		{"pause that moves", func(s *Scenario) { s.Right.Actions[0].Distance = 0.1 }, "right script: action 0 (pause) has distance 0.1"},
		{"unknown action", func(s *Scenario) { s.Left.Actions[0].Kind = "fleche" }, `left script: action 0 has unknown kind "fleche"`},
		{"script too short", func(s *Scenario) { s.Left.Actions = s.Left.Actions[:2] }, "left script: actions end at 1.6 s, not at the duration 2.14 s"},
		{"off the strip", func(s *Scenario) { s.Left.Start = 0.01 }, "left script: the fencer leaves the strip (0.010..0.200)"},
		{"hit not at a lunge", func(s *Scenario) { s.Events[0].TimeS = 1.85 }, "left's hit at 1.85 s is not at the end of a lunge or extension"},
		{"second hit too late", func(s *Scenario) {
			s.Right.Actions[3].End, s.Right.Actions[4].Start = 2.13, 2.13
			s.Events[1].TimeS = 2.13
		}, "right's hit at 2.13 s comes after the lockout window closed"},
		{"events out of order", func(s *Scenario) { s.Events[0], s.Events[1] = s.Events[1], s.Events[0] }, "events are not in time order"},
		{"wrong duration", func(s *Scenario) {
			s.Duration = 2.5
			s.Left.Actions[3].End, s.Right.Actions[4].End = 2.5, 2.5
		}, "duration 2.5 s is not 0.24 s after the first hit at 1.9 s"},
		{"single light, wrong call", func(s *Scenario) { s.Events = s.Events[:1]; s.Call = CallRight }, `call "right" contradicts the single light`},
		{"no hit", func(s *Scenario) { s.Events = nil }, `call "left" without any hit`},
		{"two hits by one fencer", func(s *Scenario) { s.Events[1].Side = SideLeft }, "left hits twice"},
		{"hit without side", func(s *Scenario) { s.Events[1].Side = "" }, `hit at 2 s has side ""`},
		{"odd event", func(s *Scenario) { s.Events[1].Kind = signal.EventLockoutStarted }, `event kind "lockout_started" at 2 s is neither a blade contact nor a hit`},
		{"event after the end", func(s *Scenario) { s.Events[1].TimeS = 3 }, "hit at 3 s is outside the recording"},
	}
	for _, tt := range tests {
		s := base()
		tt.modify(&s)
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want it to say %q", tt.name, err, tt.want)
		}
	}
}

// TestPositionsFollowTheScripts checks the ground truth a tracker is judged
// against, sampled at 15 fps: still during pauses, stepping the right way
// by a visible amount, lunging fast.
func TestPositionsFollowTheScripts(t *testing.T) {
	for _, s := range Scenarios() {
		firstHit := s.Events[len(s.Events)-1].TimeS
		for _, ev := range s.Events {
			if ev.Kind == signal.EventHit {
				firstHit = math.Min(firstHit, ev.TimeS)
			}
		}
		for _, f := range []struct {
			side string
			sc   Script
			dir  float64
		}{{SideLeft, s.Left, +1}, {SideRight, s.Right, -1}} {
			pos := func(t float64) float64 {
				l, r := s.Positions(t)
				if f.side == SideLeft {
					return l
				}
				return r
			}
			for _, a := range f.sc.Actions {
				from, to := pos(a.Start), pos(a.End)
				moved := (to - from) * f.dir // towards the opponent is positive
				switch a.Kind {
				case Pause:
					for t0 := a.Start; t0 <= a.End; t0 += frame15 {
						if pos(t0) != from {
							t.Errorf("%s %s: moves during the pause %v..%v s (%.4f at %.3f s)", s.Name, f.side, a.Start, a.End, pos(t0), t0)
							break
						}
					}
					if a.Start > 0 && a.End < firstHit && a.End-a.Start < 0.4 {
						t.Errorf("%s %s: pause %v..%v s is shorter than 0.4 s", s.Name, f.side, a.Start, a.End)
					}
				case Advance, Retreat, Lunge, Extend:
					want := a.Distance
					if a.Kind == Retreat {
						want = -want
					}
					if math.Abs(moved-want) > 1e-9 {
						t.Errorf("%s %s: %s %v..%v s moves %.4f towards the opponent, want %.4f", s.Name, f.side, a.Kind, a.Start, a.End, moved, want)
					}
				}
				if a.Kind == Advance || a.Kind == Retreat {
					// Each step must shift the hips by at least 14 cm, 12 px on
					// a 640-wide frame, and never go back.
					steps := math.Max(1, math.Round((a.End-a.Start)/stepS))
					if a.Distance/steps*stripM < 0.14 {
						t.Errorf("%s %s: %s %v..%v s takes steps of %.2f m", s.Name, f.side, a.Kind, a.Start, a.End, a.Distance/steps*stripM)
					}
					prev := from
					for t0 := a.Start; t0 <= a.End; t0 += frame15 {
						if d := (pos(t0) - prev) * f.dir * math.Copysign(1, want(a)); d < -1e-12 {
							t.Errorf("%s %s: %s turns back at %.3f s", s.Name, f.side, a.Kind, t0)
						}
						prev = pos(t0)
					}
				}
				if a.Kind == Lunge {
					speed := a.Distance * stripM / (a.End - a.Start)
					if speed < 1.5 {
						t.Errorf("%s %s: lunge %v..%v s averages %.2f m/s, want a fast one", s.Name, f.side, a.Start, a.End, speed)
					}
				}
			}
		}
	}
}

func want(a Action) float64 {
	if a.Kind == Retreat {
		return -1
	}
	return 1
}

func TestBothPauseLeftResumesFirst(t *testing.T) {
	s, err := ScenarioByName("both-pause-left-resumes")
	if err != nil {
		t.Fatal(err)
	}
	// Sampled at 60 Hz: find when both have stood still together for
	// 0.4 s after moving, then who moves on first.
	const dt = 1.0 / 60
	var lastL, lastR, paused, resumedL, resumedR float64
	l0, r0 := s.Positions(0)
	for t0 := dt; t0 <= s.Duration; t0 += dt {
		l, r := s.Positions(t0)
		if l != l0 {
			lastL = t0
			if paused > 0 && resumedL == 0 {
				resumedL = t0
			}
		}
		if r != r0 {
			lastR = t0
			if paused > 0 && resumedR == 0 {
				resumedR = t0
			}
		}
		if paused == 0 && lastL > 0 && lastR > 0 && t0-max(lastL, lastR) >= 0.4 {
			paused = t0
		}
		l0, r0 = l, r
	}
	if paused == 0 {
		t.Fatal("the fencers never stand still together for 0.4 s")
	}
	if resumedL == 0 || resumedR-resumedL < frame15 {
		t.Errorf("after the common pause left resumes at %.3f s, right at %.3f s: want left a frame or more first", resumedL, resumedR)
	}
}

// TestHitsLandAtTheirTimes checks the rendered geometry against the
// events: a scorer's blade reaches the opponent's torso at the scripted hit
// and not a frame earlier, a fencer without a hit never reaches, and the
// blades cross at a blade contact.
func TestHitsLandAtTheirTimes(t *testing.T) {
	for _, s := range Scenarios() {
		hitAt := map[string]float64{SideLeft: math.Inf(1), SideRight: math.Inf(1)}
		for _, ev := range s.Events {
			switch ev.Kind {
			case signal.EventHit:
				hitAt[ev.Side] = ev.TimeS
			case signal.EventBladeContact:
				l, r := s.bodiesAt(ev.TimeS)
				if l.rawTip.x < r.rawTip.x {
					t.Errorf("%s: blades apart at the contact at %v s (tips at %.2f and %.2f m)", s.Name, ev.TimeS, l.rawTip.x, r.rawTip.x)
				}
			}
		}
		reach := func(t0 float64, side string) bool {
			l, r := s.bodiesAt(t0)
			if side == SideLeft {
				return l.reaches(r)
			}
			return r.reaches(l)
		}
		for _, side := range []string{SideLeft, SideRight} {
			th := hitAt[side]
			if !math.IsInf(th, 1) && !reach(th, side) {
				t.Errorf("%s: %s's blade does not reach at the hit at %v s", s.Name, side, th)
			}
			for t0 := 0.0; t0 < math.Min(th-frame15, s.Duration); t0 += frame15 / 2 {
				if reach(t0, side) {
					t.Errorf("%s: %s's blade reaches at %.3f s, before its hit at %v s", s.Name, side, t0, th)
					break
				}
			}
		}
	}
}

func redGreenCentres(img bgr.Image) (red, green float64, nRed, nGreen int) {
	var sr, sg float64
	for y := range img.Height {
		for x := range img.Width {
			b, g, r := img.At(x, y)
			switch {
			case int(r) > int(g)+50 && int(r) > int(b)+50:
				sr += float64(x)
				nRed++
			case int(g) > int(r)+50 && int(g) > int(b)+50:
				sg += float64(x)
				nGreen++
			}
		}
	}
	return sr / float64(max(nRed, 1)), sg / float64(max(nGreen, 1)), nRed, nGreen
}

// TestRenderDrawsTheFencersWhereTheyAre renders every scenario at several
// sizes and finds the red and green figures where Positions says they are.
func TestRenderDrawsTheFencersWhereTheyAre(t *testing.T) {
	sizes := [][2]int{{320, 240}, {640, 480}, {1280, 720}, {1920, 1080}}
	for _, s := range Scenarios() {
		for _, sz := range sizes {
			img := bgr.New(sz[0], sz[1])
			v := viewFor(sz[0], sz[1])
			for _, t0 := range []float64{0, s.Duration / 2, s.Duration} {
				s.Render(img, t0)
				red, green, nRed, nGreen := redGreenCentres(img)
				l, r := s.Positions(t0)
				lx, _ := v.pt(vec{l * stripM, 0})
				rx, _ := v.pt(vec{r * stripM, 0})
				// A figure is about 0.5 m^2 of the frame; its centre of
				// colour sits within 0.3 m of the hips.
				minPix := int(0.25 * v.s * v.s)
				if nRed < minPix || nGreen < minPix {
					t.Errorf("%s %dx%d t=%.2f: %d red and %d green pixels, want over %d each", s.Name, sz[0], sz[1], t0, nRed, nGreen, minPix)
					continue
				}
				if math.Abs(red-lx) > 0.3*v.s || math.Abs(green-rx) > 0.3*v.s {
					t.Errorf("%s %dx%d t=%.2f: red at x=%.0f (hips %.0f), green at x=%.0f (hips %.0f)", s.Name, sz[0], sz[1], t0, red, lx, green, rx)
				}
			}
		}
	}
}

func TestRenderIsDeterministicAndClampsTime(t *testing.T) {
	s := Scenarios()[4]
	a, b := bgr.New(320, 240), bgr.New(320, 240)
	s.Render(a, 1.55)
	s.Render(b, 1.55)
	if !bytes.Equal(a.Pix, b.Pix) {
		t.Error("two renders of the same instant differ")
	}
	s.Render(a, -3)
	s.Render(b, 0)
	if !bytes.Equal(a.Pix, b.Pix) {
		t.Error("a time before 0 does not render as 0")
	}
	s.Render(a, s.Duration+10)
	s.Render(b, s.Duration)
	if !bytes.Equal(a.Pix, b.Pix) {
		t.Error("a time after the end does not render as the end")
	}
	s.Render(b, 1.0)
	if bytes.Equal(a.Pix, b.Pix) {
		t.Error("the scene at 1.0 s looks like the end: nothing moves")
	}
}

// TestMotionIsVisibleAt15fps: while a fencer steps or lunges, consecutive
// frames of a 320x240 video differ in many pixels; during a common pause
// they are identical.
func TestMotionIsVisibleAt15fps(t *testing.T) {
	s, err := ScenarioByName("both-pause-left-resumes")
	if err != nil {
		t.Fatal(err)
	}
	a, b := bgr.New(320, 240), bgr.New(320, 240)
	diff := func(t0 float64) int {
		s.Render(a, t0)
		s.Render(b, t0+frame15)
		n := 0
		for i := 0; i < len(a.Pix); i += 3 {
			if a.Pix[i] != b.Pix[i] || a.Pix[i+1] != b.Pix[i+1] || a.Pix[i+2] != b.Pix[i+2] {
				n++
			}
		}
		return n
	}
	if n := diff(1.30); n != 0 {
		t.Errorf("%d pixels change during the common pause", n)
	}
	for _, t0 := range []float64{0.55, 2.35} { // mid-step, mid-lunge
		if n := diff(t0); n < 100 {
			t.Errorf("only %d pixels change between frames at %.2f s", n, t0)
		}
	}
}

func TestRenderPanicsOnInvalidPicture(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Render on an invalid picture did not panic")
		}
	}()
	Scenarios()[0].Render(bgr.Image{Width: 10, Height: 10}, 0)
}

func TestScenarioJSONRoundTrip(t *testing.T) {
	for _, s := range Scenarios() {
		data, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back Scenario
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, s) {
			t.Errorf("%s: JSON round trip changed the scenario:\n%s", s.Name, data)
		}
		if !bytes.Contains(data, []byte(`"call":"`+s.Call+`"`)) || !bytes.Contains(data, []byte(`"duration_s":`)) {
			t.Errorf("%s: JSON lacks the call or duration: %s", s.Name, data)
		}
	}
}

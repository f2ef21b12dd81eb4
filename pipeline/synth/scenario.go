package synth

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/referee-project/referee/pipeline/signal"
)

// Fencer sides, as used by Scenario events and calls.
const (
	SideLeft  = "left"
	SideRight = "right"
)

// The calls a Scenario can document: who gets the touch.
const (
	CallLeft         = "left"
	CallRight        = "right"
	CallSimultaneous = "simultaneous" // both lights, simultaneous action: no touch
	CallNone         = "none"         // no light
)

// ActionKind is what a fencer's legs and sword arm do during an Action.
type ActionKind string

// The actions of a Script.
const (
	// Pause holds the fencer still, arm and legs as they were: after a
	// lunge the fencer stays in the lunge, after an extension the arm stays
	// extended.
	Pause ActionKind = "pause"
	// Advance steps towards the opponent, about one step per 0.45 s, each
	// easing in and out; the sword arm bends back and a lunge recovers.
	Advance ActionKind = "advance"
	// Retreat steps away from the opponent, like Advance.
	Retreat ActionKind = "retreat"
	// Lunge extends the arm first, then shoots the front foot forward and
	// drops the body: the fast finish of an attack.
	Lunge ActionKind = "lunge"
	// Extend straightens the arm over the whole action, with a small step
	// forward when Distance is positive: an attack's start, a stop-hit or
	// a remise.
	Extend ActionKind = "extend"
)

// Action is one part of a fencer's Script.
type Action struct {
	Kind ActionKind `json:"kind"`
	// Start and End are seconds since the recording started.
	Start float64 `json:"start_s"`
	End   float64 `json:"end_s"`
	// Distance is how far the hips travel during the action, as a fraction
	// of the strip length, never negative: the direction follows from Kind
	// and the fencer's side. Zero for Pause.
	Distance float64 `json:"distance"`
}

// Script is what one fencer does during a phrase.
type Script struct {
	// Start is the position of the fencer's hips at t = 0, as a fraction of
	// the strip length from its left end.
	Start float64 `json:"start"`
	// Actions follow one another without gap from t = 0 to the scenario's
	// Duration.
	Actions []Action `json:"actions"`
}

// Event is a scripted moment of a phrase: a blade contact or a hit.
type Event struct {
	// TimeS is seconds since the recording started.
	TimeS float64 `json:"t_s"`
	// Kind is signal.EventBladeContact or signal.EventHit.
	Kind signal.EventKind `json:"kind"`
	// Side is, for a hit, the fencer who scores (SideLeft or SideRight);
	// for a blade contact, the fencer who beats or parries the other's
	// blade, or "" when neither does.
	Side string `json:"side,omitempty"`
}

// Scenario is a scripted fencing phrase with its documented correct call,
// rendered by Render into video frames and by Signal into the scoring box's
// log, so that the whole referee pipeline can be tested end to end against a
// known answer. Its JSON form can be saved beside a generated video as the
// ground truth.
type Scenario struct {
	// Name identifies the scenario, e.g. "left-attack-right-pause".
	Name string `json:"name"`
	// Description says what happens, in fencing words.
	Description string `json:"description"`
	// Call is the correct call: CallLeft, CallRight, CallSimultaneous or
	// CallNone. For a double touch it is the right-of-way decision the
	// video analysis must reach; for a single light it is the box's.
	Call string `json:"call"`
	// Why explains the call under right-of-way.
	Why string `json:"why"`
	// Duration is the length of the recording in seconds: the recording
	// ends about 0.24 s after the first hit, as the real box's does.
	Duration float64 `json:"duration_s"`
	// Phrase is the phrase number written in the log.
	Phrase int `json:"phrase"`
	// Left and Right are the fencers' scripts. The left fencer (red lamp)
	// faces right, the right fencer (green lamp) faces left.
	Left  Script `json:"left"`
	Right Script `json:"right"`
	// Events are the blade contacts and hits, in time order. Hits land at
	// the end of the scorer's Lunge or Extend.
	Events []Event `json:"events"`
}

// Timing of the box's lines after the first hit, as in the real logs.
const (
	lockoutDelayS   = 0.023 // "Lockout period started" after the first hit
	lockoutWindowS  = 0.200 // the window in which the second hit still counts
	recordingAfterS = 0.240 // "Phrase recording ended" after the first hit
	recordingStartS = 0.001 // "Phrase recording started"
)

// Scenarios returns every built-in scenario, in a stable order. Each call
// returns fresh values the caller may change.
func Scenarios() []Scenario {
	return []Scenario{
		{
			Name: "left-attack-right-pause",
			Description: "Both fencers step in. Left keeps advancing and finishes with a lunge; " +
				"right stops after one step and stands still, extending the arm only as the lunge arrives. Both lights.",
			Call: CallLeft,
			Why: "Left kept advancing and finished with a lunge, arm extending: a correct attack. Right stopped " +
				"and stood still while left kept coming, so right had no priority; right's late extension is a " +
				"counter-attack into the attack and does not count.",
			Duration: 2.14,
			Phrase:   1,
			Left: Script{Start: 0.25, Actions: []Action{
				{Pause, 0, 0.40, 0},
				{Advance, 0.40, 1.60, 0.12},
				{Lunge, 1.60, 1.90, 0.07},
				{Pause, 1.90, 2.14, 0},
			}},
			Right: Script{Start: 0.75, Actions: []Action{
				{Pause, 0, 0.40, 0},
				{Advance, 0.40, 0.85, 0.05},
				{Pause, 0.85, 1.75, 0},
				{Extend, 1.75, 2.00, 0},
				{Pause, 2.00, 2.14, 0},
			}},
			Events: []Event{
				{1.90, signal.EventHit, SideLeft},
				{2.00, signal.EventHit, SideRight},
			},
		},
		{
			Name: "right-attack-left-retreat",
			Description: "Right advances four steps and lunges; left retreats in front of the attack " +
				"and, caught, extends the arm at the last moment. Both lights.",
			Call: CallRight,
			Why: "Right attacks with continuous forward steps and a lunge. Left only retreats and never takes " +
				"the attack's priority away with a parry, so left's final extension is a counter-attack " +
				"against a correct attack.",
			Duration: 2.54,
			Phrase:   2,
			Left: Script{Start: 0.40, Actions: []Action{
				{Pause, 0, 0.60, 0},
				{Retreat, 0.60, 1.95, 0.08},
				{Extend, 1.95, 2.40, 0},
				{Pause, 2.40, 2.54, 0},
			}},
			Right: Script{Start: 0.85, Actions: []Action{
				{Pause, 0, 0.30, 0},
				{Advance, 0.30, 2.00, 0.20},
				{Lunge, 2.00, 2.30, 0.07},
				{Pause, 2.30, 2.54, 0},
			}},
			Events: []Event{
				{2.30, signal.EventHit, SideRight},
				{2.40, signal.EventHit, SideLeft},
			},
		},
		{
			Name: "both-pause-left-resumes",
			Description: "Both fencers advance two steps and stop together for 0.6 s. Left starts again first, " +
				"a step and a lunge; right sets off later with a stepping extension into the attack. Both lights.",
			Call: CallLeft,
			Why: "After both paused neither had priority; the first to restart a correct attack takes it. " +
				"Left moved forward first and lunged, so right's later extension is a counter-attack " +
				"into left's attack.",
			Duration: 2.79,
			Phrase:   3,
			Left: Script{Start: 0.22, Actions: []Action{
				{Pause, 0, 0.30, 0},
				{Advance, 0.30, 1.20, 0.09},
				{Pause, 1.20, 1.80, 0},
				{Advance, 1.80, 2.25, 0.04},
				{Lunge, 2.25, 2.55, 0.07},
				{Pause, 2.55, 2.79, 0},
			}},
			Right: Script{Start: 0.78, Actions: []Action{
				{Pause, 0, 0.30, 0},
				{Advance, 0.30, 1.20, 0.08},
				{Pause, 1.20, 2.15, 0},
				{Extend, 2.15, 2.60, 0.02},
				{Pause, 2.60, 2.79, 0},
			}},
			Events: []Event{
				{2.55, signal.EventHit, SideLeft},
				{2.60, signal.EventHit, SideRight},
			},
		},
		{
			Name: "simultaneous-attack",
			Description: "Both fencers wait, advance two steps at the same moment and lunge together; " +
				"right half a frame behind; the hits land 30 ms apart. Both lights.",
			Call: CallSimultaneous,
			Why: "Both started their attacks at the same time and neither paused, retreated or parried: " +
				"a simultaneous action, so no touch is awarded.",
			Duration: 2.04,
			Phrase:   4,
			Left: Script{Start: 0.195, Actions: []Action{
				{Pause, 0, 0.60, 0},
				{Advance, 0.60, 1.50, 0.10},
				{Lunge, 1.50, 1.80, 0.07},
				{Pause, 1.80, 2.04, 0},
			}},
			Right: Script{Start: 0.805, Actions: []Action{
				{Pause, 0, 0.63, 0},
				{Advance, 0.63, 1.53, 0.10},
				{Lunge, 1.53, 1.83, 0.07},
				{Pause, 1.83, 2.04, 0},
			}},
			Events: []Event{
				{1.80, signal.EventHit, SideLeft},
				{1.83, signal.EventHit, SideRight},
			},
		},
		{
			Name: "beat-left-attack-right-counter",
			Description: "Left advances and starts an attack with the arm extending; right, standing still, " +
				"beats left's blade aside (blade contact) and lunges at once. Left, broken, gives half a step " +
				"and extends again (a remise) as right's lunge lands, hitting too. Both lights.",
			Call: CallRight,
			Why: "The beat on the blade takes the priority away from left's attack and gives it to right, " +
				"who attacks immediately. Left's remise after the beat has no priority.",
			Duration: 2.14,
			Phrase:   5,
			Left: Script{Start: 0.22, Actions: []Action{
				{Pause, 0, 0.30, 0},
				{Advance, 0.30, 1.20, 0.10},
				{Extend, 1.20, 1.60, 0.04},
				{Retreat, 1.60, 1.80, 0.02},
				{Extend, 1.80, 2.05, 0},
				{Pause, 2.05, 2.14, 0},
			}},
			Right: Script{Start: 0.78, Actions: []Action{
				{Pause, 0, 0.30, 0},
				{Advance, 0.30, 0.75, 0.07},
				{Pause, 0.75, 1.60, 0},
				{Lunge, 1.60, 1.90, 0.11},
				{Pause, 1.90, 2.14, 0},
			}},
			Events: []Event{
				{1.55, signal.EventBladeContact, SideRight},
				{1.90, signal.EventHit, SideRight},
				{2.05, signal.EventHit, SideLeft},
			},
		},
		{
			Name: "single-left",
			Description: "Left advances three steps and lunges; right steps in, stops, then starts " +
				"to retreat too late and is hit. Only the left light.",
			Call:     CallLeft,
			Why:      "Only the left light came on: the touch is left's, no right-of-way decision is needed.",
			Duration: 2.29,
			Phrase:   6,
			Left: Script{Start: 0.25, Actions: []Action{
				{Pause, 0, 0.40, 0},
				{Advance, 0.40, 1.75, 0.15},
				{Lunge, 1.75, 2.05, 0.07},
				{Pause, 2.05, 2.29, 0},
			}},
			Right: Script{Start: 0.75, Actions: []Action{
				{Pause, 0, 0.50, 0},
				{Advance, 0.50, 0.95, 0.05},
				{Pause, 0.95, 1.50, 0},
				{Retreat, 1.50, 2.05, 0.03},
				{Pause, 2.05, 2.29, 0},
			}},
			Events: []Event{
				{2.05, signal.EventHit, SideLeft},
			},
		},
		{
			Name: "single-right",
			Description: "Right advances four steps and lunges; left steps in once and then stands still " +
				"with the arm bent and is hit. Only the right light.",
			Call:     CallRight,
			Why:      "Only the right light came on: the touch is right's, no right-of-way decision is needed.",
			Duration: 2.49,
			Phrase:   7,
			Left: Script{Start: 0.25, Actions: []Action{
				{Pause, 0, 0.50, 0},
				{Advance, 0.50, 0.95, 0.05},
				{Pause, 0.95, 2.49, 0},
			}},
			Right: Script{Start: 0.80, Actions: []Action{
				{Pause, 0, 0.30, 0},
				{Advance, 0.30, 1.95, 0.17},
				{Lunge, 1.95, 2.25, 0.07},
				{Pause, 2.25, 2.49, 0},
			}},
			Events: []Event{
				{2.25, signal.EventHit, SideRight},
			},
		},
	}
}

// ScenarioByName returns the built-in scenario called name, or an error
// listing the names there are.
func ScenarioByName(name string) (Scenario, error) {
	all := Scenarios()
	names := make([]string, len(all))
	for i, s := range all {
		if s.Name == name {
			return s, nil
		}
		names[i] = s.Name
	}
	return Scenario{}, fmt.Errorf("no scenario named %q; the scenarios are %v", name, names)
}

// Validate checks that s is a phrase Render and Signal can play and that
// its call is consistent with its lights: a known call, a duration of 2 to
// 5 s ending 0.24 s after the first hit, gap-free scripts covering
// the duration, positions on the strip, events in time order within the
// recording, at most one hit per fencer, a second hit inside the lockout
// window, each hit at the end of the scorer's Lunge or Extend, and a call
// that matches a single light.
func (s Scenario) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch s.Call {
	case CallLeft, CallRight, CallSimultaneous, CallNone:
	default:
		bad("call %q is not one of left, right, simultaneous, none", s.Call)
	}
	if !(s.Duration >= 2 && s.Duration <= 5) {
		bad("duration %v s is outside 2 to 5 s", s.Duration)
	}
	for _, f := range []struct {
		side string
		sc   Script
		dir  float64
	}{{SideLeft, s.Left, +1}, {SideRight, s.Right, -1}} {
		if err := f.sc.validate(s.Duration, f.dir); err != nil {
			bad("%s script: %w", f.side, err)
		}
	}
	if !slices.IsSortedFunc(s.Events, func(a, b Event) int { return cmp.Compare(a.TimeS, b.TimeS) }) {
		bad("events are not in time order")
	}
	hits := map[string]float64{}
	first := math.Inf(1)
	for _, ev := range s.Events {
		if !(ev.TimeS > recordingStartS && ev.TimeS < s.Duration) {
			bad("%s at %v s is outside the recording", ev.Kind, ev.TimeS)
		}
		switch ev.Kind {
		case signal.EventBladeContact:
			if ev.Side != "" && ev.Side != SideLeft && ev.Side != SideRight {
				bad("blade contact at %v s has side %q", ev.TimeS, ev.Side)
			}
		case signal.EventHit:
			sc, ok := s.script(ev.Side)
			if !ok {
				bad("hit at %v s has side %q", ev.TimeS, ev.Side)
				continue
			}
			if _, dup := hits[ev.Side]; dup {
				bad("%s hits twice; the box lights once per fencer", ev.Side)
			}
			hits[ev.Side] = ev.TimeS
			first = min(first, ev.TimeS)
			if !sc.hitsAt(ev.TimeS) {
				bad("%s's hit at %v s is not at the end of a lunge or extension", ev.Side, ev.TimeS)
			}
		default:
			bad("event kind %q at %v s is neither a blade contact nor a hit", ev.Kind, ev.TimeS)
		}
	}
	if len(hits) > 0 {
		if math.Abs(s.Duration-(first+recordingAfterS)) > 1e-9 {
			bad("duration %v s is not %v s after the first hit at %v s", s.Duration, recordingAfterS, first)
		}
		for side, t := range hits {
			if t > first+lockoutDelayS+lockoutWindowS {
				bad("%s's hit at %v s comes after the lockout window closed", side, t)
			}
		}
	}
	_, left := hits[SideLeft]
	_, right := hits[SideRight]
	switch {
	case left && !right && s.Call != CallLeft, right && !left && s.Call != CallRight:
		bad("call %q contradicts the single light", s.Call)
	case !left && !right && s.Call != CallNone:
		bad("call %q without any hit", s.Call)
	case left && right && s.Call == CallNone:
		bad("call none with both lights on")
	}
	if len(errs) > 0 {
		return fmt.Errorf("scenario %q: %w", s.Name, errors.Join(errs...))
	}
	return nil
}

func (s Scenario) script(side string) (Script, bool) {
	switch side {
	case SideLeft:
		return s.Left, true
	case SideRight:
		return s.Right, true
	}
	return Script{}, false
}

func (sc Script) validate(duration, dir float64) error {
	if len(sc.Actions) == 0 {
		return errors.New("no actions")
	}
	t := 0.0
	for i, a := range sc.Actions {
		switch a.Kind {
		case Pause, Advance, Retreat, Lunge, Extend:
		default:
			return fmt.Errorf("action %d has unknown kind %q", i, a.Kind)
		}
		if math.Abs(a.Start-t) > 1e-9 || !(a.End > a.Start) {
			return fmt.Errorf("action %d (%s) spans %v..%v s, want it to start at %v s and last", i, a.Kind, a.Start, a.End, t)
		}
		if a.Distance < 0 || (a.Kind == Pause && a.Distance != 0) {
			return fmt.Errorf("action %d (%s) has distance %v", i, a.Kind, a.Distance)
		}
		t = a.End
	}
	if math.Abs(t-duration) > 1e-9 {
		return fmt.Errorf("actions end at %v s, not at the duration %v s", t, duration)
	}
	lo, hi := sc.Start, sc.Start
	for _, a := range sc.Actions {
		x := sc.positionAt(a.End, dir)
		lo, hi = min(lo, x), max(hi, x)
	}
	if lo < 0.05 || hi > 0.95 {
		return fmt.Errorf("the fencer leaves the strip (%.3f..%.3f)", lo, hi)
	}
	return nil
}

func (sc Script) hitsAt(t float64) bool {
	for _, a := range sc.Actions {
		if (a.Kind == Lunge || a.Kind == Extend) && math.Abs(a.End-t) < 1e-9 {
			return true
		}
	}
	return false
}

// Positions returns where the fencers' hips are at time t, as fractions of
// the strip length from its left end: the ground truth a tracker's
// positions are compared with. t is clamped to [0, Duration].
func (s Scenario) Positions(t float64) (left, right float64) {
	t = s.clamp(t)
	return s.Left.positionAt(t, +1), s.Right.positionAt(t, -1)
}

func (s Scenario) clamp(t float64) float64 {
	return math.Max(0, math.Min(t, s.Duration))
}

// Signal returns the scoring box's log of the phrase, recorded from start:
// "Phrase recording started" at 1 ms, the blade contacts at their times,
// the first hit, "Lockout period started" 23 ms later, the second hit of a
// double as "HIT: Simultaneous valid hits!", and "Phrase recording ended" at
// Duration; the box verdict lights the fencers who hit. As the real box
// does (signal-format.md), a hit line names the side opposite to the
// scorer. The log has no referee decision: that is what the analysis under
// test must produce, to be compared with Call.
func (s Scenario) Signal(start time.Time) signal.LogSpec {
	spec := signal.LogSpec{
		Phrase: s.Phrase,
		Start:  start,
		Events: []signal.Event{{TimeS: recordingStartS, Kind: signal.EventRecordingStarted}},
	}
	hits := 0
	for _, ev := range s.Events {
		switch ev.Kind {
		case signal.EventBladeContact:
			spec.Events = append(spec.Events, signal.Event{TimeS: ev.TimeS, Kind: signal.EventBladeContact})
		case signal.EventHit:
			hits++
			if hits == 1 {
				spec.Events = append(spec.Events,
					signal.Event{TimeS: ev.TimeS, Kind: signal.EventHit, Side: opposite(ev.Side)},
					signal.Event{TimeS: ev.TimeS + lockoutDelayS, Kind: signal.EventLockoutStarted})
			} else {
				spec.Events = append(spec.Events, signal.Event{TimeS: ev.TimeS, Kind: signal.EventSimultaneousHit})
			}
			switch ev.Side {
			case SideLeft:
				spec.Box.Left = true
			case SideRight:
				spec.Box.Right = true
			}
		}
	}
	spec.Events = append(spec.Events, signal.Event{TimeS: s.Duration, Kind: signal.EventRecordingEnded})
	slices.SortStableFunc(spec.Events, func(a, b signal.Event) int { return cmp.Compare(a.TimeS, b.TimeS) })
	return spec
}

// Until returns the scenario as a recording that stops at endS seconds
// would log it: the events after endS are dropped and the phrase ends
// there. A scenario shorter than endS is returned as it is.
func (s Scenario) Until(endS float64) Scenario {
	if endS >= s.Duration {
		return s
	}
	s.Duration = endS
	s.Events = slices.DeleteFunc(slices.Clone(s.Events), func(ev Event) bool { return ev.TimeS > endS })
	return s
}

func opposite(side string) string {
	if side == SideLeft {
		return SideRight
	}
	return SideLeft
}

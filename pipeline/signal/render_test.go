package signal

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

var renderStart = time.Date(2026, 2, 4, 21, 32, 17, 0, time.UTC)

// renderCases feed the round trip, the line-form check against the real
// logs and the fuzz seed corpus. unseenForms marks specs with lines the
// real logs never show: texts of our own, or no light at all.
var renderCases = []struct {
	name        string
	spec        LogSpec
	unseenForms bool
}{
	{
		name: "double with decision",
		spec: LogSpec{
			Phrase: 9, Start: renderStart,
			Events: []Event{
				{TimeS: 0.001, Kind: EventRecordingStarted},
				{TimeS: 1.171, Kind: EventBladeContact},
				{TimeS: 1.291, Kind: EventHit, Side: "right"},
				{TimeS: 1.316, Kind: EventLockoutStarted},
				{TimeS: 1.537, Kind: EventSimultaneousHit},
				{TimeS: 1.58, Kind: EventRecordingEnded},
			},
			Box: Box{Left: true, Right: true}, RefereeDecision: "left",
		},
	},
	{
		name: "single left light, hit text naming right as the box does",
		spec: LogSpec{
			Phrase: 97, Start: renderStart,
			Events: []Event{
				{TimeS: 0, Kind: EventRecordingStarted},
				{TimeS: 5.71, Kind: EventBladeContact},
				{TimeS: 5.939, Kind: EventHit, Side: "right"},
				{TimeS: 5.995, Kind: EventLockoutStarted},
				{TimeS: 6.184, Kind: EventRecordingEnded},
			},
			Box: Box{Left: true}, RefereeDecision: "right",
		},
	},
	{
		name: "abstain, old lockout window, times over ten seconds",
		spec: LogSpec{
			Phrase: 2, Start: renderStart, LockoutWindowS: 0.13,
			Events: []Event{
				{TimeS: 10.088, Kind: EventBladeContact},
				{TimeS: 12.77, Kind: EventSimultaneousHit},
				{TimeS: 12.77, Kind: EventHit, Side: "left"},
				{TimeS: 12.837, Kind: EventLockoutStarted},
				{TimeS: 13.026, Kind: EventRecordingEnded},
			},
			Box: Box{Left: true, Right: true}, RefereeDecision: "abstain",
		},
	},
	{
		name: "single right light without decision, contacts after the end",
		spec: LogSpec{
			Phrase: 119, Start: renderStart,
			Events: []Event{
				{TimeS: 0, Kind: EventRecordingStarted},
				{TimeS: 3.198, Kind: EventHit, Side: "left"},
				{TimeS: 3.253, Kind: EventLockoutStarted},
				{TimeS: 3.442, Kind: EventRecordingEnded},
				{TimeS: 3.5, Kind: EventBladeContact},
			},
			Box: Box{Right: true},
		},
	},
	{
		name:        "no events, no light",
		spec:        LogSpec{Phrase: 0, Start: renderStart},
		unseenForms: true,
	},
	{
		name: "texts of our own",
		spec: LogSpec{
			Phrase: 1, Start: renderStart,
			Events: []Event{
				{TimeS: 0, Kind: EventRecordingStarted},
				{TimeS: 1.2, Kind: EventHit, Side: "right", Text: "HIT: Right scores on Left! (simultaneous)"},
				{TimeS: 1.3, Kind: EventHit},
				{TimeS: 1.4, Kind: EventOther, Text: "Referee halt:\ninjury"},
				{TimeS: 1.5, Kind: EventOther},
				{TimeS: 1.6, Kind: EventLockoutStarted, Text: "Lockout period started (0.170s window)"},
			},
			Box: Box{Left: true, Right: true}, RefereeDecision: "right",
		},
		unseenForms: true,
	},
}

// firstOf is the time of the first event of one of kinds, or nil.
func firstOf(events []Event, kinds ...EventKind) *float64 {
	for _, ev := range events {
		for _, k := range kinds {
			if ev.Kind == k {
				return ptr(ev.TimeS)
			}
		}
	}
	return nil
}

func TestRenderParseRoundTrip(t *testing.T) {
	for _, tc := range renderCases {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			p, err := Parse(Render(spec))
			if err != nil {
				t.Fatalf("Parse(Render(spec)): %v\n%s", err, Render(spec))
			}
			if p.Phrase == nil || *p.Phrase != spec.Phrase {
				t.Errorf("phrase = %v, want %d", p.Phrase, spec.Phrase)
			}
			start := spec.Start.Format("2006-01-02 15:04:05")
			if p.InitializedAt != start || p.RecordingStartedAt != start {
				t.Errorf("initialized at %q, recording started at %q, want %q", p.InitializedAt, p.RecordingStartedAt, start)
			}
			if p.Box == nil || *p.Box != spec.Box {
				t.Errorf("box = %+v, want %+v", p.Box, spec.Box)
			}
			var decision *string
			if spec.RefereeDecision != "" {
				decision = &spec.RefereeDecision
			}
			if !reflect.DeepEqual(p.RefereeDecision, decision) {
				t.Errorf("referee decision = %v, want %v", p.RefereeDecision, decision)
			}
			if len(p.Events) != len(spec.Events) {
				t.Fatalf("%d events, want %d:\n%s", len(p.Events), len(spec.Events), Render(spec))
			}
			var contacts []float64
			for i, want := range spec.Events {
				got := p.Events[i]
				if want.Kind == EventBladeContact {
					contacts = append(contacts, want.TimeS)
				}
				if got.TimeS != want.TimeS || got.Kind != want.Kind || got.Side != want.Side {
					t.Errorf("event %d = %+v, want %+v", i, got, want)
				}
				if text := strings.ReplaceAll(want.Text, "\n", " "); text != "" && got.Text != text {
					t.Errorf("event %d text = %q, want %q", i, got.Text, text)
				}
			}
			if len(contacts) > 0 && !reflect.DeepEqual(p.BladeContactsS, contacts) {
				t.Errorf("blade contacts = %v, want %v", p.BladeContactsS, contacts)
			}
			facts := []struct {
				name      string
				got, want *float64
			}{
				{"recording start", p.RecordingStartS, firstOf(spec.Events, EventRecordingStarted)},
				{"recording end", p.RecordingEndS, firstOf(spec.Events, EventRecordingEnded)},
				{"first hit", p.FirstHitS, firstOf(spec.Events, EventHit, EventSimultaneousHit)},
				{"simultaneous hit", p.SimultaneousHitS, firstOf(spec.Events, EventSimultaneousHit)},
				{"lockout start", p.LockoutStartS, firstOf(spec.Events, EventLockoutStarted)},
			}
			for _, f := range facts {
				if !reflect.DeepEqual(f.got, f.want) {
					t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
				}
			}
		})
	}
}

func TestRenderGeneratedTexts(t *testing.T) {
	got := string(Render(renderCases[0].spec))
	want := `Phrase 9 initialized at 2026-02-04 21:32:17
Audio cue executed at 2026-02-04 21:32:15
Audio cue duration: 2.50s
Start command issued at 2026-02-04 21:32:17
Recording started at 2026-02-04 21:32:17
 0.001s | Phrase recording started
 1.171s | Off-Target: Blade-to-blade contact.
 1.291s | HIT: Right scores on Left!
Lockout active (0.200s window)
 1.316s | Lockout period started (0.200s window)
 1.537s | HIT: Simultaneous valid hits!
 1.580s | Phrase recording ended
Scores -> Fencer 1: HIT, Fencer 2: HIT
Phrase ended
[2026-02-04 21:32:20] Interpretation -> Right Fencer: HIT, Left Fencer: HIT
[2026-02-04 21:32:20] Awaiting manual winner selection (double hit)
[2026-02-04 21:32:23] Confirmed result winner: Left Fencer (Red Lamp)
`
	if got != want {
		t.Errorf("Render\n got:\n%s\nwant:\n%s", got, want)
	}
}

func TestRenderWindowAndSingleLight(t *testing.T) {
	got := string(Render(renderCases[2].spec))
	for _, line := range []string{
		"Lockout active (0.130s window)\n12.837s | Lockout period started (0.130s window)\n",
		"Scores -> Fencer 1: HIT, Fencer 2: HIT\n",
		"Confirmed result winner: Abstain\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("Render output lacks %q:\n%s", line, got)
		}
	}
	got = string(Render(renderCases[1].spec))
	for _, line := range []string{
		"Scores -> Fencer 1: MISS, Fencer 2: HIT\n",
		"Interpretation -> Right Fencer: MISS, Left Fencer: HIT\n",
		"Awaiting manual winner selection (single hit confirmation)\n",
		"Confirmed result winner: Right Fencer (Green Lamp)\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("Render output lacks %q:\n%s", line, got)
		}
	}
	if got := string(Render(LogSpec{Start: renderStart, RefereeDecision: "bogus"})); strings.Contains(got, "winner") || strings.Contains(got, "Awaiting") {
		t.Errorf("Render wrote a decision or an awaiting line for no light and an unknown decision:\n%s", got)
	}
}

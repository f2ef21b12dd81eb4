package signal

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// LogSpec describes a phrase log for Render, such as one whose event times
// match a generated video.
type LogSpec struct {
	// Phrase is the phrase number, zero or more.
	Phrase int
	// Start is the wall-clock time of "Recording started at", written to
	// the second in its own location. The header and the start command
	// carry the same time; the audio cue is written two seconds earlier.
	Start time.Time
	// Events are the timed events, written in the given order. TimeS must
	// be finite and non-negative and is written to the millisecond, as the
	// box does. A non-empty Text is written as is (newlines become spaces)
	// and decides what Parse reads back; an empty Text is generated from
	// Kind and Side in the box's wording. For EventHit, Side is the side
	// the text names as scorer: to imitate the real box in a single-light
	// phrase, give the side opposite to the light (see Event.Side). A hit
	// without Side is written "HIT: Valid hit!", an EventOther without
	// Text "Other event".
	Events []Event
	// Box is the verdict of the "Scores ->" and "Interpretation ->" lines.
	Box Box
	// RefereeDecision is "", "left", "right" or "abstain"; "" (or any
	// other value) writes no decision line.
	RefereeDecision string
	// LockoutWindowS is the window written on the "Lockout active" line
	// (before the first EventLockoutStarted) and in generated lockout
	// texts; zero means 0.200 s, the current box setting.
	LockoutWindowS float64
}

const (
	stampLayout          = "2006-01-02 15:04:05"
	defaultLockoutWindow = 0.200
)

// Render writes spec as a log in the real box's format: header lines
// ("Phrase N initialized at ...", "Audio cue ...", "Start command issued
// ...", "Recording started at ..."), the timed lines (" 1.291s | HIT: Right
// scores on Left!") with "Lockout active (...)" before the first lockout
// event, "Scores -> Fencer 1: X, Fencer 2: Y" (Fencer 1 is the right
// fencer), "Phrase ended", the timestamped Interpretation and awaiting lines
// and, when spec has one, a "Confirmed result winner:" line.
// Parse(Render(spec)) gives back the spec's phrase number, start, events,
// box and decision.
func Render(spec LogSpec) []byte {
	var b strings.Builder
	start := spec.Start.Format(stampLayout)
	win := spec.LockoutWindowS
	if win == 0 {
		win = defaultLockoutWindow
	}
	fmt.Fprintf(&b, "Phrase %d initialized at %s\n", spec.Phrase, start)
	fmt.Fprintf(&b, "Audio cue executed at %s\n", spec.Start.Add(-2*time.Second).Format(stampLayout))
	b.WriteString("Audio cue duration: 2.50s\n")
	fmt.Fprintf(&b, "Start command issued at %s\n", start)
	fmt.Fprintf(&b, "Recording started at %s\n", start)

	lockoutSeen := false
	last := 0.0
	for _, ev := range spec.Events {
		if ev.Kind == EventLockoutStarted && !lockoutSeen {
			fmt.Fprintf(&b, "Lockout active (%.3fs window)\n", win)
			lockoutSeen = true
		}
		fmt.Fprintf(&b, "%6.3fs | %s\n", ev.TimeS, eventText(ev, win))
		last = max(last, ev.TimeS)
	}
	right, left := hitMiss(spec.Box.Right), hitMiss(spec.Box.Left)
	fmt.Fprintf(&b, "Scores -> Fencer 1: %s, Fencer 2: %s\n", right, left)
	b.WriteString("Phrase ended\n")

	// The box stamps its after-phrase lines about a second after the last
	// event and the referee answers a few seconds later.
	after := spec.Start.Add(time.Duration(math.Ceil(last)+1) * time.Second)
	stamp := after.Format(stampLayout)
	fmt.Fprintf(&b, "[%s] Interpretation -> Right Fencer: %s, Left Fencer: %s\n", stamp, right, left)
	switch touchOf(spec.Box) {
	case touchDouble:
		fmt.Fprintf(&b, "[%s] Awaiting manual winner selection (double hit)\n", stamp)
	case sideLeft, sideRight:
		fmt.Fprintf(&b, "[%s] Awaiting manual winner selection (single hit confirmation)\n", stamp)
	}
	if winner := decisionText(spec.RefereeDecision); winner != "" {
		fmt.Fprintf(&b, "[%s] Confirmed result winner: %s\n", after.Add(3*time.Second).Format(stampLayout), winner)
	}
	return []byte(b.String())
}

func eventText(ev Event, win float64) string {
	if ev.Text != "" {
		return strings.NewReplacer("\r", " ", "\n", " ").Replace(ev.Text)
	}
	switch ev.Kind {
	case EventRecordingStarted:
		return "Phrase recording started"
	case EventRecordingEnded:
		return "Phrase recording ended"
	case EventBladeContact:
		return "Off-Target: Blade-to-blade contact."
	case EventHit:
		switch ev.Side {
		case sideLeft:
			return "HIT: Left scores on Right!"
		case sideRight:
			return "HIT: Right scores on Left!"
		}
		return "HIT: Valid hit!"
	case EventSimultaneousHit:
		return "HIT: Simultaneous valid hits!"
	case EventLockoutStarted:
		return fmt.Sprintf("Lockout period started (%.3fs window)", win)
	}
	return "Other event"
}

func hitMiss(on bool) string {
	if on {
		return "HIT"
	}
	return "MISS"
}

func decisionText(d string) string {
	switch d {
	case sideLeft:
		return "Left Fencer (Red Lamp)"
	case sideRight:
		return "Right Fencer (Green Lamp)"
	case decisionAbstain:
		return "Abstain"
	}
	return ""
}

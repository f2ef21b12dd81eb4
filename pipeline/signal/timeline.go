package signal

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// WriteTimeline writes the human-readable report of `referee probe-signal`
// to w: a header (phrase number, when it was initialized, when the recording
// started), every event with its time and its video frame at fps
// (frame = round(t*fps)), then the box verdict (which lamps, red left and
// green right, came on), the touch and the referee's decision ("none
// recorded" when the log has none). fps must be positive and finite, p not
// nil. The report is built in memory and written with one Write; a write
// error is returned wrapped.
func WriteTimeline(w io.Writer, p *Phrase, fps float64) error {
	if p == nil {
		return errors.New("write timeline: no phrase to report")
	}
	if !(fps > 0) || math.IsInf(fps, 0) {
		return fmt.Errorf("write timeline: frame rate %v fps is not a positive number; check the video's frame rate", fps)
	}
	var b strings.Builder
	writeHeader(&b, p)
	writeEvents(&b, p, fps)
	writeVerdict(&b, p)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write timeline: %w", err)
	}
	return nil
}

func writeHeader(b *strings.Builder, p *Phrase) {
	if p.Phrase != nil {
		fmt.Fprintf(b, "Phrase %d", *p.Phrase)
	} else {
		b.WriteString("Phrase (number not in the log)")
	}
	if p.InitializedAt != "" {
		fmt.Fprintf(b, ", initialized at %s", p.InitializedAt)
	}
	b.WriteString("\n")
	if p.RecordingStartedAt != "" {
		fmt.Fprintf(b, "Recording started at %s\n", p.RecordingStartedAt)
	} else {
		b.WriteString("Recording start: not in the log\n")
	}
	b.WriteString("\n")
}

func writeEvents(b *strings.Builder, p *Phrase, fps float64) {
	if len(p.Events) == 0 {
		b.WriteString("The log has no timed events.\n\n")
		return
	}
	fmt.Fprintf(b, "Events (time in seconds from the start of the recording, video frame at %g fps):\n", fps)
	fmt.Fprintf(b, "%9s %7s  %s\n", "time", "frame", "what happened")
	for _, ev := range p.Events {
		what := describe(ev)
		if p.RecordingEndS != nil && ev.TimeS > *p.RecordingEndS {
			what += " [after the recording ended]"
		}
		fmt.Fprintf(b, "%8.3fs %7.0f  %s\n", ev.TimeS, math.Round(ev.TimeS*fps), what)
	}
	b.WriteString("\n")
}

// describe says in a referee's words what an event means; hits and unknown
// lines also show the box's own text, since it can contradict the lights.
func describe(ev Event) string {
	switch ev.Kind {
	case EventRecordingStarted:
		return "recording started"
	case EventRecordingEnded:
		return "recording ended"
	case EventBladeContact:
		return "blades touched (blade-to-blade contact, no light)"
	case EventHit:
		return fmt.Sprintf("valid hit registered (box text: %q)", ev.Text)
	case EventSimultaneousHit:
		return "both lights on: the box saw both hits"
	case EventLockoutStarted:
		if w := window(ev.Text); w != nil {
			return fmt.Sprintf("lockout started: the other fencer has %.3f s to hit as well", *w)
		}
		return "lockout started: the other fencer has a short window to hit as well"
	}
	return fmt.Sprintf("box note: %q", ev.Text)
}

func writeVerdict(b *strings.Builder, p *Phrase) {
	if p.Box == nil {
		b.WriteString("Box verdict: not in the log (no Scores or Interpretation line)\n")
	} else {
		fmt.Fprintf(b, "Box verdict: left light (red) %s, right light (green) %s\n", onOff(p.Box.Left), onOff(p.Box.Right))
	}
	touch := "unknown"
	if p.Touch != nil {
		switch *p.Touch {
		case sideLeft:
			touch = "left scores (only the left light, red)"
		case sideRight:
			touch = "right scores (only the right light, green)"
		case touchDouble:
			touch = "double (both lights): in foil and sabre, right-of-way decides"
		case touchNone:
			touch = "none (no light)"
		default:
			touch = *p.Touch
		}
	}
	fmt.Fprintf(b, "Touch: %s\n", touch)
	decision := "none recorded"
	if p.RefereeDecision != nil {
		switch *p.RefereeDecision {
		case sideLeft:
			decision = "left fencer (red)"
		case sideRight:
			decision = "right fencer (green)"
		case decisionAbstain:
			decision = "abstain (no touch awarded)"
		default:
			decision = *p.RefereeDecision
		}
	}
	fmt.Fprintf(b, "Referee's decision: %s\n", decision)
	if side := contradictedSide(p); side != "" {
		fmt.Fprintf(b, "\nNote: the box's hit line names the %s fencer, but only the %s light came on.\n"+
			"The box's hit text names the opposite side in single-light phrases; its lights are the verdict.\n",
			side, *p.Touch)
	}
}

// contradictedSide returns the side a hit event's text names when it is not
// the single light the box turned on, or "".
func contradictedSide(p *Phrase) string {
	if p.Touch == nil || (*p.Touch != sideLeft && *p.Touch != sideRight) {
		return ""
	}
	for _, ev := range p.Events {
		if ev.Kind == EventHit && ev.Side != "" && ev.Side != *p.Touch {
			return ev.Side
		}
	}
	return ""
}

func onOff(on bool) string {
	if on {
		return "ON"
	}
	return "off"
}

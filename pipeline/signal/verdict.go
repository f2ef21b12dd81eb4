package signal

// Verdict is what the signal alone can say about who scored.
type Verdict struct {
	// Winner is WinnerLeft, WinnerRight, WinnerNone or WinnerUndecided.
	Winner string `json:"winner"`
	// Reason says why, in words a referee reads.
	Reason string `json:"reason"`
}

// Winner values of a Verdict.
const (
	WinnerLeft      = "left"
	WinnerRight     = "right"
	WinnerNone      = "none"
	WinnerUndecided = "undecided"
)

// ReasonDouble is the Reason of the Verdict of every double touch.
const ReasonDouble = "double touch: right-of-way needs the video analysis"

// SignalVerdict says who scored according to the box's lights (p.Box):
// a single light gives the touch to that fencer, no light gives "none", and
// a double touch or a log without a box verdict (or a nil p) is "undecided",
// the double with Reason ReasonDouble. The event texts and the referee's
// decision are not consulted.
func (p *Phrase) SignalVerdict() Verdict {
	if p == nil || p.Box == nil {
		return Verdict{Winner: WinnerUndecided, Reason: "the log has no box verdict (no Scores or Interpretation line), so the lights cannot say who scored"}
	}
	switch touchOf(*p.Box) {
	case touchDouble:
		return Verdict{Winner: WinnerUndecided, Reason: ReasonDouble}
	case sideLeft:
		return Verdict{Winner: WinnerLeft, Reason: "Left scored: only the left light (red) came on"}
	case sideRight:
		return Verdict{Winner: WinnerRight, Reason: "Right scored: only the right light (green) came on"}
	}
	return Verdict{Winner: WinnerNone, Reason: "no touch: neither light came on"}
}

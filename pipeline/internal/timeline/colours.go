package timeline

import (
	"github.com/referee-project/referee/pipeline/rightofway"
	"github.com/referee-project/referee/pipeline/signal"
)

// Colour is a BGR colour, the order of bgr.Image.
type Colour struct{ B, G, R uint8 }

// The colours every picture of a phrase uses, so that a referee learns them
// once. Each colour means one thing: the left fencer red and the right
// fencer green (their lamps), the phases colours that are neither, and each
// kind of scoring-box event its own; a hit is drawn in the colour of the
// fencer whose lamp it lit.
var (
	LeftColour   = Colour{60, 60, 230}
	RightColour  = Colour{60, 200, 60}
	TextColour   = Colour{255, 255, 255}
	EventColours = map[signal.EventKind]Colour{
		signal.EventBladeContact:   {0, 215, 255},
		signal.EventLockoutStarted: {200, 200, 200},
	}
	PhaseColours = map[string]Colour{
		rightofway.PhaseAdvance: {230, 160, 60},
		rightofway.PhaseLunge:   {220, 80, 220},
		rightofway.PhasePause:   {120, 120, 120},
		rightofway.PhaseRetreat: {40, 140, 230},
		rightofway.PhaseUnseen:  {50, 50, 50},
	}
)

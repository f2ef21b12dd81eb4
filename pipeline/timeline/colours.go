package timeline

import "github.com/referee-project/referee/pipeline/signal"

// Colour is a BGR colour, the order of bgr.Image.
type Colour struct{ B, G, R uint8 }

// The colours every picture of a phrase uses, so that a referee learns
// them once: the left fencer red (the red lamp), the right fencer green
// (the green lamp), and each kind of scoring-box event its own colour.
var (
	LeftColour   = Colour{60, 60, 230}
	RightColour  = Colour{60, 200, 60}
	TextColour   = Colour{255, 255, 255}
	EventColours = map[signal.EventKind]Colour{
		signal.EventBladeContact:    {0, 215, 255},
		signal.EventHit:             {255, 255, 255},
		signal.EventSimultaneousHit: {255, 255, 255},
		signal.EventLockoutStarted:  {200, 160, 80},
	}
)

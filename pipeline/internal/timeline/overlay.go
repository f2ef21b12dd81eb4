package timeline

import (
	"fmt"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/rightofway"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/videoio"
)

// FlashS is how long an event's banner stays on an overlay video.
const FlashS = 0.4

// FencerLabel draws, with its bottom left corner at (x, y), a fencer's
// name on the fencer's colour and then the phase the tracks give at this
// frame on the phase's colour, as in timeline.png: on every picture of a
// phrase a colour means one thing.
func FencerLabel(img bgr.Image, name, phase string, x, y int, col Colour) error {
	nw, th := videoio.TextSize(name, 0.45, 1)
	pw, _ := videoio.TextSize(phase, 0.45, 1)
	y = max(y, th+4)
	img.FillRect(x, y-th-3, x+nw+4, y+3, col.B, col.G, col.R)
	if err := videoio.DrawText(img, name, x+2, y, 0.45, 1, 0, 0, 0); err != nil {
		return err
	}
	pc, ok := PhaseColours[phase]
	if !ok {
		pc = PhaseColours[rightofway.PhaseUnseen]
	}
	img.FillRect(x+nw+4, y-th-3, x+nw+pw+10, y+3, pc.B, pc.G, pc.R)
	return videoio.DrawText(img, phase, x+nw+7, y, 0.45, 1, TextColour.B, TextColour.G, TextColour.R)
}

// EventBanners draws, bottom up in the lower left corner of frame i of a
// video at fps, the banner of every event of tl of the last FlashS in its
// colour (a hit in its lamp's), and a frame around the picture on the
// event's own frame.
func EventBanners(img bgr.Image, tl rightofway.Timeline, i int, fps float64) error {
	y := img.Height - 8
	for _, ev := range tl.Events {
		col, _, ok := EventStyle(ev)
		frame := int(ev.TimeS*fps + 0.5)
		if !ok || i < frame || float64(i-frame) >= FlashS*fps {
			continue
		}
		if i == frame {
			Box(img, 0, 0, img.Width, img.Height, 6, col)
		}
		text := fmt.Sprintf("%.3f s  %s", ev.TimeS, banner(ev))
		tw, th := videoio.TextSize(text, 0.5, 1)
		img.FillRect(4, y-th-4, tw+12, y+4, 0, 0, 0)
		if err := videoio.DrawText(img, text, 8, y, 0.5, 1, col.B, col.G, col.R); err != nil {
			return err
		}
		y -= th + 10
	}
	return nil
}

// banner names an event for an overlay. The box's own hit text is not
// shown: in single-light phrases it names the wrong fencer
// (signal-format.md).
func banner(ev rightofway.TimelineEvent) string {
	lamp := ""
	switch ev.Light {
	case "left":
		lamp = ": LEFT LAMP (RED)"
	case "right":
		lamp = ": RIGHT LAMP (GREEN)"
	}
	switch ev.Kind {
	case signal.EventBladeContact:
		return "BLADE CONTACT"
	case signal.EventHit:
		return "FIRST HIT" + lamp
	case signal.EventSimultaneousHit:
		return "SECOND LIGHT" + lamp + ": DOUBLE TOUCH"
	case signal.EventLockoutStarted:
		return "LOCKOUT STARTED"
	}
	return string(ev.Kind)
}

// Box draws the outline of the rectangle [x0, x1) x [y0, y1), t pixels
// thick, inside it.
func Box(img bgr.Image, x0, y0, x1, y1, t int, c Colour) {
	img.FillRect(x0, y0, x1, y0+t, c.B, c.G, c.R)
	img.FillRect(x0, y1-t, x1, y1, c.B, c.G, c.R)
	img.FillRect(x0, y0, x0+t, y1, c.B, c.G, c.R)
	img.FillRect(x1-t, y0, x1, y1, c.B, c.G, c.R)
}

package videoio

import (
	"fmt"
	"image"
	"image/color"
	"runtime"

	"gocv.io/x/gocv"

	"github.com/referee-project/referee/pipeline/bgr"
)

// DrawText writes text on img in place, in OpenCV's Hershey simplex font,
// anti-aliased, with the left end of its baseline at (x, y). scale 1 makes
// capitals about 22 pixels tall; thickness is the stroke width in pixels.
// Text outside img is clipped. Only printable ASCII is drawn; OpenCV shows
// other characters as '?'. It is safe for concurrent use on different
// images.
func DrawText(img bgr.Image, text string, x, y int, scale float64, thickness int, b, g, r uint8) error {
	if !(scale > 0) || thickness < 1 {
		return fmt.Errorf("draw text: scale %v and thickness %d must be positive", scale, thickness)
	}
	m, err := matFromImage(img)
	if err != nil {
		return fmt.Errorf("draw text: %w", err)
	}
	defer m.Close()
	gocv.PutTextWithParams(&m, text, image.Pt(x, y), gocv.FontHersheySimplex, scale,
		color.RGBA{R: r, G: g, B: b, A: 255}, thickness, gocv.LineAA, false)
	runtime.KeepAlive(img.Pix)
	return nil
}

// TextSize returns the width of text drawn by DrawText with scale and
// thickness, and its height above the baseline, in pixels.
func TextSize(text string, scale float64, thickness int) (w, h int) {
	p := gocv.GetTextSize(text, gocv.FontHersheySimplex, scale, thickness)
	return p.X, p.Y
}

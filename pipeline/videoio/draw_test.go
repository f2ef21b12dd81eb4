package videoio

import (
	"testing"

	"github.com/referee-project/referee/pipeline/bgr"
)

func TestDrawTextPaintsInsideItsBoxOnly(t *testing.T) {
	img := bgr.New(200, 60)
	w, h := TextSize("Left 1.54 s", 0.6, 1)
	if w <= 0 || h <= 0 {
		t.Fatalf("TextSize = %d x %d, want positive", w, h)
	}
	if w2, _ := TextSize("Left 1.54 s, right", 0.6, 1); w2 <= w {
		t.Errorf("longer text is %d px wide, not wider than %d", w2, w)
	}
	x, y := 10, 40
	if err := DrawText(img, "Left 1.54 s", x, y, 0.6, 1, 0, 0, 255); err != nil {
		t.Fatal(err)
	}
	inside, outside := 0, 0
	for py := range img.Height {
		for px := range img.Width {
			b, g, r := img.At(px, py)
			if b == 0 && g == 0 && r == 0 {
				continue
			}
			if b != 0 || g != 0 {
				t.Fatalf("pixel (%d,%d) is %d,%d,%d: want red only", px, py, b, g, r)
			}
			// Anti-aliasing and descenders reach a few pixels past the box.
			if px >= x-2 && px <= x+w+2 && py >= y-h-2 && py <= y+h/2+2 {
				inside++
			} else {
				outside++
			}
		}
	}
	if inside < 50 || outside > 0 {
		t.Errorf("%d pixels painted inside the text box and %d outside; want many inside, none outside", inside, outside)
	}
}

func TestDrawTextRejectsBadInput(t *testing.T) {
	img := bgr.New(10, 10)
	for _, c := range []struct {
		img   bgr.Image
		scale float64
		thick int
		want  string
	}{
		{img, 0, 1, "draw text: scale 0 and thickness 1 must be positive"},
		{img, 1, 0, "draw text: scale 1 and thickness 0 must be positive"},
		{bgr.Image{Width: 10, Height: 10}, 1, 1, "draw text: picture 10x10 with 0 bytes is not a valid BGR image"},
	} {
		err := DrawText(c.img, "x", 1, 8, c.scale, c.thick, 255, 255, 255)
		if err == nil || err.Error() != c.want {
			t.Errorf("DrawText(scale %v, thickness %d) = %v, want %q", c.scale, c.thick, err, c.want)
		}
	}
}

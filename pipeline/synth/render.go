package synth

import (
	"fmt"

	"github.com/referee-project/referee/pipeline/bgr"
)

type colour struct{ b, g, r uint8 }

// The left fencer is in red tones, the right in green, as their lamps.
type palette struct{ jacket, trousers, mask, shoe colour }

var (
	leftColours  = palette{jacket: colour{70, 70, 215}, trousers: colour{50, 50, 165}, mask: colour{40, 40, 115}, shoe: colour{30, 30, 60}}
	rightColours = palette{jacket: colour{70, 200, 70}, trousers: colour{50, 155, 50}, mask: colour{40, 110, 40}, shoe: colour{30, 60, 30}}

	wallColour  = colour{88, 78, 66}
	floorColour = colour{62, 63, 64}
	stripColour = colour{172, 176, 180}
	lineColour  = colour{245, 245, 245}
	bladeColour = colour{215, 215, 228}
	guardColour = colour{170, 170, 185}
)

// view maps metres to pixels with one scale for both axes, so that the
// figures keep their proportions at any frame size and aspect.
type view struct{ s, ox, floorY float64 }

func viewFor(w, h int) view {
	s := min(float64(w)/(stripM+0.6), float64(h)/3.0)
	return view{s: s, ox: (float64(w) - stripM*s) / 2, floorY: float64(h)/2 + 0.85*s}
}

func (v view) pt(p vec) (float64, float64) { return v.ox + p.x*v.s, v.floorY - p.y*v.s }

// Render draws the scene at t seconds (clamped to [0, Duration]) over every
// pixel of dst: a plain wall and floor, the strip with its centre, en-garde
// and end lines, and the two fencers, scaled to dst (320x240 to 1920x1080
// and any aspect). Render depends only on s, t and the size of dst, so
// frame i of a video at fps is Render(dst, i/fps). It panics if dst is not
// Valid.
func (s Scenario) Render(dst bgr.Image, t float64) {
	if !dst.Valid() {
		panic(fmt.Sprintf("synth.Render: picture %dx%d with %d bytes is not valid", dst.Width, dst.Height, len(dst.Pix)))
	}
	v := viewFor(dst.Width, dst.Height)
	fill := func(c colour) { dst.Fill(c.b, c.g, c.r) }
	fill(wallColour)
	dst.FillRect(0, int(v.floorY), dst.Width, dst.Height, floorColour.b, floorColour.g, floorColour.r)

	// The strip seen slightly from above: a band whose middle is where the
	// feet stand.
	x0, _ := v.pt(vec{0, 0})
	x1, _ := v.pt(vec{stripM, 0})
	top, bottom := v.floorY-0.06*v.s, v.floorY+0.22*v.s
	dst.FillRect(int(x0), int(top), int(x1+0.5), int(bottom+0.5), stripColour.b, stripColour.g, stripColour.r)
	lw := max(0.04*v.s, 1)
	for _, f := range []float64{0, 0.30, 0.5, 0.70, 1} {
		x, _ := v.pt(vec{f * stripM, 0})
		dst.FillRect(int(x-lw/2), int(top), int(x+lw/2+0.5), int(bottom+0.5), lineColour.b, lineColour.g, lineColour.r)
	}

	left, right := s.bodiesAt(t)
	drawFencer(dst, v, left, leftColours)
	drawFencer(dst, v, right, rightColours)
}

func drawFencer(dst bgr.Image, v view, b body, c palette) {
	line := func(p, q vec, widthM float64, col colour) {
		x0, y0 := v.pt(p)
		x1, y1 := v.pt(q)
		dst.FillLine(x0, y0, x1, y1, widthM*v.s, col.b, col.g, col.r)
	}
	limb := func(p, q, r vec, widthM float64, col colour) {
		line(p, q, widthM, col)
		line(q, r, widthM, col)
	}
	shoe := func(f vec) {
		x, y := v.pt(f.add(vec{b.dir * 0.05, 0.03}))
		dst.FillEllipse(x, y, 0.12*v.s, 0.04*v.s, c.shoe.b, c.shoe.g, c.shoe.r)
	}
	limb(b.shoulder, b.backElbow, b.backHand, 0.08, c.jacket)
	limb(b.hip, b.backKnee, b.backFoot, 0.13, c.trousers)
	shoe(b.backFoot)
	limb(b.hip, b.frontKnee, b.frontFoot, 0.13, c.trousers)
	shoe(b.frontFoot)
	line(b.hip, b.shoulder, 2*torsoHalf, c.jacket)
	hx, hy := v.pt(b.head)
	dst.FillEllipse(hx, hy, 0.12*v.s, 0.14*v.s, c.mask.b, c.mask.g, c.mask.r)
	line(b.hand, b.tip, 0.022, bladeColour)
	limb(b.shoulder, b.elbow, b.hand, 0.09, c.jacket)
	gx, gy := v.pt(b.hand)
	dst.FillCircle(gx, gy, 0.06*v.s, guardColour.b, guardColour.g, guardColour.r)
}

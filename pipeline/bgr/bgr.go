// Package bgr holds the project's in-memory picture: a packed 8-bit BGR
// image that every package can pass around and draw on without OpenCV.
//
// The layout is OpenCV's CV_8UC3 with no row padding, so pipeline/videoio
// can hand Pix to OpenCV and back without converting it, while the rest of
// the code base stays pure Go.
package bgr

import "math"

// Image is a packed 8-bit BGR picture: the pixel (x, y) is
// Pix[(y*Width+x)*3 : (y*Width+x)*3+3] holding B, G, R in that order, rows
// top to bottom with no padding. The zero Image is empty and not Valid.
//
// Image is a small value that shares Pix: copies of an Image draw on the
// same pixels.
type Image struct {
	Width, Height int
	Pix           []byte
}

// New returns a black w x h Image. It panics if w or h is negative, like
// make does for a negative length.
func New(w, h int) Image {
	if w < 0 || h < 0 {
		panic("bgr.New: negative size")
	}
	return Image{Width: w, Height: h, Pix: make([]byte, w*h*3)}
}

// Valid reports whether m has positive dimensions and len(Pix) is exactly
// Width*Height*3, the only shape the drawing methods and pipeline/videoio
// accept.
func (m Image) Valid() bool {
	return m.Width > 0 && m.Height > 0 && len(m.Pix) == m.Width*m.Height*3
}

// At returns the colour of pixel (x, y). It panics if (x, y) is outside m.
func (m Image) At(x, y int) (b, g, r uint8) {
	i := m.offset(x, y)
	return m.Pix[i], m.Pix[i+1], m.Pix[i+2]
}

// Set paints pixel (x, y). It panics if (x, y) is outside m.
func (m Image) Set(x, y int, b, g, r uint8) {
	i := m.offset(x, y)
	m.Pix[i], m.Pix[i+1], m.Pix[i+2] = b, g, r
}

// Gray returns the luma of pixel (x, y) with the BT.601 weights OpenCV uses
// for BGR2GRAY (0.299 R + 0.587 G + 0.114 B), rounded. It panics if (x, y)
// is outside m.
func (m Image) Gray(x, y int) uint8 {
	i := m.offset(x, y)
	return luma(m.Pix[i], m.Pix[i+1], m.Pix[i+2])
}

func luma(b, g, r uint8) uint8 {
	return uint8((299*int(r) + 587*int(g) + 114*int(b) + 500) / 1000)
}

// offset checks bounds itself because a wrong x would otherwise silently
// land on a neighbouring row.
func (m Image) offset(x, y int) int {
	if x < 0 || y < 0 || x >= m.Width || y >= m.Height {
		panic("bgr: pixel outside the image")
	}
	return (y*m.Width + x) * 3
}

// Fill paints every pixel of m.
func (m Image) Fill(b, g, r uint8) {
	m.FillRect(0, 0, m.Width, m.Height, b, g, r)
}

// FillRect paints the pixels with x0 <= x < x1 and y0 <= y < y1, clipped to
// m; an empty or fully outside rectangle paints nothing.
func (m Image) FillRect(x0, y0, x1, y1 int, b, g, r uint8) {
	x0, y0 = max(x0, 0), max(y0, 0)
	x1, y1 = min(x1, m.Width), min(y1, m.Height)
	if x0 >= x1 || y0 >= y1 {
		return
	}
	// Paint the first row pixel by pixel, then copy it: rows are the bulk
	// of a frame and copy is far faster than per-pixel stores.
	first := m.Pix[(y0*m.Width+x0)*3 : (y0*m.Width+x1)*3]
	for i := 0; i < len(first); i += 3 {
		first[i], first[i+1], first[i+2] = b, g, r
	}
	for y := y0 + 1; y < y1; y++ {
		copy(m.Pix[(y*m.Width+x0)*3:(y*m.Width+x1)*3], first)
	}
}

// FillEllipse paints the pixels whose centres lie inside the axis-aligned
// ellipse centred at (cx, cy) with semi-axes rx and ry, in pixel units where
// pixel (x, y) has its centre at (x+0.5, y+0.5). It is clipped to m; a
// non-positive semi-axis paints nothing.
func (m Image) FillEllipse(cx, cy, rx, ry float64, b, g, r uint8) {
	if !(rx > 0 && ry > 0) {
		return
	}
	y0 := max(int(math.Floor(cy-ry)), 0)
	y1 := min(int(math.Ceil(cy+ry)), m.Height-1)
	for y := y0; y <= y1; y++ {
		dy := (float64(y) + 0.5 - cy) / ry
		if dy*dy > 1 {
			continue
		}
		half := rx * math.Sqrt(1-dy*dy)
		// Pixel x is inside when |x+0.5-cx| <= half.
		xs := int(math.Ceil(cx - half - 0.5))
		xe := int(math.Floor(cx+half-0.5)) + 1
		m.FillRect(xs, y, xe, y+1, b, g, r)
	}
}

// FillCircle paints the disc of the given radius centred at (cx, cy), with
// the same pixel-centre convention and clipping as FillEllipse.
func (m Image) FillCircle(cx, cy, radius float64, b, g, r uint8) {
	m.FillEllipse(cx, cy, radius, radius, b, g, r)
}

// FillLine paints a thick line with round caps: every pixel whose centre is
// nearer than width/2 to the segment from (x0, y0) to (x1, y1), with the same
// coordinate convention and clipping as FillEllipse. A width below 1 is
// raised to 1 so that a thin limb or blade never vanishes at small sizes.
func (m Image) FillLine(x0, y0, x1, y1, width float64, b, g, r uint8) {
	rad := math.Max(width, 1) / 2
	minX := max(int(math.Floor(math.Min(x0, x1)-rad)), 0)
	maxX := min(int(math.Ceil(math.Max(x0, x1)+rad)), m.Width-1)
	minY := max(int(math.Floor(math.Min(y0, y1)-rad)), 0)
	maxY := min(int(math.Ceil(math.Max(y0, y1)+rad)), m.Height-1)
	dx, dy := x1-x0, y1-y0
	l2 := dx*dx + dy*dy
	r2 := rad * rad
	for y := minY; y <= maxY; y++ {
		py := float64(y) + 0.5
		for x := minX; x <= maxX; x++ {
			px := float64(x) + 0.5
			t := 0.0
			if l2 > 0 {
				t = math.Max(0, math.Min(1, ((px-x0)*dx+(py-y0)*dy)/l2))
			}
			ex, ey := px-(x0+t*dx), py-(y0+t*dy)
			if ex*ex+ey*ey < r2 {
				i := (y*m.Width + x) * 3
				m.Pix[i], m.Pix[i+1], m.Pix[i+2] = b, g, r
			}
		}
	}
}

// Clone returns a deep copy of m, so a test or a pipeline stage can keep a
// frame while the original buffer is reused.
func (m Image) Clone() Image {
	return Image{Width: m.Width, Height: m.Height, Pix: append([]byte(nil), m.Pix...)}
}

package synth

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/referee-project/referee/pipeline/bgr"
)

// CounterMax is the largest frame index DrawCounter can encode: the code
// carries 20 bits, over 19 hours of video at 15 fps.
const CounterMax = 1<<counterDataBits - 1

// ErrNoCounter is returned, wrapped with the reason, by DecodeCounter when a
// picture carries no valid counter code (noise, another picture, a code
// damaged beyond its checks).
var ErrNoCounter = errors.New("no frame counter code in the picture")

// The machine-readable code is a band along the bottom quarter of the
// frame: two row pairs of 16 columns, 32 cells in all. Each bit is a column
// of two cells, the upper one white and the lower one black for a 1 and the
// reverse for a 0, so it is read by comparing the two cells rather than
// against a fixed threshold: that survives the brightness shifts, blur and
// ringing of JPEG, MPEG-4 and MJPEG. The 32 bits are a start guard (1, 0),
// the 20-bit index (most significant bit first), a CRC-8 of the index and
// an end guard (0, 1).
const (
	counterDataBits = 20
	counterCRCBits  = 8
	counterCols     = 16
	counterPairs    = 2
	counterBits     = counterCols * counterPairs

	// counterMinContrast is the luma difference (of 255) a bit's two cells
	// must show. Codes show over 240 even after JPEG at quality 50 or
	// OpenCV's mp4v, MJPG and VP8 writers at 160x120, while the cells of
	// noise or a natural picture average out to nearly the same grey.
	counterMinContrast = 64

	// The smallest picture whose cells are still two pixels each way.
	counterMinWidth  = 48
	counterMinHeight = 48
)

var (
	startGuard = [2]bool{true, false}
	endGuard   = [2]bool{false, true}
)

// counterGeometry places the code's cells in a w x h picture. Both drawing
// and decoding derive it from the picture size alone, which is why decoding
// needs no search: the frames under test keep their size end to end.
type counterGeometry struct {
	x0, x1 int // horizontal extent of the band
	y0, y1 int // vertical extent of the band
}

func geometryFor(w, h int) counterGeometry {
	mx := w / 64
	top := h - h/4
	return counterGeometry{x0: mx, x1: w - mx, y0: top, y1: h - max(h/64, 1)}
}

// cell returns the rectangle of bit column col of row pair pair; lower
// selects the lower cell of the pair.
func (g counterGeometry) cell(pair, col int, lower bool) (x0, y0, x1, y1 int) {
	w := g.x1 - g.x0
	x0 = g.x0 + col*w/counterCols
	x1 = g.x0 + (col+1)*w/counterCols
	rows := 2 * counterPairs
	row := 2 * pair
	if lower {
		row++
	}
	h := g.y1 - g.y0
	y0 = g.y0 + row*h/rows
	y1 = g.y0 + (row+1)*h/rows
	return x0, y0, x1, y1
}

// crc8 is CRC-8 (polynomial x^8+x^2+x+1, as in ATM HEC) over the 20 index
// bits, most significant first.
func crc8(v uint32) uint8 {
	var c uint8
	for i := counterDataBits - 1; i >= 0; i-- {
		in := uint8(v>>i) & 1
		top := c >> 7
		c <<= 1
		if top^in == 1 {
			c ^= 0x07
		}
	}
	return c
}

func counterCode(index int) [counterBits]bool {
	var bits [counterBits]bool
	bits[0], bits[1] = startGuard[0], startGuard[1]
	v := uint32(index)
	for i := range counterDataBits {
		bits[2+i] = v>>(counterDataBits-1-i)&1 == 1
	}
	c := crc8(v)
	for i := range counterCRCBits {
		bits[2+counterDataBits+i] = c>>(counterCRCBits-1-i)&1 == 1
	}
	bits[counterBits-2], bits[counterBits-1] = endGuard[0], endGuard[1]
	return bits
}

// DrawCounter paints dst as a counter frame for frame number index: a dark
// background, the index in large seven-segment digits that a person can
// read in a player, and along the bottom quarter a band of black and white
// blocks that DecodeCounter reads back from the same-sized picture, even
// after JPEG at quality 50 or MPEG-4 (mp4v) and MJPEG video compression.
// Every pixel of dst is overwritten.
//
// DrawCounter panics if index is outside [0, CounterMax] or dst is not a
// Valid picture of at least 48x48 pixels: those are programming errors, as
// the code could not carry such an index or fit such a picture.
func DrawCounter(dst bgr.Image, index int) {
	if index < 0 || index > CounterMax {
		panic(fmt.Sprintf("synth.DrawCounter: index %d outside [0, %d]", index, CounterMax))
	}
	if !dst.Valid() || dst.Width < counterMinWidth || dst.Height < counterMinHeight {
		panic(fmt.Sprintf("synth.DrawCounter: picture %dx%d is not valid or smaller than %dx%d",
			dst.Width, dst.Height, counterMinWidth, counterMinHeight))
	}
	dst.Fill(40, 40, 40)
	g := geometryFor(dst.Width, dst.Height)
	drawDigits(dst, strconv.Itoa(index), g.y0)
	for i, bit := range counterCode(index) {
		pair, col := i/counterCols, i%counterCols
		for _, lower := range []bool{false, true} {
			x0, y0, x1, y1 := g.cell(pair, col, lower)
			var v uint8
			if bit != lower {
				v = 255
			}
			dst.FillRect(x0, y0, x1, y1, v, v, v)
		}
	}
}

// DecodeCounter reads the frame index that DrawCounter encoded in img,
// which must have the size it was drawn at. It returns an error wrapping
// ErrNoCounter, saying what failed, when img is not Valid or too small, when
// a bit's cells lack contrast (noise, a different picture) or when the
// guards or the CRC do not match. It only reads img and is safe for
// concurrent use.
func DecodeCounter(img bgr.Image) (int, error) {
	if !img.Valid() {
		return 0, fmt.Errorf("%w: picture %dx%d with %d bytes is not a valid BGR image", ErrNoCounter, img.Width, img.Height, len(img.Pix))
	}
	if img.Width < counterMinWidth || img.Height < counterMinHeight {
		return 0, fmt.Errorf("%w: picture %dx%d is smaller than %dx%d", ErrNoCounter, img.Width, img.Height, counterMinWidth, counterMinHeight)
	}
	g := geometryFor(img.Width, img.Height)
	var bits [counterBits]bool
	for i := range bits {
		pair, col := i/counterCols, i%counterCols
		upper := cellMean(img, g, pair, col, false)
		lower := cellMean(img, g, pair, col, true)
		d := upper - lower
		if d < counterMinContrast && d > -counterMinContrast {
			return 0, fmt.Errorf("%w: bit %d has contrast %d, below %d", ErrNoCounter, i, d, counterMinContrast)
		}
		bits[i] = d > 0
	}
	if bits[0] != startGuard[0] || bits[1] != startGuard[1] || bits[counterBits-2] != endGuard[0] || bits[counterBits-1] != endGuard[1] {
		return 0, fmt.Errorf("%w: guard blocks do not match", ErrNoCounter)
	}
	var v uint32
	for i := range counterDataBits {
		v <<= 1
		if bits[2+i] {
			v |= 1
		}
	}
	var c uint8
	for i := range counterCRCBits {
		c <<= 1
		if bits[2+counterDataBits+i] {
			c |= 1
		}
	}
	if c != crc8(v) {
		return 0, fmt.Errorf("%w: check sum %#02x does not match index %d", ErrNoCounter, c, v)
	}
	return int(v), nil
}

// cellMean averages the luma of the middle half of a cell (each way): the
// edges are where compression blurs one cell into its neighbours. It samples
// at most about 16x16 points so that a 1080p frame costs no more to read
// than a small one.
func cellMean(img bgr.Image, g counterGeometry, pair, col int, lower bool) int {
	x0, y0, x1, y1 := g.cell(pair, col, lower)
	w, h := x1-x0, y1-y0
	x0, x1 = x0+w/4, x1-w/4
	y0, y1 = y0+h/4, y1-h/4
	sx, sy := max(1, (x1-x0)/16), max(1, (y1-y0)/16)
	sum, n := 0, 0
	for y := y0; y < y1; y += sy {
		for x := x0; x < x1; x += sx {
			sum += int(img.Gray(x, y))
			n++
		}
	}
	return sum / n
}

// Seven-segment digits: segment bits a..g are 0..6 (a top, b top right,
// c bottom right, d bottom, e bottom left, f top left, g middle).
var sevenSegments = [10]uint8{
	0b0111111, 0b0000110, 0b1011011, 0b1001111, 0b1100110,
	0b1101101, 0b1111101, 0b0000111, 0b1111111, 0b1101111,
}

// digitBox is where one seven-segment digit goes: its top-left corner, its
// size and the stroke thickness, in pixels.
type digitBox struct{ x, y, w, h, t float64 }

// digitBoxes lays out n digits centred in a frame width wide, in the rows
// above bottom, as large as fit.
func digitBoxes(width, bottom, n int) []digitBox {
	const aspect, gapRatio = 0.55, 0.18 // digit width and gap, in digit heights
	nf := float64(n)
	top := float64(bottom) * 0.08
	avail := float64(bottom)*0.92 - top
	h := min(avail, float64(width)*0.92/(nf*aspect+(nf-1)*gapRatio))
	w := h * aspect
	x := (float64(width) - (nf*w + (nf-1)*h*gapRatio)) / 2
	y := top + (avail-h)/2
	boxes := make([]digitBox, n)
	for i := range boxes {
		boxes[i] = digitBox{x: x, y: y, w: w, h: h, t: max(h*0.12, 1)}
		x += w + h*gapRatio
	}
	return boxes
}

// segments returns the rectangles (x0, y0, x1, y1) of segments a..g.
func (d digitBox) segments() [7][4]float64 {
	x, y, w, h, t := d.x, d.y, d.w, d.h, d.t
	mid := y + (h-t)/2
	return [7][4]float64{
		{x, y, x + w, y + t},           // a
		{x + w - t, y, x + w, mid + t}, // b
		{x + w - t, mid, x + w, y + h}, // c
		{x, y + h - t, x + w, y + h},   // d
		{x, mid, x + t, y + h},         // e
		{x, y, x + t, mid + t},         // f
		{x, mid, x + w, mid + t},       // g
	}
}

func drawDigits(dst bgr.Image, s string, bottom int) {
	for i, box := range digitBoxes(dst.Width, bottom, len(s)) {
		segs := sevenSegments[s[i]-'0']
		for k, r := range box.segments() {
			if segs>>k&1 == 1 {
				dst.FillRect(int(r[0]), int(r[1]), int(r[2]+0.5), int(r[3]+0.5), 235, 235, 235)
			}
		}
	}
}

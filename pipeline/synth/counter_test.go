package synth

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/referee-project/referee/pipeline/bgr"
)

var counterSizes = [][2]int{{48, 48}, {160, 120}, {320, 240}, {641, 479}, {1280, 720}, {1920, 1080}}

func counterIndices() []int {
	idx := []int{0, 1, 2, 9, 10, 255, 1000, 65535, 123456, 999999, CounterMax}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		idx = append(idx, rng.IntN(CounterMax+1))
	}
	return idx
}

func TestCounterRoundTrip(t *testing.T) {
	for _, sz := range counterSizes {
		img := bgr.New(sz[0], sz[1])
		for _, i := range counterIndices() {
			DrawCounter(img, i)
			got, err := DecodeCounter(img)
			if err != nil || got != i {
				t.Fatalf("%dx%d index %d: DecodeCounter = %d, %v", sz[0], sz[1], i, got, err)
			}
		}
	}
}

// blur3 is a 3x3 box blur: a stand-in, in pure Go, for the softening of a
// lossy codec (the real codecs are tested in pipeline/videoio).
func blur3(m bgr.Image) bgr.Image {
	out := m.Clone()
	for y := 1; y < m.Height-1; y++ {
		for x := 1; x < m.Width-1; x++ {
			for c := range 3 {
				sum := 0
				for dy := -1; dy <= 1; dy++ {
					for dx := -1; dx <= 1; dx++ {
						sum += int(m.Pix[((y+dy)*m.Width+x+dx)*3+c])
					}
				}
				out.Pix[(y*m.Width+x)*3+c] = byte(sum / 9)
			}
		}
	}
	return out
}

func TestCounterSurvivesBlurNoiseAndFlicker(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, sz := range [][2]int{{160, 120}, {640, 480}} {
		img := bgr.New(sz[0], sz[1])
		for _, i := range []int{0, 77, 524287, CounterMax} {
			DrawCounter(img, i)
			soft := blur3(img)
			AddNoise(soft, rng, 40)
			if got, err := DecodeCounter(soft); err != nil || got != i {
				t.Errorf("%dx%d index %d after blur and noise: got %d, %v", sz[0], sz[1], i, got, err)
			}
		}
	}
}

func TestDecodeCounterRejects(t *testing.T) {
	grey := bgr.New(320, 240)
	grey.Fill(128, 128, 128)
	scene := bgr.New(320, 240)
	Scenarios()[0].Render(scene, 1)

	// Swapping both cells of data bit 5 (code bit 7) keeps every contrast
	// high and the guards intact, so only the CRC can catch it.
	flipped := bgr.New(320, 240)
	DrawCounter(flipped, 4242)
	g := geometryFor(320, 240)
	for _, lower := range []bool{false, true} {
		x0, y0, x1, y1 := g.cell(0, 7, lower)
		b, _, _ := flipped.At(x0, y0)
		v := 255 - b
		flipped.FillRect(x0, y0, x1, y1, v, v, v)
	}
	guard := bgr.New(320, 240)
	DrawCounter(guard, 4242)
	for _, lower := range []bool{false, true} {
		x0, y0, x1, y1 := g.cell(0, 0, lower)
		b, _, _ := guard.At(x0, y0)
		v := 255 - b
		guard.FillRect(x0, y0, x1, y1, v, v, v)
	}

	tests := []struct {
		name string
		img  bgr.Image
		want string
	}{
		{"zero image", bgr.Image{}, "no frame counter code in the picture: picture 0x0 with 0 bytes is not a valid BGR image"},
		{"short pix", bgr.Image{Width: 160, Height: 120, Pix: make([]byte, 10)}, "no frame counter code in the picture: picture 160x120 with 10 bytes is not a valid BGR image"},
		{"too small", bgr.New(47, 100), "no frame counter code in the picture: picture 47x100 is smaller than 48x48"},
		{"flat grey", grey, "no frame counter code in the picture: bit 0 has contrast 0, below 64"},
		{"one data bit flipped", flipped, fmt.Sprintf("no frame counter code in the picture: check sum %#02x does not match index %d", crc8(4242), 4242^(1<<(counterDataBits-6)))},
		{"guard flipped", guard, "no frame counter code in the picture: guard blocks do not match"},
	}
	for _, tt := range tests {
		_, err := DecodeCounter(tt.img)
		if !errors.Is(err, ErrNoCounter) || err.Error() != tt.want {
			t.Errorf("%s: err = %v, want %q wrapping ErrNoCounter", tt.name, err, tt.want)
		}
	}
	// Noise and a fencing scene fail somewhere in the contrast checks;
	// which bit first depends on the pixels, so only the sentinel is fixed.
	rng := rand.New(rand.NewPCG(5, 6))
	noise := bgr.New(320, 240)
	for i := range 50 {
		Noise(noise, rng)
		if got, err := DecodeCounter(noise); !errors.Is(err, ErrNoCounter) {
			t.Fatalf("noise frame %d decoded as %d, err %v", i, got, err)
		}
	}
	if got, err := DecodeCounter(scene); !errors.Is(err, ErrNoCounter) {
		t.Errorf("fencing scene decoded as %d, err %v", got, err)
	}
}

func TestDrawCounterPanicsOnBadInput(t *testing.T) {
	tests := []struct {
		name  string
		img   bgr.Image
		index int
	}{
		{"negative index", bgr.New(160, 120), -1},
		{"index too large", bgr.New(160, 120), CounterMax + 1},
		{"picture too small", bgr.New(40, 120), 1},
		{"invalid picture", bgr.Image{Width: 160, Height: 120}, 1},
	}
	for _, tt := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: DrawCounter did not panic", tt.name)
				}
			}()
			DrawCounter(tt.img, tt.index)
		}()
	}
}

// readDigits reads the seven-segment digits back by looking at the middle
// of each segment, as a person would: it proves the big number is drawn
// and is the index.
func readDigits(img bgr.Image, n int) string {
	out := ""
	for _, box := range digitBoxes(img.Width, geometryFor(img.Width, img.Height).y0, n) {
		var segs uint8
		for k, r := range box.segments() {
			if img.Gray(int((r[0]+r[2])/2), int((r[1]+r[3])/2)) > 128 {
				segs |= 1 << k
			}
		}
		d := "?"
		for v, pattern := range sevenSegments {
			if pattern == segs {
				d = strconv.Itoa(v)
			}
		}
		out += d
	}
	return out
}

func TestDrawCounterDigitsAreTheIndex(t *testing.T) {
	for _, sz := range [][2]int{{160, 120}, {1920, 1080}} {
		img := bgr.New(sz[0], sz[1])
		for _, i := range []int{0, 7, 1234567 % (CounterMax + 1), 908172, CounterMax} {
			DrawCounter(img, i)
			want := strconv.Itoa(i)
			if got := readDigits(img, len(want)); got != want {
				t.Errorf("%dx%d: digits read %q, want %q", sz[0], sz[1], got, want)
			}
		}
	}
}

func TestCRC8KnownValues(t *testing.T) {
	// The CRC of 0 is 0 and of 1 the polynomial's low byte; over the
	// values 0..255 the leading zero bits leave the register at zero, and
	// a degree-8 CRC maps the 256 bytes one to one.
	if got := crc8(0); got != 0 {
		t.Errorf("crc8(0) = %#x, want 0", got)
	}
	if got := crc8(1); got != 0x07 {
		t.Errorf("crc8(1) = %#x, want 0x07", got)
	}
	seen := map[uint8]bool{}
	for v := range uint32(256) {
		seen[crc8(v)] = true
	}
	if len(seen) != 256 {
		t.Errorf("crc8 maps 0..255 onto %d values, want all 256 (a CRC is a bijection on one byte)", len(seen))
	}
}

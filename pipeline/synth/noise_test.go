package synth

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/referee-project/referee/pipeline/bgr"
)

func TestNoiseIsSeededAndCoversEveryByte(t *testing.T) {
	// 7x5x3 = 105 bytes: not a multiple of 8, so the tail path is used.
	a, b := bgr.New(7, 5), bgr.New(7, 5)
	Noise(a, rand.New(rand.NewPCG(1, 1)))
	Noise(b, rand.New(rand.NewPCG(1, 1)))
	if !bytes.Equal(a.Pix, b.Pix) {
		t.Error("the same seed gave different noise")
	}
	Noise(b, rand.New(rand.NewPCG(2, 1)))
	if bytes.Equal(a.Pix, b.Pix) {
		t.Error("different seeds gave the same noise")
	}
	big := bgr.New(640, 480)
	Noise(big, rand.New(rand.NewPCG(9, 9)))
	var hist [256]int
	sum := 0
	for _, v := range big.Pix {
		hist[v]++
		sum += int(v)
	}
	mean := float64(sum) / float64(len(big.Pix))
	if mean < 125 || mean > 130 {
		t.Errorf("mean byte %.2f, want about 127.5 for uniform noise", mean)
	}
	// 921600 bytes over 256 values: about 3600 each.
	for v, n := range hist {
		if n < 3000 || n > 4200 {
			t.Fatalf("value %d appears %d times, want about 3600", v, n)
		}
	}
	for _, v := range a.Pix[100:] {
		if v != 0 {
			return
		}
	}
	t.Error("the last bytes (the tail after the last whole 8 bytes) were left at zero")
}

func TestAddNoise(t *testing.T) {
	base := bgr.New(64, 48)
	base.Fill(128, 128, 128)
	base.FillRect(0, 0, 8, 8, 0, 0, 0)
	base.FillRect(8, 0, 16, 8, 255, 255, 255)

	same := base.Clone()
	AddNoise(same, rand.New(rand.NewPCG(1, 2)), 0)
	if !bytes.Equal(same.Pix, base.Pix) {
		t.Error("amplitude 0 changed the picture")
	}

	const amp = 12
	noisy := base.Clone()
	AddNoise(noisy, rand.New(rand.NewPCG(1, 2)), amp)
	changed, maxDiff := 0, 0
	for i, v := range noisy.Pix {
		d := int(v) - int(base.Pix[i])
		if d != 0 {
			changed++
		}
		maxDiff = max(maxDiff, d, -d)
	}
	if maxDiff > amp+amp/3 {
		t.Errorf("largest change %d exceeds noise %d plus flicker %d", maxDiff, amp, amp/3)
	}
	if changed < len(base.Pix)*3/4 {
		t.Errorf("only %d of %d bytes changed", changed, len(base.Pix))
	}
	// Black and white patches clip instead of wrapping around.
	for y := range 8 {
		for x := range 8 {
			if b, _, _ := noisy.At(x, y); b > amp+amp/3 {
				t.Fatalf("black pixel (%d,%d) became %d: wrapped around", x, y, b)
			}
			if b, _, _ := noisy.At(x+8, y); b < 255-amp-amp/3 {
				t.Fatalf("white pixel (%d,%d) became %d: wrapped around", x+8, y, b)
			}
		}
	}
}

func TestAddNoiseFlickerShiftsTheWholeFrame(t *testing.T) {
	// Over many frames the per-frame mean moves by the flicker, far more
	// than the averaged-out sensor noise could move it.
	rng := rand.New(rand.NewPCG(4, 4))
	lo, hi := 255.0, 0.0
	for range 40 {
		m := bgr.New(32, 32)
		m.Fill(128, 128, 128)
		AddNoise(m, rng, 30)
		sum := 0
		for _, v := range m.Pix {
			sum += int(v)
		}
		mean := float64(sum) / float64(len(m.Pix))
		lo, hi = min(lo, mean), max(hi, mean)
	}
	if hi-lo < 10 || hi-lo > 21 {
		t.Errorf("frame means span %.1f..%.1f, want a spread near 2*30/3 = 20", lo, hi)
	}
}

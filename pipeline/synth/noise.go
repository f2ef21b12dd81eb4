package synth

import (
	"math/rand/v2"

	"github.com/referee-project/referee/pipeline/bgr"
)

// Noise fills dst with uniformly random bytes, the stand-in picture of the
// old Python check (np.random.randint): it has no structure, so it is the
// worst case for video codecs and carries no counter code. It uses rng
// only, so a seeded rng gives the same frame.
func Noise(dst bgr.Image, rng *rand.Rand) {
	pix := dst.Pix
	for len(pix) >= 8 {
		v := rng.Uint64()
		for i := range 8 {
			pix[i] = byte(v >> (8 * i))
		}
		pix = pix[8:]
	}
	v := rng.Uint64()
	for i := range pix {
		pix[i] = byte(v >> (8 * i))
	}
}

// AddNoise imitates a cheap camera on a rendered frame: it shifts the whole
// frame's brightness by a random amount of up to amplitude/3 (the flicker
// of mains-powered lights) and adds independent noise of up to ±amplitude
// to every channel of every pixel (sensor noise), clipping to 0..255.
// An amplitude of 0 or less leaves dst unchanged.
func AddNoise(dst bgr.Image, rng *rand.Rand, amplitude int) {
	if amplitude <= 0 {
		return
	}
	amplitude = min(amplitude, 255)
	flicker := rng.IntN(2*(amplitude/3)+1) - amplitude/3
	span := uint64(2*amplitude + 1)
	// One 64-bit draw gives four 16-bit samples; the modulo bias of a
	// 16-bit sample over at most 511 values is below 1%, invisible in noise.
	var bits uint64
	left := 0
	for i, p := range dst.Pix {
		if left == 0 {
			bits, left = rng.Uint64(), 4
		}
		n := int((bits&0xffff)%span) - amplitude
		bits >>= 16
		left--
		dst.Pix[i] = clampByte(int(p) + flicker + n)
	}
}

func clampByte(v int) byte {
	return byte(min(max(v, 0), 255))
}

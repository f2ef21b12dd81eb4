package motion

import (
	"math"
	"slices"
)

// clip is a phrase's video downscaled for tracking: packed BGR frames of
// w x h pixels, all kept in memory (a 5 s phrase at 30 fps and 192 px wide
// is about 9 MB).
type clip struct {
	w, h   int
	frames [][]byte
}

// Tuning of the foreground detection, in the units of the downscaled clip.
const (
	// fgThreshold is the sum over B, G and R of a pixel's distance from the
	// background above which the pixel is foreground. It sits far above the
	// sensor noise left after downscaling and below the contrast of clothing
	// against a wall or floor (red trousers on a grey wall differ by > 120).
	fgThreshold = 60
	// bgSamples is how many frames, evenly spread, the background median
	// is taken over.
	bgSamples = 41
	// revealedMin is the share of frames in which a pixel must differ from
	// the median for the median to be suspected of showing a fencer who
	// stood there most of the time (see background).
	revealedMin = 0.12
	// maxBodyShare is the largest share of the frame's height a fencer's
	// silhouette may take (see hold).
	maxBodyShare = 0.85
	// calmMax is the share below which a pixel counts as plain background.
	calmMax = 0.03
)

// sample is where one fencer is in one frame of the downscaled clip.
type sample struct {
	// x is the centroid column of the fencer's silhouette; held from the
	// previous frame when the fencer is not seen.
	x float64
	// x0, y0, x1, y1 bound the silhouette (x1, y1 exclusive).
	x0, y0, x1, y1 int
	// mass is the number of foreground pixels given to the fencer.
	mass int
	seen bool
}

// track finds both fencers in every frame of c: it models the static
// background, takes each frame's foreground, and splits its column profile
// between the fencers at the emptiest column between their last positions,
// so that they may come close, touch and cross the strip's centre line.
func track(c clip, progress func(float64)) (left, right []sample) {
	bg := background(c)
	n := len(c.frames)
	left, right = make([]sample, n), make([]sample, n)
	mask := make([]bool, c.w*c.h)
	tmp := make([]bool, c.w*c.h)
	prof := make([]float64, c.w)
	var xl, xr float64
	var refL, refR int
	for i, f := range c.frames {
		foreground(c, f, bg, mask)
		open3(mask, tmp, c.w, c.h)
		profile(mask, c.w, c.h, prof)
		if i == 0 {
			xl, xr = split(prof)
		}
		div := divider(prof, xl, xr)
		halfW := 0.45 * float64(c.w)
		l := measure(mask, c.w, c.h, prof, max(0, int(xl-halfW)), div)
		r := measure(mask, c.w, c.h, prof, div, min(c.w, int(xr+halfW)+1))
		if i == 0 {
			refL, refR = l.mass, r.mass
		}
		l = hold(l, xl, refL, c.h)
		r = hold(r, xr, refR, c.h)
		xl, xr = l.x, r.x
		left[i], right[i] = l, r
		if progress != nil && i%16 == 0 {
			progress(float64(i+1) / float64(n))
		}
	}
	return left, right
}

// hold keeps the previous position, and marks the fencer unseen, when too
// little of the fencer is seen to place them (a fencer standing still
// where the background model could not see behind them shows only what
// moves, such as the arm), or when what is seen is no person: a
// silhouette taller than maxBodyShare of a frame h pixels high is the
// whole picture changing (a camera moved, the light changed, a video with
// no scene at all), since a camera that films a strip shows the fencers
// whole with room to spare.
func hold(s sample, prev float64, ref, h int) sample {
	if s.mass >= max(ref/3, 6) && float64(s.y1-s.y0) <= maxBodyShare*float64(h) {
		s.seen = true
		return s
	}
	s.x, s.seen = prev, false
	return s
}

// background estimates the empty scene as the per-channel median of
// bgSamples frames. A fencer who stands still for most of the phrase is in
// that median; where the median is suspected of showing one (a minority of
// frames differs from it), the value of those other frames is taken
// instead when it is nearer to the plain background of the same row: in a
// side view of a strip, wall, strip and floor run across the picture.
func background(c clip) []byte {
	n := len(c.frames)
	k := min(n, bgSamples)
	idx := make([]int, k)
	for j := range k {
		idx[j] = j * (n - 1) / max(k-1, 1)
	}
	bg := make([]byte, c.w*c.h*3)
	vals := make([]byte, k)
	for p := range bg {
		for j, fi := range idx {
			vals[j] = c.frames[fi][p]
		}
		slices.Sort(vals)
		bg[p] = vals[k/2]
	}
	npx := c.w * c.h
	share := make([]float64, npx)
	alt := make([]byte, npx*3)
	var diff [3][]byte
	for ch := range diff {
		diff[ch] = make([]byte, 0, k)
	}
	for p := range npx {
		for ch := range diff {
			diff[ch] = diff[ch][:0]
		}
		for _, fi := range idx {
			f := c.frames[fi][p*3 : p*3+3]
			if dist3(f, bg[p*3:p*3+3]) > fgThreshold {
				for ch := range diff {
					diff[ch] = append(diff[ch], f[ch])
				}
			}
		}
		share[p] = float64(len(diff[0])) / float64(k)
		if share[p] >= revealedMin {
			for ch := range diff {
				slices.Sort(diff[ch])
				alt[p*3+ch] = diff[ch][len(diff[ch])/2]
			}
		}
	}
	for y := range c.h {
		row := y * c.w
		for x := range c.w {
			p := row + x
			if share[p] < revealedMin {
				continue
			}
			ref, ok := calmNeighbour(bg, share, row, x, c.w)
			if ok && dist3(alt[p*3:p*3+3], ref) < dist3(bg[p*3:p*3+3], ref) {
				copy(bg[p*3:p*3+3], alt[p*3:p*3+3])
			}
		}
	}
	return bg
}

// calmNeighbour returns the background of the nearest plain-background
// pixel in the row beginning at row, left or right of x.
func calmNeighbour(bg []byte, share []float64, row, x, w int) ([]byte, bool) {
	for d := 1; d < w; d++ {
		for _, xx := range [2]int{x - d, x + d} {
			if xx >= 0 && xx < w && share[row+xx] < calmMax {
				p := (row + xx) * 3
				return bg[p : p+3], true
			}
		}
	}
	return nil, false
}

func dist3(a, b []byte) int {
	d := 0
	for i := range 3 {
		d += abs(int(a[i]) - int(b[i]))
	}
	return d
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// foreground marks in mask the pixels of f that differ from bg, after
// taking out the frame's overall brightness shift (the flicker of mains
// lighting), estimated as the median difference of a grid of pixels.
func foreground(c clip, f, bg []byte, mask []bool) {
	var hist [511]int
	cnt := 0
	for p := 0; p < c.w*c.h; p += 7 {
		d := (int(f[p*3]) + int(f[p*3+1]) + int(f[p*3+2]) - int(bg[p*3]) - int(bg[p*3+1]) - int(bg[p*3+2])) / 3
		hist[d+255]++
		cnt++
	}
	off, acc := 0, 0
	for i, h := range hist {
		acc += h
		if 2*acc >= cnt {
			off = i - 255
			break
		}
	}
	for p := range mask {
		d := 0
		for ch := range 3 {
			d += abs(int(f[p*3+ch]) - off - int(bg[p*3+ch]))
		}
		mask[p] = d > fgThreshold
	}
}

// open3 removes specks and thin lines (the blades, noise) from mask with a
// 3x3 erosion followed by a 3x3 dilation; tmp is scratch of the same size.
func open3(mask, tmp []bool, w, h int) {
	morph(mask, tmp, w, h, true)
	morph(tmp, mask, w, h, false)
}

func morph(src, dst []bool, w, h int, erode bool) {
	for y := range h {
		for x := range w {
			v := erode
			for dy := -1; dy <= 1 && v == erode; dy++ {
				yy := y + dy
				for dx := -1; dx <= 1; dx++ {
					xx := x + dx
					in := yy >= 0 && yy < h && xx >= 0 && xx < w && src[yy*w+xx]
					if in != erode {
						v = !erode
						break
					}
				}
			}
			dst[y*w+x] = v
		}
	}
}

// profile counts the foreground pixels of every column, lightly smoothed.
func profile(mask []bool, w, h int, prof []float64) {
	raw := make([]float64, w)
	for y := range h {
		for x, m := range mask[y*w : y*w+w] {
			if m {
				raw[x]++
			}
		}
	}
	for x := range w {
		s, n := 0.0, 0.0
		for xx := max(0, x-1); xx <= min(w-1, x+1); xx++ {
			s += raw[xx]
			n++
		}
		prof[x] = s / n
	}
}

// split finds the two fencers in a first frame's profile: the column that
// divides the foreground into two masses with the least foreground at the
// cut, preferring balanced halves (a 1-D Otsu on the profile).
func split(prof []float64) (xl, xr float64) {
	w := len(prof)
	total := 0.0
	for _, v := range prof {
		total += v
	}
	if total == 0 {
		return float64(w) / 4, 3 * float64(w) / 4
	}
	best, bestScore := w/2, math.Inf(-1)
	acc, mom := 0.0, 0.0
	all := 0.0
	for x, v := range prof {
		all += float64(x) * v
	}
	for x := 1; x < w; x++ {
		acc += prof[x-1]
		mom += float64(x-1) * prof[x-1]
		if acc == 0 || acc == total {
			continue
		}
		m1, m2 := mom/acc, (all-mom)/(total-acc)
		score := acc * (total - acc) * (m2 - m1) * (m2 - m1)
		if score > bestScore {
			best, bestScore = x, score
		}
	}
	l := centroid(prof, 0, best)
	r := centroid(prof, best, w)
	return l, r
}

func centroid(prof []float64, a, b int) float64 {
	s, m := 0.0, 0.0
	for x := a; x < b; x++ {
		s += prof[x]
		m += float64(x) * prof[x]
	}
	if s == 0 {
		return float64(a+b) / 2
	}
	return m / s
}

// divider is the column between the fencers: the emptiest column between
// their last positions, the one nearest their midpoint among equals.
func divider(prof []float64, xl, xr float64) int {
	a, b := int(math.Ceil(xl)), int(math.Floor(xr))
	mid := (xl + xr) / 2
	if b-a < 2 {
		return int(math.Round(mid))
	}
	best := -1
	for x := a; x <= b; x++ {
		if best < 0 || prof[x] < prof[best] || (prof[x] == prof[best] && math.Abs(float64(x)-mid) < math.Abs(float64(best)-mid)) {
			best = x
		}
	}
	return best
}

// measure takes the foreground of columns [a, b) as one fencer.
func measure(mask []bool, w, h int, prof []float64, a, b int) sample {
	s := sample{x0: b, y0: h}
	if a >= b {
		return s
	}
	s.x = centroid(prof, a, b)
	for y := range h {
		for x := a; x < b; x++ {
			if mask[y*w+x] {
				s.mass++
				s.x0, s.x1 = min(s.x0, x), max(s.x1, x+1)
				s.y0, s.y1 = min(s.y0, y), max(s.y1, y+1)
			}
		}
	}
	return s
}

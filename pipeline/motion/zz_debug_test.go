package motion

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/synth"
)

func downscaleDbg(src bgr.Image, f int) []byte {
	w, h := src.Width/f, src.Height/f
	out := make([]byte, w*h*3)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				s := 0
				for dy := 0; dy < f; dy++ {
					for dx := 0; dx < f; dx++ {
						s += int(src.Pix[((y*f+dy)*src.Width+x*f+dx)*3+c])
					}
				}
				out[(y*w+x)*3+c] = byte(s / (f * f))
			}
		}
	}
	return out
}

func TestDebugTrack(t *testing.T) {
	for _, fps := range []float64{15, 30} {
	for _, sc := range synth.Scenarios() {
		img := bgr.New(640, 480)
		n := int(sc.Duration*fps) + 1
		c := clip{w: 640 / 4, h: 480 / 4}
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < n; i++ {
			sc.Render(img, float64(i)/fps)
			synth.AddNoise(img, rng, 20)
			c.frames = append(c.frames, downscaleDbg(img, 4))
		}
		l, r := track(c, nil)
		m := scale(l, r, c.w)
		xs := func(s []sample) []float64 {
			out := make([]float64, len(s))
			for i, v := range s {
				out[i] = v.x
			}
			return out
		}
		ph := phrase{left: kinematics(xs(l), 1, m, fps), right: kinematics(xs(r), -1, m, fps), fps: fps, n: n}
		p, err := signal.Parse(signal.Render(sc.Signal(time.Now())))
		if err != nil {
			t.Fatal(err)
		}
		d := decide(ph, p)
		fmt.Printf("%v %s want %s got %s %.2f [%s] %s\n", fps, sc.Name, sc.Call, d.Winner, d.Confidence, d.Rule, d.Reason)
		if testing.Verbose() {
		for _, f := range []fencer{ph.left, ph.right} {
			for _, p := range f.phases {
				fmt.Printf("   %s %.2f-%.2f %.2fm %.2f\n", p.Kind, p.StartS, p.EndS, p.DistanceM, p.PeakSpeed)
			}
			fmt.Println("   --")
		}
		}
	}
	}
}

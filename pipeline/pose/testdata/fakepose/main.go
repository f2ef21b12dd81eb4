// Command fakepose stands in for a pose estimator in the pose analyzer's
// tests, where a trained model would not see drawn fencers as people. It
// speaks the pose tool contract:
//
//	fakepose FRAMES FPS OUT SCENARIO [STRIDE]
//
// It checks that FRAMES holds 000000.jpg, 000001.jpg, ... without a gap,
// each a JPEG of one size, and writes to OUT the tracks of the synthetic
// scenario SCENARIO (pipeline/synth's ground truth, not what the frames
// show) for every STRIDE-th frame (default 1), in pixels of the frames.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"os"
	"path/filepath"
	"strconv"

	"github.com/referee-project/referee/pipeline/synth"
)

// stripM is the length of strip synth's scenario positions are fractions
// of.
const stripM = 7.0

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fakepose:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 4 || len(args) > 5 {
		return fmt.Errorf("usage: fakepose FRAMES FPS OUT SCENARIO [STRIDE]")
	}
	fps, err := strconv.ParseFloat(args[1], 64)
	if err != nil || !(fps > 0) {
		return fmt.Errorf("fps %q is not a positive number", args[1])
	}
	stride := 1
	if len(args) == 5 {
		if stride, err = strconv.Atoi(args[4]); err != nil || stride < 1 {
			return fmt.Errorf("stride %q is not a positive integer", args[4])
		}
	}
	sc, err := synth.ScenarioByName(args[3])
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(args[0])
	if err != nil {
		return err
	}
	w, h := 0, 0
	for i, e := range entries {
		if want := fmt.Sprintf("%06d.jpg", i); e.Name() != want {
			return fmt.Errorf("file %d of %s is %s, want %s", i, args[0], e.Name(), want)
		}
		data, err := os.ReadFile(filepath.Join(args[0], e.Name()))
		if err != nil {
			return err
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("%s: %w", e.Name(), err)
		}
		if i > 0 && (cfg.Width != w || cfg.Height != h) {
			return fmt.Errorf("%s is %dx%d, frame 0 %dx%d", e.Name(), cfg.Width, cfg.Height, w, h)
		}
		w, h = cfg.Width, cfg.Height
	}
	if len(entries) == 0 {
		return fmt.Errorf("no frames in %s", args[0])
	}
	pxPerM := float64(w) / stripM
	pose := func(frac, dir float64) [][3]float64 {
		x, y := frac*float64(w), 0.6*float64(h)
		kp := make([][3]float64, 17)
		set := func(k int, dx, dy float64) { kp[k] = [3]float64{x + dx*pxPerM*dir, y + dy*pxPerM, 0.9} }
		set(0, 0.1, -0.75)
		set(1, 0.1, -0.8)
		set(2, 0.1, -0.8)
		set(3, 0, -0.78)
		set(4, 0, -0.78)
		set(5, 0.05, -0.5)
		set(6, 0.05, -0.5)
		set(7, 0.3, -0.45)
		set(8, 0.3, -0.45)
		set(9, 0.55, -0.45)
		set(10, 0.55, -0.45)
		set(11, 0, 0)
		set(12, 0, 0)
		set(13, 0.25, 0.35)
		set(14, -0.2, 0.35)
		set(15, 0.3, 0.75)
		set(16, -0.3, 0.75)
		return kp
	}
	var left, right [][][3]float64
	for i := 0; i < len(entries); i += stride {
		l, r := sc.Positions(float64(i) / fps)
		left = append(left, pose(l, 1))
		right = append(right, pose(r, -1))
	}
	out, err := json.Marshal(map[string]any{
		"format": "referee-tracks/1", "fps": fps / float64(stride), "units": "px", "m_per_px": 1 / pxPerM,
		"keypoints": "coco17", "source": "fakepose " + sc.Name, "left": left, "right": right,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "fakepose: %d frames of %dx%d\n", len(entries), w, h)
	return os.WriteFile(args[2], out, 0o644)
}

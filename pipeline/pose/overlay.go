package pose

import (
	"bytes"
	"context"
	"fmt"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"runtime"

	"github.com/referee-project/referee/pipeline/atomicfile"
	"github.com/referee-project/referee/pipeline/avi"
	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/internal/timeline"
	"github.com/referee-project/referee/pipeline/ordered"
	"github.com/referee-project/referee/pipeline/rightofway"
	"github.com/referee-project/referee/pipeline/tracks"
	"github.com/referee-project/referee/pipeline/videoio"
)

// Overlay geometry.
const (
	// overlayMinWidth: frames are shrunk inside the JPEG decoder by the
	// largest factor that keeps them at least this wide, enough to see a
	// skeleton and quick to write.
	overlayMinWidth = 640
	overlayQuality  = 80
)

// bones are the COCO-17 keypoint pairs drawn as a skeleton's lines.
var bones = [][2]int{
	{tracks.LeftShoulder, tracks.RightShoulder}, {tracks.LeftHip, tracks.RightHip},
	{tracks.LeftShoulder, tracks.LeftHip}, {tracks.RightShoulder, tracks.RightHip},
	{tracks.LeftShoulder, tracks.LeftElbow}, {tracks.LeftElbow, tracks.LeftWrist},
	{tracks.RightShoulder, tracks.RightElbow}, {tracks.RightElbow, tracks.RightWrist},
	{tracks.LeftHip, tracks.LeftKnee}, {tracks.LeftKnee, tracks.LeftAnkle},
	{tracks.RightHip, tracks.RightKnee}, {tracks.RightKnee, tracks.RightAnkle},
	{tracks.Nose, tracks.LeftEye}, {tracks.Nose, tracks.RightEye},
	{tracks.LeftEye, tracks.LeftEar}, {tracks.RightEye, tracks.RightEar},
}

// writeOverlay writes the overlay video to path: the n frames of dir
// (video frames at fps), shrunk, with both fencers' skeletons from t (the
// pose nearest in time; pixel tracks only, metre tracks have no place in
// the picture), each labelled with its phase, the time, and a banner at
// each hit. It is written under a temporary name and renamed, so that a
// listed artifact is always complete.
func writeOverlay(ctx context.Context, dir string, n int, fps float64, t *tracks.Tracks, tl rightofway.Timeline, path string) (err error) {
	first, err := os.ReadFile(filepath.Join(dir, FrameName(0)))
	if err != nil {
		return fmt.Errorf("read frame 0 for the overlay: %w", err)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(first))
	if err != nil {
		return fmt.Errorf("frame 0 for the overlay: %w", err)
	}
	factor := 8
	for factor > 1 && (cfg.Width+factor-1)/factor < overlayMinWidth {
		factor /= 2
	}
	w, h := (cfg.Width+factor-1)/factor, (cfg.Height+factor-1)/factor
	tmp := path + ".part.avi"
	out, err := avi.Create(tmp, avi.Config{Width: w, Height: h, FPS: fps})
	if err != nil {
		return fmt.Errorf("create the overlay video: %w", err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("finish the overlay video: %w", cerr)
		}
		if err == nil {
			err = atomicfile.Rename(tmp, path)
		}
		if err != nil {
			os.Remove(tmp)
		}
	}()
	scale := 1 / float64(factor)
	// Frames are drawn and encoded by one worker per core and written in
	// order; at most 8 wait to be written.
	return ordered.Map(ctx, n, min(runtime.GOMAXPROCS(0), 4), 8, func(i int, img *bgr.Image) ([]byte, error) {
		return drawOverlayFrame(dir, i, factor, img, t, tl, fps, scale)
	}, func(_ int, data []byte) error {
		if err := out.WriteFrame(data); err != nil {
			return fmt.Errorf("write the overlay video: %w", err)
		}
		return nil
	})
}

// drawOverlayFrame reads video frame i from dir, shrunk by factor into
// img, draws the tracks' pose nearest in time on it and encodes it.
func drawOverlayFrame(dir string, i, factor int, img *bgr.Image, t *tracks.Tracks, tl rightofway.Timeline, fps, scale float64) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(dir, FrameName(i)))
	if err != nil {
		return nil, fmt.Errorf("read frame %d for the overlay: %w", i, err)
	}
	if err := videoio.DecodeReduced(data, factor, img); err != nil {
		return nil, fmt.Errorf("frame %d for the overlay: %w", i, err)
	}
	j := min(int(math.Round(float64(i)*t.FPS/fps)), t.Frames()-1)
	if err := annotate(*img, t, tl, j, scale); err != nil {
		return nil, err
	}
	frame, err := videoio.EncodeJPEG(*img, overlayQuality)
	if err != nil {
		return nil, fmt.Errorf("encode overlay frame %d: %w", i, err)
	}
	return frame, nil
}

// annotate draws tracks frame j on img (video pixels times scale).
func annotate(img bgr.Image, t *tracks.Tracks, tl rightofway.Timeline, j int, scale float64) error {
	if t.Units == tracks.UnitsPixels {
		for _, f := range []struct {
			p      *tracks.Pose
			name   string
			col    timeline.Colour
			phases []rightofway.Phase
		}{{t.Left[j], "LEFT", timeline.LeftColour, tl.Left.Phases}, {t.Right[j], "RIGHT", timeline.RightColour, tl.Right.Phases}} {
			if f.p == nil {
				continue
			}
			if err := skeleton(img, f.p, scale, f.name, rightofway.PhaseAt(f.phases, j), f.col); err != nil {
				return err
			}
		}
	}
	text := fmt.Sprintf("%.2f s", float64(j)/t.FPS)
	_, th := videoio.TextSize(text, 0.5, 1)
	img.FillRect(0, 0, img.Width, th*2+4, 0, 0, 0)
	c := timeline.TextColour
	if err := videoio.DrawText(img, text, 6, th+th/2+2, 0.5, 1, c.B, c.G, c.R); err != nil {
		return err
	}
	return timeline.EventBanners(img, tl, j, t.FPS)
}

// skeleton draws p's bones and joints in col, and the fencer's name and
// phase above its head.
func skeleton(img bgr.Image, p *tracks.Pose, scale float64, name, phase string, col timeline.Colour) error {
	top, left := math.Inf(1), math.Inf(1)
	for _, b := range bones {
		a, c := p[b[0]], p[b[1]]
		if a.Seen && c.Seen {
			img.FillLine(a.X*scale, a.Y*scale, c.X*scale, c.Y*scale, 3, col.B, col.G, col.R)
		}
	}
	for _, k := range p {
		if k.Seen {
			img.FillCircle(k.X*scale, k.Y*scale, 3, 255, 255, 255)
			top, left = math.Min(top, k.Y*scale), math.Min(left, k.X*scale)
		}
	}
	if math.IsInf(top, 1) {
		return nil
	}
	return timeline.FencerLabel(img, name, phase, int(left), int(top)-8, col)
}

package motion

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/atomicfile"
	"github.com/referee-project/referee/pipeline/avi"
	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/rightofway"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/timeline"
	"github.com/referee-project/referee/pipeline/videoio"
)

// Artifact geometry and timing.
const (
	// overlayMaxWidth bounds the overlay video's width: it is for seeing
	// what the analysis saw, and half of 1280 keeps it quick to write.
	overlayMaxWidth = 640
	// clipBeforeS is how much of the phrase before the first hit the touch
	// clip shows.
	clipBeforeS = 1.5
	// flashS is how long an event's banner stays on the overlay.
	flashS = 0.4
	// overlayQuality is the JPEG quality of the overlay's frames.
	overlayQuality = 80
)

// writeArtifacts writes overlay.avi and, when the phrase has
// a hit, clip_touch.avi into in.ArtifactDir, returning them by artifact
// name. Files are written under a temporary name and renamed, so that a
// listed artifact is always complete.
func writeArtifacts(ctx context.Context, in pipeline.AnalysisInput, tl rightofway.Timeline, ls, rs []sample, c clip, progress func(float64, string)) (map[string]string, error) {
	arts := map[string]string{}
	clipFrom, clipTo := -1, -1
	if hit := in.Phrase.FirstHitS; hit != nil {
		end := *hit + 0.023 + 0.2
		if lo := in.Phrase.LockoutStartS; lo != nil {
			w := 0.2
			if in.Phrase.LockoutWindowS != nil {
				w = *in.Phrase.LockoutWindowS
			}
			end = *lo + w
		}
		clipFrom = max(0, int(math.Round((*hit-clipBeforeS)*tl.FPS)))
		clipTo = min(tl.Frames-1, int(math.Round(end*tl.FPS)))
	}
	// A clip of an earlier analysis in the same directory must not pass
	// for this one's.
	if err := os.Remove(filepath.Join(in.ArtifactDir, ClipFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove an old %s: %w", ClipFile, err)
	}
	if err := writeVideos(ctx, in, tl, ls, rs, c, clipFrom, clipTo, progress); err != nil {
		return nil, err
	}
	arts[ArtifactOverlay] = filepath.Join(in.ArtifactDir, OverlayFile)
	if _, err := os.Stat(filepath.Join(in.ArtifactDir, ClipFile)); err == nil {
		arts[ArtifactClip] = filepath.Join(in.ArtifactDir, ClipFile)
	}
	return arts, nil
}

// writeVideos reads the video once more and writes the overlay (every
// frame, shrunk to overlayMaxWidth, annotated) and the touch clip (frames
// clipFrom..clipTo as they are; clipFrom < 0 for none). From a
// Motion-JPEG AVI the frames are decoded in parallel, already shrunk, and
// the clip's frames are copied without decoding.
func writeVideos(ctx context.Context, in pipeline.AnalysisInput, tl rightofway.Timeline, ls, rs []sample, c clip, clipFrom, clipTo int, progress func(float64, string)) (err error) {
	info, err := videoio.Probe(in.VideoPath)
	if err != nil {
		return fmt.Errorf("open the video for the overlay: %w", err)
	}
	ow, oh := trackSize(info.Width, info.Height, overlayMaxWidth)
	overlayPath := filepath.Join(in.ArtifactDir, OverlayFile)
	clipPath := filepath.Join(in.ArtifactDir, ClipFile)
	// From a Motion-JPEG AVI both videos are written as JPEG chunks with
	// package avi (the overlay's encoded by the workers); from other
	// videos, through OpenCV.
	var ovJPEG, clipJPEG *avi.Writer
	var ovFrames, clipFrames *videoio.Writer
	defer func() {
		closeErr := func(what string, c interface{ Close() error }) {
			if cerr := c.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("finish the %s: %w", what, cerr)
			}
		}
		for _, w := range []struct {
			what string
			j    *avi.Writer
			f    *videoio.Writer
		}{{"overlay video", ovJPEG, ovFrames}, {"touch clip", clipJPEG, clipFrames}} {
			if w.j != nil {
				closeErr(w.what, w.j)
			}
			if w.f != nil {
				closeErr(w.what, w.f)
			}
		}
		if err == nil && (ovJPEG != nil || ovFrames != nil) {
			err = atomicfile.Rename(overlayPath+".part.avi", overlayPath)
		}
		if err == nil && (clipJPEG != nil || clipFrames != nil) {
			err = atomicfile.Rename(clipPath+".part.avi", clipPath)
		}
		if err != nil {
			_ = os.Remove(overlayPath + ".part.avi")
			_ = os.Remove(clipPath + ".part.avi")
		}
	}()
	sx, sy := float64(ow)/float64(c.w), float64(oh)/float64(c.h)
	draw := func(k int, img bgr.Image, small *bgr.Image) error {
		videoio.Resize(img, ow, oh, small)
		return annotate(*small, tl, ls[k], rs[k], k, sx, sy)
	}
	inClip := func(k int) bool { return clipFrom >= 0 && k >= clipFrom && k <= clipTo }
	report := func(k int) {
		if k%16 == 0 {
			progress(0.05+0.95*float64(k+1)/float64(len(ls)), "writing the overlay video")
		}
	}

	encode := func(k int, _ []byte, img bgr.Image) ([]byte, error) {
		if k >= len(ls) {
			return nil, nil
		}
		var small bgr.Image
		if err := draw(k, img, &small); err != nil {
			return nil, err
		}
		return videoio.EncodeJPEG(small, overlayQuality)
	}
	err = eachMJPEG(ctx, in.VideoPath, func(int, int) int { return ow }, encode, func(k, _ int, jpeg, ovFrame []byte) error {
		if inClip(k) {
			if clipJPEG == nil {
				var err error
				if clipJPEG, err = avi.Create(clipPath+".part.avi", avi.Config{Width: info.Width, Height: info.Height, FPS: tl.FPS}); err != nil {
					return fmt.Errorf("create the touch clip: %w", err)
				}
			}
			if err := clipJPEG.WriteFrame(jpeg); err != nil {
				return fmt.Errorf("write the touch clip: %w", err)
			}
		}
		if ovFrame == nil {
			return nil
		}
		if ovJPEG == nil {
			var err error
			if ovJPEG, err = avi.Create(overlayPath+".part.avi", avi.Config{Width: ow, Height: oh, FPS: tl.FPS}); err != nil {
				return fmt.Errorf("create the overlay video: %w", err)
			}
		}
		if err := ovJPEG.WriteFrame(ovFrame); err != nil {
			return fmt.Errorf("write the overlay video: %w", err)
		}
		report(k)
		return nil
	})
	if !errors.Is(err, avi.ErrNotMJPEG) {
		return err
	}
	if ovFrames, err = videoio.Create(overlayPath+".part.avi", "MJPG", tl.FPS, ow, oh); err != nil {
		return fmt.Errorf("create the overlay video: %w", err)
	}
	r, err := videoio.OpenFile(in.VideoPath)
	if err != nil {
		return fmt.Errorf("open the video for the overlay: %w", err)
	}
	defer r.Close()
	var frame, small bgr.Image
	for k := 0; ; k++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.Read(&frame); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read frame %d for the overlay: %w", k, err)
		}
		if inClip(k) {
			if clipFrames == nil {
				if clipFrames, err = videoio.Create(clipPath+".part.avi", "MJPG", tl.FPS, frame.Width, frame.Height); err != nil {
					return fmt.Errorf("create the touch clip: %w", err)
				}
			}
			if err := clipFrames.Write(frame); err != nil {
				return fmt.Errorf("write the touch clip: %w", err)
			}
		}
		if k >= len(ls) {
			continue
		}
		if err := draw(k, frame, &small); err != nil {
			return err
		}
		if err := ovFrames.Write(small); err != nil {
			return fmt.Errorf("write the overlay video: %w", err)
		}
		report(k)
	}
}

// drawCounter writes the frame number and time in the top left corner.
func drawCounter(img bgr.Image, tl rightofway.Timeline, i int, scale float64) error {
	text := fmt.Sprintf("frame %d  %.2f s", i, float64(i)/tl.FPS)
	_, th := videoio.TextSize(text, scale*0.5, 1)
	img.FillRect(0, 0, img.Width, th*2+4, 0, 0, 0)
	return videoio.DrawText(img, text, 6, th+th/2+2, scale*0.5, max(1, int(scale)), timeline.TextColour.B, timeline.TextColour.G, timeline.TextColour.R)
}

// annotate draws on an overlay frame: both fencers boxed and labelled with
// their phase, the frame counter and time, and the banner of any event of
// the last flashS (with a coloured frame on the event's own frame).
func annotate(img bgr.Image, tl rightofway.Timeline, l, r sample, i int, sx, sy float64) error {
	for _, f := range []struct {
		s      sample
		name   string
		col    timeline.Colour
		phases []rightofway.Phase
	}{{l, "LEFT", timeline.LeftColour, tl.Left.Phases}, {r, "RIGHT", timeline.RightColour, tl.Right.Phases}} {
		if !f.s.seen || f.s.x1 <= f.s.x0 {
			continue
		}
		x0, y0 := int(float64(f.s.x0)*sx), int(float64(f.s.y0)*sy)
		x1, y1 := int(float64(f.s.x1)*sx), int(float64(f.s.y1)*sy)
		box(img, x0, y0, x1, y1, 2, f.col)
		label := f.name + " " + rightofway.PhaseAt(f.phases, i)
		tw, th := videoio.TextSize(label, 0.45, 1)
		ly := max(y0-4, th+4)
		img.FillRect(x0, ly-th-3, x0+tw+4, ly+3, f.col.B, f.col.G, f.col.R)
		if err := videoio.DrawText(img, label, x0+2, ly, 0.45, 1, 0, 0, 0); err != nil {
			return err
		}
	}
	if err := drawCounter(img, tl, i, 1); err != nil {
		return err
	}
	y := img.Height - 8
	for _, ev := range tl.Events {
		col, ok := timeline.EventColours[ev.Kind]
		if !ok || i < ev.Frame || float64(i-ev.Frame) >= flashS*tl.FPS {
			continue
		}
		if i == ev.Frame {
			box(img, 0, 0, img.Width, img.Height, 6, col)
		}
		text := fmt.Sprintf("%.3f s  %s", ev.TimeS, eventBanner(ev.Kind))
		tw, th := videoio.TextSize(text, 0.5, 1)
		img.FillRect(4, y-th-4, tw+12, y+4, 0, 0, 0)
		if err := videoio.DrawText(img, text, 8, y, 0.5, 1, col.B, col.G, col.R); err != nil {
			return err
		}
		y -= th + 10
	}
	return nil
}

// eventBanner names an event for the overlay. The box's own hit text is
// not shown: in single-light phrases it names the wrong fencer
// (signal-format.md).
func eventBanner(k signal.EventKind) string {
	switch k {
	case signal.EventBladeContact:
		return "BLADE CONTACT"
	case signal.EventHit:
		return "FIRST HIT"
	case signal.EventSimultaneousHit:
		return "SECOND LIGHT: DOUBLE TOUCH"
	case signal.EventLockoutStarted:
		return "LOCKOUT STARTED"
	}
	return string(k)
}

// box draws the outline of the rectangle [x0, x1) x [y0, y1), t pixels
// thick, inside it.
func box(img bgr.Image, x0, y0, x1, y1, t int, c timeline.Colour) {
	img.FillRect(x0, y0, x1, y0+t, c.B, c.G, c.R)
	img.FillRect(x0, y1-t, x1, y1, c.B, c.G, c.R)
	img.FillRect(x0, y0, x0+t, y1, c.B, c.G, c.R)
	img.FillRect(x1-t, y0, x1, y1, c.B, c.G, c.R)
}

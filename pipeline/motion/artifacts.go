package motion

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/atomicfile"
	"github.com/referee-project/referee/pipeline/avi"
	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/internal/timeline"
	"github.com/referee-project/referee/pipeline/rightofway"
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
	// A clip (or browser video) of an earlier analysis in the same
	// directory must not pass for this one's.
	for _, name := range []string{ClipFile, VideoWebFile, OverlayWebFile, ClipWebFile} {
		if err := os.Remove(filepath.Join(in.ArtifactDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove an old %s: %w", name, err)
		}
	}
	if err := writeVideos(ctx, in, tl, ls, rs, c, clipFrom, clipTo, progress); err != nil {
		return nil, err
	}
	arts[ArtifactOverlay] = filepath.Join(in.ArtifactDir, OverlayFile)
	for name, file := range map[string]string{ArtifactClip: ClipFile, ArtifactVideoWeb: VideoWebFile, ArtifactOverlayWeb: OverlayWebFile, ArtifactClipWeb: ClipWebFile} {
		if _, err := os.Stat(filepath.Join(in.ArtifactDir, file)); err == nil {
			arts[name] = filepath.Join(in.ArtifactDir, file)
		}
	}
	return arts, nil
}

// writeVideos reads the video once more and writes the overlay (every
// frame, shrunk to overlayMaxWidth, annotated) and the touch clip (frames
// clipFrom..clipTo as they are; clipFrom < 0 for none), and the same three
// (the video, the overlay and the clip, all at the overlay's size) in
// H.264 MP4 for browsers (webVideos). From a Motion-JPEG AVI the frames
// are decoded in parallel, already shrunk, and the AVI clip's frames are
// copied without decoding.
func writeVideos(ctx context.Context, in pipeline.AnalysisInput, tl rightofway.Timeline, ls, rs []sample, c clip, clipFrom, clipTo int, progress func(float64, string)) (err error) {
	info, err := videoio.Probe(in.VideoPath)
	if err != nil {
		return fmt.Errorf("open the video for the overlay: %w", err)
	}
	ow, oh := trackSize(info.Width, info.Height, overlayMaxWidth)
	// H.264 in 4:2:0 wants even sides.
	ow, oh = max(2, ow&^1), max(2, oh&^1)
	overlayPath := filepath.Join(in.ArtifactDir, OverlayFile)
	clipPath := filepath.Join(in.ArtifactDir, ClipFile)
	web := &webVideos{dir: in.ArtifactDir, w: ow, h: oh, fps: tl.FPS}
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
		if werr := web.finish(err == nil); err == nil {
			err = werr
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
	// shrink makes the plain frame of the web video and its annotated
	// copy, the overlay's.
	shrink := func(k int, img bgr.Image) (plain, annotated bgr.Image, err error) {
		videoio.Resize(img, ow, oh, &plain)
		annotated = bgr.Image{Width: plain.Width, Height: plain.Height, Pix: slices.Clone(plain.Pix)}
		return plain, annotated, annotate(annotated, tl, ls[k], rs[k], k, sx, sy)
	}
	inClip := func(k int) bool { return clipFrom >= 0 && k >= clipFrom && k <= clipTo }
	report := func(k int) {
		if k%16 == 0 {
			progress(0.05+0.95*float64(k+1)/float64(len(ls)), "writing the overlay video")
		}
	}

	type shrunk struct {
		plain, annotated bgr.Image
		jpeg             []byte // the annotated frame for overlay.avi
	}
	encode := func(k int, _ []byte, img bgr.Image) (*shrunk, error) {
		if k >= len(ls) {
			return nil, nil
		}
		plain, annotated, err := shrink(k, img)
		if err != nil {
			return nil, err
		}
		j, err := videoio.EncodeJPEG(annotated, overlayQuality)
		return &shrunk{plain, annotated, j}, err
	}
	err = eachMJPEG(ctx, in.VideoPath, func(int, int) int { return ow }, encode, func(k, _ int, jpeg []byte, sf *shrunk) error {
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
		if sf == nil {
			return nil
		}
		if ovJPEG == nil {
			var err error
			if ovJPEG, err = avi.Create(overlayPath+".part.avi", avi.Config{Width: ow, Height: oh, FPS: tl.FPS}); err != nil {
				return fmt.Errorf("create the overlay video: %w", err)
			}
		}
		if err := ovJPEG.WriteFrame(sf.jpeg); err != nil {
			return fmt.Errorf("write the overlay video: %w", err)
		}
		if err := web.write(sf.plain, sf.annotated, inClip(k)); err != nil {
			return err
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
	var frame bgr.Image
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
		plain, annotated, err := shrink(k, frame)
		if err != nil {
			return err
		}
		if err := ovFrames.Write(annotated); err != nil {
			return fmt.Errorf("write the overlay video: %w", err)
		}
		if err := web.write(plain, annotated, inClip(k)); err != nil {
			return err
		}
		report(k)
	}
}

// The encoding of the browser videos: x264's ultrafast preset at its
// default quality, about 4x quicker than OpenCV's avc1 writer and 2x
// quicker than superfast (BenchmarkH264Write640x360), for files about
// twice as large, still a few hundred KB a phrase at 640 wide.
const (
	webPreset = "ultrafast"
	webCRF    = 23
)

// webVideos writes the browser-playable videos: the plain video, the
// overlay and the touch clip in H.264 MP4 (which Chromium plays; the
// AVIs' Motion-JPEG it does not), all at the overlay's size, to keep the
// encoding within the analysis' time. Each is
// written under a .part.mp4 name and renamed when complete. Where FFmpeg
// has no libx264 encoder (videoio.ErrCodec) none is written and the
// phrase is analysed all the same: the AVIs remain.
type webVideos struct {
	dir   string
	w, h  int
	fps   float64
	files map[string]*videoio.H264Writer // by final file name
	off   bool                           // no H.264 encoder: write none
}

// write adds a frame to the web video and the overlay, and to the clip
// when inClip.
func (v *webVideos) write(plain, annotated bgr.Image, inClip bool) error {
	if v.off {
		return nil
	}
	for _, f := range []struct {
		name string
		img  bgr.Image
		want bool
	}{{VideoWebFile, plain, true}, {OverlayWebFile, annotated, true}, {ClipWebFile, plain, inClip}} {
		if !f.want {
			continue
		}
		w := v.files[f.name]
		if w == nil {
			var err error
			w, err = videoio.CreateH264(v.part(f.name), v.fps, v.w, v.h, videoio.H264Options{Preset: webPreset, CRF: webCRF})
			if errors.Is(err, videoio.ErrCodec) {
				v.off = true
				return v.drop()
			}
			if err != nil {
				return fmt.Errorf("create the browser video %s: %w", f.name, err)
			}
			if v.files == nil {
				v.files = map[string]*videoio.H264Writer{}
			}
			v.files[f.name] = w
		}
		if err := w.Write(f.img); err != nil {
			return fmt.Errorf("write the browser video %s: %w", f.name, err)
		}
	}
	return nil
}

func (v *webVideos) part(name string) string {
	return filepath.Join(v.dir, strings.TrimSuffix(name, ".mp4")+".part.mp4")
}

// drop closes and removes the videos begun.
func (v *webVideos) drop() error {
	for name, w := range v.files {
		w.Close()
		_ = os.Remove(v.part(name))
	}
	v.files = nil
	return nil
}

// finish closes the videos and, if keep, gives them their names; else it
// removes them.
func (v *webVideos) finish(keep bool) error {
	if !keep {
		return v.drop()
	}
	var err error
	for name, w := range v.files {
		if cerr := w.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("finish the browser video %s: %w", name, cerr)
		}
	}
	for name := range v.files {
		if err == nil {
			err = os.Rename(v.part(name), filepath.Join(v.dir, name))
		}
		if err != nil {
			_ = os.Remove(v.part(name))
		}
	}
	return err
}

// drawCounter writes the frame number and time in the top left corner.
func drawCounter(img bgr.Image, tl rightofway.Timeline, i int, scale float64) error {
	text := fmt.Sprintf("frame %d  %.2f s", i, float64(i)/tl.FPS)
	_, th := videoio.TextSize(text, scale*0.5, 1)
	img.FillRect(0, 0, img.Width, th*2+4, 0, 0, 0)
	return videoio.DrawText(img, text, 6, th+th/2+2, scale*0.5, max(1, int(scale)), timeline.TextColour.B, timeline.TextColour.G, timeline.TextColour.R)
}

// annotate draws on an overlay frame: both fencers boxed and labelled with
// their name and phase, the frame counter and time, and the banners of the
// events of the last timeline.FlashS.
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
		timeline.Box(img, x0, y0, x1, y1, 2, f.col)
		if err := timeline.FencerLabel(img, f.name, rightofway.PhaseAt(f.phases, i), x0, y0-4, f.col); err != nil {
			return err
		}
	}
	if err := drawCounter(img, tl, i, 1); err != nil {
		return err
	}
	return timeline.EventBanners(img, tl, i, tl.FPS)
}

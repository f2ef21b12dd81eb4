// Package motion is the "motion" analyzer: it calls double touches by
// right-of-way from the video of the phrase, with OpenCV's decoding only
// and no model weights.
//
// It downscales every frame, models the static background (a per-pixel
// median over the phrase, corrected where a fencer stood still most of the
// time), takes each frame's foreground, and tracks the left and right
// fencer as the two masses of its column profile, split at the emptiest
// column between them. From each fencer's position along the strip it
// derives speed and phases (advance, pause, retreat, lunge), and at the
// first hit of a double touch gives priority to the fencer whose attack
// started first: the other paused, retreated, or started later; a blade
// contact that stops an attack passes priority to the fencer who answers
// it; attacks starting within simultaneousS are a simultaneous action.
// Single lights and no light keep the box's verdict.
//
// Analyze writes tracks.json (the silhouettes' centres as hips, in the
// video's pixels with the scale it assumed), timeline.png, overlay.avi and,
// when there was a hit, clip_touch.avi into the artifact directory.
package motion

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"maps"
	"math"
	"runtime"
	"slices"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/avi"
	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/ordered"
	"github.com/referee-project/referee/pipeline/rightofway"
	"github.com/referee-project/referee/pipeline/tracked"
	"github.com/referee-project/referee/pipeline/tracks"
	"github.com/referee-project/referee/pipeline/videoio"
)

// Name is the analyzer's name in pipeline.Job.Analyzers and --analyzer.
const Name = "motion"

// DefaultTrackWidth is the width frames are downscaled to for tracking: a
// fencer is then about 40 pixels tall in a 1280x720 side view, plenty to
// place them to a few centimetres, and a frame costs well under a
// millisecond to process.
const DefaultTrackWidth = 192

// fencerHeightM is the height of a fencer en garde, mask included, used
// to turn pixels into metres.
const fencerHeightM = 1.75

// Analyzer is the motion analyzer. The zero value is ready to use.
type Analyzer struct {
	// TrackWidth is the width frames are downscaled to for tracking; 0
	// means DefaultTrackWidth. Frames narrower than it are used as they are.
	TrackWidth int
	// NoArtifacts skips tracks.json, the overlay video, the touch clip
	// and timeline.png, for callers that want the verdict only.
	NoArtifacts bool
}

var _ pipeline.Analyzer = (*Analyzer)(nil)

// Artifact names of the Verdict's Artifacts map and their file names.
const (
	ArtifactTimeline = tracked.ArtifactTimeline
	ArtifactTracks   = tracked.ArtifactTracks
	ArtifactOverlay  = "overlay_video"
	ArtifactClip     = "touch_clip"

	TimelineFile = tracked.TimelineFile
	TracksFile   = tracked.TracksFile
	OverlayFile  = "overlay.avi"
	ClipFile     = "clip_touch.avi"

	// The same videos in H.264 MP4, which browsers play (the review
	// page), at the overlay's size.
	ArtifactVideoWeb   = "video_web"
	ArtifactOverlayWeb = "overlay_web"
	ArtifactClipWeb    = "touch_clip_web"
	VideoWebFile       = "video_web.mp4"
	OverlayWebFile     = "overlay.mp4"
	ClipWebFile        = "clip_touch.mp4"
)

// Analyze implements pipeline.Analyzer. The verdict's Winner is "left",
// "right", "none", "simultaneous", or "undecided" for a double touch whose
// log gives no hit time; Extra holds "timeline" (a Timeline).
func (a *Analyzer) Analyze(ctx context.Context, in pipeline.AnalysisInput, progress func(float64, string)) (pipeline.Verdict, error) {
	if progress == nil {
		progress = func(float64, string) {}
	}
	if in.Phrase == nil {
		return pipeline.Verdict{}, errors.New("no parsed signal to analyse")
	}
	c, fps, err := a.load(ctx, in, func(p float64) { progress(0.5*p, "reading frames") })
	if err != nil {
		return pipeline.Verdict{}, err
	}
	ls, rs := track(c, func(p float64) { progress(0.5+0.1*p, "tracking fencers") })
	if err := ctx.Err(); err != nil {
		return pipeline.Verdict{}, err
	}
	t, err := tracksOf(ls, rs, c, in, fps)
	if err != nil {
		return pipeline.Verdict{}, err
	}
	if a.NoArtifacts {
		tl, err := rightofway.Decide(t, in.Phrase)
		if err != nil {
			return pipeline.Verdict{}, err
		}
		d := tl.Decision
		return pipeline.Verdict{Winner: d.Winner, Reason: d.Reason, Confidence: d.Confidence,
			Extra: map[string]any{"timeline": tl}}, nil
	}
	v, tl, err := tracked.Decide(t, in)
	if err != nil {
		return pipeline.Verdict{}, err
	}
	progress(0.6, "decided: "+v.Winner)
	arts, err := writeArtifacts(ctx, in, tl, ls, rs, c, func(p float64, msg string) { progress(0.6+0.4*p, msg) })
	if err != nil {
		return pipeline.Verdict{}, err
	}
	maps.Copy(v.Artifacts, arts)
	return v, nil
}

// load reads and downscales every frame of the video, returning the clip
// and the frame rate events are placed at: the session's (in.FPS) if
// given, else the container's. A Motion-JPEG AVI (what the server
// rebuilds sessions into) is decoded in parallel and shrunk inside the
// JPEG decoder; other videos go through OpenCV's reader.
func (a *Analyzer) load(ctx context.Context, in pipeline.AnalysisInput, progress func(float64)) (clip, float64, error) {
	tw := a.TrackWidth
	if tw <= 0 {
		tw = DefaultTrackWidth
	}
	fps := in.FPS
	if !(fps > 0) {
		info, err := videoio.Probe(in.VideoPath)
		if err != nil {
			return clip{}, 0, fmt.Errorf("open the video to analyse: %w", err)
		}
		fps = info.FPS
	}
	if !(fps > 0) {
		return clip{}, 0, fmt.Errorf("video %s declares no frame rate and none was given", in.VideoPath)
	}
	c, err := loadMJPEG(ctx, in.VideoPath, tw, progress)
	if errors.Is(err, avi.ErrNotMJPEG) {
		c, err = loadCapture(ctx, in.VideoPath, tw, max(in.Frames, 1), progress)
	}
	if err != nil {
		return clip{}, 0, err
	}
	if len(c.frames) < 2 {
		return clip{}, 0, fmt.Errorf("video %s has %d frames; the analysis needs at least 2", in.VideoPath, len(c.frames))
	}
	return c, fps, nil
}

// trackSize is the size frames of w x h are tracked at: tw wide (or w if
// narrower), same aspect.
func trackSize(w, h, tw int) (int, int) {
	cw := min(tw, w)
	return cw, max(1, int(math.Round(float64(h)*float64(cw)/float64(w))))
}

// loadMJPEG reads the frames of a Motion-JPEG AVI with one decoder per
// core. It returns an error wrapping avi.ErrNotMJPEG, having read nothing, if
// the file is not one.
func loadMJPEG(ctx context.Context, path string, tw int, progress func(float64)) (clip, error) {
	var c clip
	minWidth := func(w, h int) int {
		c.w, c.h = trackSize(w, h, tw)
		return c.w
	}
	shrink := func(_ int, _ []byte, img bgr.Image) ([]byte, error) {
		return shrinkTo(img, c.w, c.h), nil
	}
	err := eachMJPEG(ctx, path, minWidth, shrink, func(k, n int, _, pix []byte) error {
		if k == 0 {
			c.frames = make([][]byte, 0, n)
		}
		c.frames = append(c.frames, pix)
		progress(float64(k+1) / float64(n))
		return nil
	})
	return c, err
}

// lookahead bounds how many frames eachMJPEG works on ahead of the one its
// caller is given.
const lookahead = 8

// eachMJPEG decodes the frames of a Motion-JPEG AVI in parallel, one
// worker per core, and passes each through work in the worker and then,
// in frame order, to fn: frame k of n, its JPEG bytes and what work made
// of it. work gets the picture shrunk by the JPEG decoder by the largest
// factor (up to 8) that keeps it at least minWidth(w, h) wide for a w x h
// video; minWidth is called once, before any work, and the picture is
// valid only during the call. It returns an error wrapping avi.ErrNotMJPEG,
// having called neither, if the file is not such an AVI.
func eachMJPEG[T any](ctx context.Context, path string, minWidth func(w, h int) int,
	work func(k int, jpeg []byte, img bgr.Image) (T, error), fn func(k, n int, jpeg []byte, out T) error) error {
	r, err := avi.Open(path)
	if errors.Is(err, avi.ErrNotMJPEG) {
		return err
	}
	if err != nil {
		return fmt.Errorf("open the video to analyse: %w", err)
	}
	defer r.Close()
	n := r.Frames()
	read := func(k int) ([]byte, error) {
		buf, err := r.ReadFrame(k, nil)
		if err != nil {
			return nil, fmt.Errorf("read frame %d of %s: %w", k, path, err)
		}
		return buf, nil
	}
	first, err := read(0)
	if err != nil {
		return err
	}
	// The header gives the size: frame 0 need not be decoded twice.
	full, err := jpeg.DecodeConfig(bytes.NewReader(first))
	if err != nil {
		return fmt.Errorf("frame 0 of %s: %w", path, err)
	}
	want := minWidth(full.Width, full.Height)
	factor := 8
	for factor > 1 && (full.Width+factor-1)/factor < want {
		factor /= 2
	}

	type decoded struct {
		jpeg []byte
		out  T
	}
	return ordered.Map(ctx, n, min(runtime.GOMAXPROCS(0), 4), lookahead, func(k int, img *bgr.Image) (decoded, error) {
		data, err := read(k)
		if err != nil {
			return decoded{}, err
		}
		if err := videoio.DecodeReduced(data, factor, img); err != nil {
			return decoded{}, fmt.Errorf("frame %d of %s: %w", k, path, err)
		}
		out, err := work(k, data, *img)
		return decoded{data, out}, err
	}, func(k int, d decoded) error { return fn(k, n, d.jpeg, d.out) })
}

// loadCapture reads the frames of any video OpenCV can open, one by one;
// frames is the expected count, for progress.
func loadCapture(ctx context.Context, path string, tw, frames int, progress func(float64)) (clip, error) {
	r, err := videoio.OpenFile(path)
	if err != nil {
		return clip{}, fmt.Errorf("open the video to analyse: %w", err)
	}
	defer r.Close()
	total := max(frames, r.Info().FrameCount, 1)
	var c clip
	var frame bgr.Image
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return clip{}, err
		}
		err := r.Read(&frame)
		if errors.Is(err, io.EOF) {
			return c, nil
		}
		if err != nil {
			return clip{}, fmt.Errorf("read frame %d of %s: %w", i, path, err)
		}
		if i == 0 {
			c.w, c.h = trackSize(frame.Width, frame.Height, tw)
		}
		c.frames = append(c.frames, shrinkTo(frame, c.w, c.h))
		progress(math.Min(1, float64(i+1)/float64(total)))
	}
}

// scale estimates metres per pixel of the downscaled clip from the
// fencers' height in it; without a usable silhouette it assumes the frame
// spans 8 m, a strip seen whole with a margin.
func scale(ls, rs []sample, w int) float64 {
	var hs []int
	for _, s := range [][]sample{ls, rs} {
		for _, v := range s {
			if v.seen && v.y1 > v.y0 {
				hs = append(hs, v.y1-v.y0)
			}
		}
	}
	if len(hs) == 0 {
		return 8 / float64(w)
	}
	slices.Sort(hs)
	return fencerHeightM / float64(hs[len(hs)/2])
}

// tracksOf turns the fencers' silhouettes into tracks in the video's own
// pixels: each seen silhouette's centre column is the fencer's hips (the
// tracker sees no other body part), an unseen one a null frame. The scale
// is the one estimated from the fencers' height. The tracks go through
// their JSON form, so that deciding a saved tracks.json gives the same
// call as this analysis.
func tracksOf(ls, rs []sample, c clip, in pipeline.AnalysisInput, fps float64) (*tracks.Tracks, error) {
	sx := 1.0
	if in.Width > 0 {
		sx = float64(in.Width) / float64(c.w)
	}
	t := &tracks.Tracks{
		FPS:            fps,
		Units:          tracks.UnitsPixels,
		MetresPerPixel: scale(ls, rs, c.w) / sx,
		Source:         "referee motion tracker: silhouette centres as hips, scale from the fencers' height",
	}
	side := func(ss []sample) []*tracks.Pose {
		out := make([]*tracks.Pose, len(ss))
		for i, s := range ss {
			if !s.seen {
				continue
			}
			var p tracks.Pose
			hip := tracks.Keypoint{X: s.x * sx, Y: float64(s.y0+s.y1) / 2 * sx, Score: math.NaN(), Seen: true}
			p[tracks.LeftHip], p[tracks.RightHip] = hip, hip
			out[i] = &p
		}
		return out
	}
	t.Left, t.Right = side(ls), side(rs)
	data, err := t.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("tracks of the video: %w", err)
	}
	return tracks.Parse(data)
}

// shrinkTo returns img's pixels at w x h in a buffer of their own: img
// itself is reused by the reader for the next frame.
func shrinkTo(img bgr.Image, w, h int) []byte {
	if img.Width == w && img.Height == h {
		return slices.Clone(img.Pix)
	}
	var small bgr.Image
	videoio.Resize(img, w, h, &small)
	return small.Pix
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/referee-project/referee/pipeline/avi"
	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/pose"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio"
)

// vtestVideo is real video of people walking that Debian's opencv-doc
// ships; probe-pose poses it when it is there.
const vtestVideo = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// probePoseOptions configures "referee probe-pose".
type probePoseOptions struct {
	PoseCmd     string
	PoseTimeout time.Duration
	Frames      int
	Size        string
	FPS         float64
	Video       string
	JSON        bool
	Out         io.Writer
}

// probePoseReport is what probe-pose found; --json prints it.
type probePoseReport struct {
	Command string `json:"command"`
	// Check is the project's estimator's report on itself; nil for
	// another tool.
	Check  *pose.CheckResult `json:"check,omitempty"`
	Source string            `json:"source"`
	Frames int               `json:"frames"`
	Width  int               `json:"width"`
	Height int               `json:"height"`
	FPS    float64           `json:"fps"`
	// Seconds is the pose tool's wall time for the phrase, start-up
	// included; SecondsPerFrame divides it by the phrase's frames.
	Seconds         float64 `json:"seconds"`
	SecondsPerFrame float64 `json:"seconds_per_frame"`
	Poses           int     `json:"poses"`
	PoseFPS         float64 `json:"pose_fps"`
	LeftFound       int     `json:"left_found"`
	RightFound      int     `json:"right_found"`
}

func newProbePoseCmd(a *app) *cobra.Command {
	var opts probePoseOptions
	cmd := &cobra.Command{
		Use:   "probe-pose",
		Short: "Check that the pose stage is installed and time it on a phrase",
		Long: `probe-pose says whether the pose analyzer's estimator (--pose-cmd; by
default the project's referee-pose, which make build installs beside the
binary) runs here, and how fast: it writes a phrase of --frames frames of
--size at --fps from --video (default: vtest.avi, people walking, when
Debian's opencv-doc is installed; else a drawn phrase), runs the estimator
on it as the server would, and prints the wall time and how often each
fencer was found. For the project's own estimator it first prints what it
runs on and how long its models take.

Exit status 0 when the estimator posed the phrase; 1 when it is missing
or failed, with its error and the tail of its standard error.`,
		Example: `  referee probe-pose
  referee probe-pose --frames 300 --size 1280x720 --fps 30
  referee probe-pose --pose-cmd "yolo-pose {frames} {fps} {out}" --json`,
		Args: exactArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out = a.streams.Out
			return runProbePose(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.PoseCmd, "pose-cmd", pose.DefaultCommand, "the pose estimator, as for serve and analyze")
	f.DurationVar(&opts.PoseTimeout, "pose-timeout", pose.DefaultTimeout, "how long the pose estimator may run")
	f.IntVar(&opts.Frames, "frames", 30, "frames in the phrase")
	f.StringVar(&opts.Size, "size", "1280x720", "frame size, WIDTHxHEIGHT")
	f.Float64Var(&opts.FPS, "fps", 30, "the phrase's frame rate")
	f.StringVar(&opts.Video, "video", "", "video to take the frames from, looped if short (default: vtest.avi if installed, else a drawn phrase)")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON object")
	return cmd
}

func runProbePose(ctx context.Context, opts probePoseOptions) error {
	var w, h int
	if _, err := fmt.Sscanf(opts.Size, "%dx%d", &w, &h); err != nil || w < 16 || h < 16 || w > 7680 || h > 4320 {
		return usageErrorf("--size %q: want WIDTHxHEIGHT, e.g. 1280x720", opts.Size)
	}
	if opts.Frames < 2 || opts.Frames > 100000 {
		return usageErrorf("--frames %d: want 2 to 100000", opts.Frames)
	}
	if !(opts.FPS > 0 && opts.FPS <= 1000) {
		return usageErrorf("--fps %v: want a positive frame rate up to 1000", opts.FPS)
	}
	a, err := pose.New(opts.PoseCmd, opts.PoseTimeout)
	if err != nil {
		return withExit(exitUsage, fmt.Errorf("%w (check --pose-cmd)", err))
	}
	rep := probePoseReport{Command: a.Command(), Frames: opts.Frames, Width: w, Height: h, FPS: opts.FPS}
	if a.IsReference() {
		c, err := a.Check(ctx)
		if err != nil {
			return fmt.Errorf("the pose stage does not run here: %w (make build installs it)", err)
		}
		rep.Check = &c
	}
	dir, err := os.MkdirTemp("", "referee-probe-pose-")
	if err != nil {
		return fmt.Errorf("create a work directory: %w", err)
	}
	defer os.RemoveAll(dir)
	framesDir := filepath.Join(dir, pose.FramesDir)
	videoPath := filepath.Join(dir, "video.avi")
	if rep.Source, err = writeProbeFrames(ctx, opts, w, h, framesDir, videoPath); err != nil {
		return err
	}
	start := time.Now()
	t, err := a.Pose(ctx, dir, framesDir, videoPath, opts.FPS, filepath.Join(dir, pose.TracksFile), nil)
	if err != nil {
		return err
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.SecondsPerFrame = rep.Seconds / float64(opts.Frames)
	rep.Poses, rep.PoseFPS = t.Frames(), t.FPS
	for i := range t.Frames() {
		if t.Left[i] != nil {
			rep.LeftFound++
		}
		if t.Right[i] != nil {
			rep.RightFound++
		}
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pose tool:  %s\n", rep.Command)
	if c := rep.Check; c != nil {
		simd := "without SIMD"
		if c.SIMD {
			simd = "with SIMD"
		}
		fmt.Fprintf(&b, "runtime:    Node %s, TensorFlow.js %s backend %s, %d CPUs\n", c.Node, c.Backend, simd, c.CPUs)
		fmt.Fprintf(&b, "models:     loaded in %.2f s; MultiPose %.3f s a 1280x720 frame, Lightning %.3f s a crop\n", c.LoadS, c.MultiPoseS, c.LightningS)
	}
	fmt.Fprintf(&b, "phrase:     %d frames of %dx%d at %g fps from %s\n", rep.Frames, w, h, rep.FPS, rep.Source)
	fmt.Fprintf(&b, "posed in:   %.1f s, %.3f s per frame of the phrase (%d poses at %g fps)\n", rep.Seconds, rep.SecondsPerFrame, rep.Poses, rep.PoseFPS)
	fmt.Fprintf(&b, "found:      left in %d of %d poses, right in %d\n", rep.LeftFound, rep.Poses, rep.RightFound)
	_, err = io.WriteString(opts.Out, b.String())
	return err
}

// writeProbeFrames writes the probe's phrase into framesDir as the server
// would hand it to the pose tool, and as a Motion-JPEG AVI at videoPath
// for tools that take {video}, and returns where the frames came from.
func writeProbeFrames(ctx context.Context, opts probePoseOptions, w, h int, framesDir, videoPath string) (string, error) {
	if err := os.MkdirAll(framesDir, 0o755); err != nil {
		return "", fmt.Errorf("create the frames directory: %w", err)
	}
	vid, err := avi.Create(videoPath, avi.Config{Width: w, Height: h, FPS: opts.FPS})
	if err != nil {
		return "", fmt.Errorf("create the probe's video: %w", err)
	}
	defer vid.Close()
	source := opts.Video
	if source == "" {
		if _, err := os.Stat(vtestVideo); err == nil {
			source = vtestVideo
		}
	}
	var next func(*bgr.Image) error
	if source == "" {
		sc := synth.Scenarios()[0]
		k := 0
		source = "a drawn phrase (" + sc.Name + ")"
		next = func(img *bgr.Image) error {
			if !img.Valid() {
				*img = bgr.New(w, h)
			}
			sc.Render(*img, float64(k)/opts.FPS)
			k++
			return nil
		}
	} else {
		var r *videoio.Reader
		defer func() {
			if r != nil {
				r.Close()
			}
		}()
		next = func(img *bgr.Image) error {
			for range 2 {
				if r == nil {
					if r, err = videoio.OpenFile(source); err != nil {
						return usageErrorf("--video: %w", err)
					}
				}
				err := r.Read(img)
				if !errors.Is(err, io.EOF) {
					return err
				}
				// Loop a video shorter than the phrase.
				r.Close()
				r = nil
			}
			return fmt.Errorf("video %s has no frames", source)
		}
	}
	var src, frame bgr.Image
	for i := range opts.Frames {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if err := next(&src); err != nil {
			return "", err
		}
		videoio.Resize(src, w, h, &frame)
		data, err := videoio.EncodeJPEG(frame, 90)
		if err != nil {
			return "", fmt.Errorf("encode frame %d: %w", i, err)
		}
		if err := os.WriteFile(filepath.Join(framesDir, pose.FrameName(i)), data, 0o644); err != nil {
			return "", fmt.Errorf("write frame %d: %w", i, err)
		}
		if err := vid.WriteFrame(data); err != nil {
			return "", fmt.Errorf("write the probe's video: %w", err)
		}
	}
	return source, vid.Close()
}

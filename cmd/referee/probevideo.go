package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio"
)

// probeVideoOptions configures "referee probe-video".
type probeVideoOptions struct {
	Path           string
	JSON           bool
	DecodeAll      bool
	VerifySequence bool
	Out            io.Writer
}

// probeVideoReport is what probe-video found; --json prints it.
type probeVideoReport struct {
	videoio.Info
	// DecodedFrames and the fields after it are filled by --decode-all and
	// --verify-sequence, which read every frame.
	DecodedFrames *int     `json:"decoded_frames,omitempty"`
	DecodeFPS     *float64 `json:"decode_fps,omitempty"`
	// FirstFailedFrame is the index of the first frame that did not decode
	// when the header promised more frames than decoded.
	FirstFailedFrame *int   `json:"first_failed_frame,omitempty"`
	HeaderNote       string `json:"header_note,omitempty"`
	*synth.SequenceReport
	Error string `json:"error,omitempty"`
}

func newProbeVideoCmd(a *app) *cobra.Command {
	var opts probeVideoOptions
	cmd := &cobra.Command{
		Use:   "probe-video FILE",
		Short: "Check that OpenCV can open and decode a video",
		Long: `probe-video opens FILE with OpenCV, as the capture client and the
server do, and reports what it finds: whether it opened, whether the first
frame decoded and its shape, then the frame rate, the container's frame
count, the codec's FOURCC, the duration and the OpenCV backend.

--decode-all decodes every frame and reports how many decoded, how fast,
and the first frame that failed. Container headers can lie about the frame
count (it can be wrong or negative, and WebM has none): the report says so
when the header and the decoded count differ.

--verify-sequence reads the frame index encoded by
"referee gen-test-video --pattern counter" in every frame and reports
sequence_ok with the missing, duplicated and out-of-order indices.

Exit status 0 when the file opens and its first frame decodes; 2 otherwise
(missing file, not a video, no frames), with one line saying which.`,
		Example: `  referee probe-video test.mp4
  referee probe-video --json --decode-all phrase.avi
  referee probe-video --verify-sequence --json referee-data/sessions/s1/video.avi`,
		Args: exactArgs(1, "the video file to probe"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = args[0]
			opts.Out = a.streams.Out
			return runProbeVideo(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON object")
	cmd.Flags().BoolVar(&opts.DecodeAll, "decode-all", false, "decode every frame and count them")
	cmd.Flags().BoolVar(&opts.VerifySequence, "verify-sequence", false, "check the frame-index code of counter videos (implies --decode-all)")
	return cmd
}

func runProbeVideo(ctx context.Context, opts probeVideoOptions) error {
	rep, err := probeVideo(ctx, opts)
	if err != nil {
		rep.Error = err.Error()
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.Out)
		enc.SetIndent("", "  ")
		if encErr := enc.Encode(rep); encErr != nil {
			return encErr
		}
	} else {
		writeProbeVideo(opts.Out, rep)
	}
	if err != nil {
		return withExit(exitUsage, err)
	}
	if rep.SequenceReport != nil && !rep.SequenceOK {
		return fmt.Errorf("frame sequence of %s is not 0..N-1 in order", opts.Path)
	}
	return nil
}

func probeVideo(ctx context.Context, opts probeVideoOptions) (probeVideoReport, error) {
	info, err := videoio.Probe(opts.Path)
	rep := probeVideoReport{Info: info}
	if err != nil || !(opts.DecodeAll || opts.VerifySequence) {
		return rep, err
	}
	r, err := videoio.OpenFile(opts.Path)
	if err != nil {
		return rep, err
	}
	defer r.Close()
	var (
		img     bgr.Image
		indices []int
		n       int
		start   = time.Now()
	)
	for ; ; n++ {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := r.Read(&img); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return rep, fmt.Errorf("frame %d: %w", n, err)
		}
		if opts.VerifySequence {
			idx, err := synth.DecodeCounter(img)
			if err != nil {
				idx = -1
			}
			indices = append(indices, idx)
		}
	}
	elapsed := time.Since(start).Seconds()
	rep.DecodedFrames = &n
	if elapsed > 0 {
		fps := float64(n) / elapsed
		rep.DecodeFPS = &fps
	}
	switch {
	case info.FrameCount > n:
		rep.FirstFailedFrame = &n
		rep.HeaderNote = fmt.Sprintf("the header says %d frames but %d decoded: the file is truncated or frame %d is corrupt", info.FrameCount, n, n)
	case info.FrameCount != n:
		rep.HeaderNote = fmt.Sprintf("the header says %d frames but %d decoded: the container's count is not reliable, trust the decoded count", info.FrameCount, n)
	}
	if opts.VerifySequence {
		if n > 0 && !slices.ContainsFunc(indices, func(i int) bool { return i >= 0 }) {
			// Not one frame carries the code: the video was not made
			// from a counter video, which is not a decoding failure.
			return rep, usageErrorf("%s has no counter code in any of its %d frames: --verify-sequence checks videos made from \"referee gen-test-video --pattern counter\" (use --decode-all for other videos)", opts.Path, n)
		}
		seq := synth.VerifySequence(indices)
		rep.SequenceReport = &seq
	}
	return rep, nil
}

// writeProbeVideo prints the report in the old Python check's words first.
func writeProbeVideo(w io.Writer, rep probeVideoReport) {
	fmt.Fprintf(w, "Opened: %s\n", pyBool(rep.Opened))
	fmt.Fprintf(w, "Read frame: %s\n", pyBool(rep.ReadFrame))
	if rep.ReadFrame {
		fmt.Fprintf(w, "Frame shape: (%d, %d, %d)\n", rep.Height, rep.Width, rep.Channels)
	}
	if rep.Opened {
		fmt.Fprintf(w, "FPS: %.3f\n", rep.FPS)
		fmt.Fprintf(w, "Frame count (header): %d\n", rep.FrameCount)
		fmt.Fprintf(w, "Codec: %s\n", orNone(rep.Codec))
		fmt.Fprintf(w, "Duration: %.3f s\n", rep.DurationS)
		fmt.Fprintf(w, "Backend: %s\n", orNone(rep.Backend))
	}
	if rep.DecodedFrames != nil {
		fmt.Fprintf(w, "Decoded frames: %d", *rep.DecodedFrames)
		if rep.DecodeFPS != nil {
			fmt.Fprintf(w, " (%.0f frames/s)", *rep.DecodeFPS)
		}
		fmt.Fprintln(w)
	}
	if rep.HeaderNote != "" {
		fmt.Fprintf(w, "Note: %s\n", rep.HeaderNote)
	}
	if s := rep.SequenceReport; s != nil {
		fmt.Fprintf(w, "Sequence OK: %s\n", pyBool(s.SequenceOK))
		for _, l := range []struct {
			name string
			v    []int
		}{{"Missing", s.Missing}, {"Duplicated", s.Duplicated}, {"Out of order", s.OutOfOrder}, {"Undecodable (positions)", s.Undecodable}} {
			if len(l.v) > 0 {
				fmt.Fprintf(w, "%s: %s\n", l.name, intList(l.v, 20))
			}
		}
	}
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// intList prints at most max numbers, then how many more.
func intList(v []int, max int) string {
	parts := make([]string, 0, max+1)
	for i, x := range v {
		if i == max {
			parts = append(parts, fmt.Sprintf("... (%d more)", len(v)-max))
			break
		}
		parts = append(parts, fmt.Sprint(x))
	}
	return strings.Join(parts, ", ")
}

// Package pipeline processes one phrase: it rebuilds the video of a
// session's frames (stage video_reconstruction), decides the phrase from
// the video and the scoring box's signal (stage analysis), and leaves the
// artifacts and result.json in the session's artifact directory.
//
// Run is the whole of it; the server calls it once a session's signal has
// arrived, and "referee analyze" calls it for a video on disk. JPEG frames
// go into the video as they are (package pipeline/avi), so reconstruction
// costs about a file copy; other frames are decoded and encoded through
// pipeline/videoio. Analyzers are plugged in by name (see Analyzer): the
// signal-only analyzer is built in.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/protocol"
)

// ProgressFunc receives stage progress from 0 to 1; stage is
// protocol.StageVideoReconstruction or protocol.StageAnalysis. Within a
// stage, progress never decreases. Calls are never concurrent.
type ProgressFunc func(stage string, progress float64, message string)

// EncodedFrame is one frame as received on the wire.
type EncodedFrame struct {
	// Number is the frame number the client gave, from 0.
	Number int
	// Encoding is protocol.EncodingJPEG, protocol.EncodingPNG or
	// protocol.EncodingRaw.
	Encoding string
	// Data is the encoded picture; for raw frames, with the 12-byte header
	// of protocol.ParseRaw. Run does not keep it after the callback returns.
	Data []byte
}

// FrameSource yields a session's frames in frame-number order, each number
// at most once.
type FrameSource interface {
	// Count returns the number of frames Each yields.
	Count() int
	// Each calls fn with every frame in order, and stops with fn's error
	// if it returns one, or with ctx's error once ctx is done.
	Each(ctx context.Context, fn func(EncodedFrame) error) error
}

// Video formats of Job.VideoFormat.
const (
	// VideoFormatMJPEG is Motion-JPEG in an AVI file (video.avi): JPEG
	// frames are stored as received. The default.
	VideoFormatMJPEG = "mjpeg"
	// VideoFormatH264 is H.264 in an MP4 file (video.mp4), which browsers
	// play; every frame is decoded and encoded again.
	VideoFormatH264 = "h264"
)

// Names of the files Run writes in the artifact directory. The video is
// "video" with the extension of its container.
const (
	SignalFileName = "signal.txt"
	ResultFileName = "result.json"
	TracksFileName = "tracks.json"
	// ReviewFileName is the referee's review of a phrase that the server
	// keeps beside the artifacts: {"call": "left"|"right"|"simultaneous"|
	// "abstain", "referee", "note", "at", "history"}. A directory with a
	// result, tracks and a review is a labelled phrase for evaluation.
	ReviewFileName = "review.json"
)

// Job is the processing of one phrase.
type Job struct {
	// SessionID names the session in the result.
	SessionID string
	// FPS, Width and Height describe the streamed frames (the session's
	// session_start). Every frame must be Width x Height. Unused with
	// VideoPath.
	FPS           float64
	Width, Height int
	// Frames are the streamed frames; nil when VideoPath is set.
	Frames FrameSource
	// VideoPath is a whole video to analyse instead of Frames (POST
	// /analyze, referee analyze). It is copied into the artifact directory
	// as it is.
	VideoPath string
	// TracksPath is a tracks file (referee-tracks/1) to decide instead of
	// a video ("referee analyze --tracks"): Run copies it into the
	// artifact directory as TracksFileName and hands it to the analyzer,
	// with no video. Set neither Frames nor VideoPath with it.
	TracksPath string
	// VideoFormat is the format the frames are rebuilt into:
	// VideoFormatMJPEG (also "") or VideoFormatH264. Unused with VideoPath.
	VideoFormat string
	// Signal is the phrase log as received.
	Signal []byte
	// ArtifactDir is where the video, signal.txt and result.json go. Run
	// creates it if needed.
	ArtifactDir string
	// Analyzer names the analyzer that decides the phrase: a key of
	// Analyzers, or AnalyzerSignal (also "").
	Analyzer string
	// Analyzers are the analyzers Job.Analyzer may name besides the
	// built-in AnalyzerSignal; an entry named AnalyzerSignal replaces it.
	Analyzers map[string]Analyzer
	// StreamingStats is put verbatim into the result as streaming_stats.
	StreamingStats any
	// StartedAt is when the phrase began: the session's start, or the
	// upload's receipt. The result gives it as started_at (RFC 3339) when
	// set; its day is the phrase's recording day in an evaluation.
	StartedAt time.Time
}

// VideoSummary describes the video of a result.
type VideoSummary struct {
	Frames int     `json:"frames"`
	FPS    float64 `json:"fps"`
	Width  int     `json:"width"`
	Height int     `json:"height"`
	// Codec is the video's FourCC, e.g. "MJPG" or "avc1".
	Codec string `json:"codec"`
}

// StatusSuccess is the Status of every Result: failures are errors.
const StatusSuccess = "success"

// Result is what Run found, as written to result.json.
type Result struct {
	Status    string `json:"status"`
	SessionID string `json:"session_id"`
	// Winner is "left", "right", "none" or "undecided" from the signal
	// analyzer; other analyzers may add values such as "simultaneous".
	Winner string `json:"winner"`
	Reason string `json:"reason"`
	// Confidence is the analyzer's confidence in Winner, 0 to 1; 0 when
	// it gives none, and for an undecided phrase.
	Confidence float64 `json:"confidence"`
	// StartedAt is Job.StartedAt in RFC 3339, or "" when not given.
	StartedAt       string         `json:"started_at,omitempty"`
	Phrase          *signal.Phrase `json:"phrase"`
	Video           VideoSummary   `json:"video"`
	StreamingStats  any            `json:"streaming_stats,omitempty"`
	Artifacts       Artifacts      `json:"artifacts"`
	ArtifactDir     string         `json:"artifact_dir"`
	WallTimeSeconds float64        `json:"wall_time_seconds"`
	// Extra holds the analyzer's own fields (Verdict.Extra, e.g. a
	// timeline). They are written at the top level of the JSON object,
	// after the fields above, in key order.
	Extra map[string]any `json:"-"`
}

// Artifacts are the absolute paths of the files a run leaves.
type Artifacts struct {
	Video      string `json:"video"`
	Signal     string `json:"signal"`
	ResultJSON string `json:"result_json"`
	// Extra are the analyzer's artifacts (Verdict.Artifacts) by name,
	// written beside the three fixed keys in key order.
	Extra map[string]string `json:"-"`
}

// Stages named by StageError besides the two of the protocol: StagePrepare
// sets up the artifact directory, StageResult writes result.json.
const (
	StagePrepare = "prepare"
	StageResult  = "result"
)

// StageError is the error of Run: the stage that failed (StagePrepare,
// protocol.StageVideoReconstruction, protocol.StageAnalysis or StageResult)
// and why.
type StageError struct {
	Stage string
	Err   error
}

func (e *StageError) Error() string { return e.Stage + ": " + e.Err.Error() }

func (e *StageError) Unwrap() error { return e.Err }

func stageErrorf(stage, format string, args ...any) error {
	return &StageError{Stage: stage, Err: fmt.Errorf(format, args...)}
}

// Run reconstructs the video (stage video_reconstruction), analyses it with
// the signal (stage analysis), and writes result.json last, atomically: a
// directory without result.json is never a complete result. A result.json
// left by an earlier run in the same directory is removed first.
//
// The job is checked (the video format, the analyzer's name, the signal)
// before anything is written, so a bad job fails at once. Errors are
// *StageError naming the stage that failed, wrapping the cause; after an
// error there is no result.json, and a partly written video is removed.
// Run stops between frames once ctx is done, with an error wrapping
// ctx.Err(). progress may be nil.
func Run(ctx context.Context, job Job, progress ProgressFunc) (*Result, error) {
	start := time.Now()
	if progress == nil {
		progress = func(string, float64, string) {}
	}
	if err := checkVideoJob(job); err != nil {
		return nil, &StageError{Stage: protocol.StageVideoReconstruction, Err: err}
	}
	name, analyzer, err := PickAnalyzer(job.Analyzer, job.Analyzers)
	if err != nil {
		return nil, &StageError{Stage: protocol.StageAnalysis, Err: err}
	}
	phrase, err := signal.Parse(job.Signal)
	if err != nil {
		return nil, stageErrorf(protocol.StageAnalysis, "read the signal: %w", err)
	}

	dir, err := prepare(job)
	if err != nil {
		return nil, &StageError{Stage: StagePrepare, Err: err}
	}
	arts := Artifacts{
		Signal:     filepath.Join(dir, SignalFileName),
		ResultJSON: filepath.Join(dir, ResultFileName),
	}

	var video, tracksPath string
	var summary VideoSummary
	if job.TracksPath != "" {
		tracksPath, summary, err = copyTracks(job.TracksPath, dir)
	} else {
		video, summary, err = reconstruct(ctx, job, dir, func(p float64, msg string) {
			progress(protocol.StageVideoReconstruction, p, msg)
		})
	}
	if err != nil {
		return nil, &StageError{Stage: protocol.StageVideoReconstruction, Err: err}
	}
	arts.Video = video

	in := AnalysisInput{
		TracksPath:  tracksPath,
		VideoPath:   video,
		SignalPath:  arts.Signal,
		FPS:         summary.FPS,
		Width:       summary.Width,
		Height:      summary.Height,
		Frames:      summary.Frames,
		Phrase:      phrase,
		ArtifactDir: dir,
	}
	verdict, err := analyze(ctx, name, analyzer, in, func(p float64, msg string) {
		progress(protocol.StageAnalysis, p, msg)
	})
	if err != nil {
		return nil, &StageError{Stage: protocol.StageAnalysis, Err: err}
	}
	arts.Extra = verdict.Artifacts

	if err := ctx.Err(); err != nil {
		return nil, stageErrorf(StageResult, "canceled before writing %s: %w", ResultFileName, err)
	}
	res := &Result{
		Status:         StatusSuccess,
		SessionID:      job.SessionID,
		Winner:         verdict.Winner,
		Reason:         verdict.Reason,
		Confidence:     verdict.Confidence,
		Phrase:         phrase,
		Video:          summary,
		StreamingStats: job.StreamingStats,
		Artifacts:      arts,
		ArtifactDir:    dir,
		Extra:          verdict.Extra,
	}
	if !job.StartedAt.IsZero() {
		res.StartedAt = job.StartedAt.UTC().Format(time.RFC3339Nano)
	}
	res.WallTimeSeconds = time.Since(start).Seconds()
	if err := WriteResult(arts.ResultJSON, res); err != nil {
		return nil, &StageError{Stage: StageResult, Err: err}
	}
	return res, nil
}

// prepare creates the artifact directory, removes a result.json an earlier
// run left there, saves the signal, and returns the directory's absolute
// path.
func prepare(job Job) (string, error) {
	if job.ArtifactDir == "" {
		return "", errors.New("no artifact directory given")
	}
	dir, err := filepath.Abs(job.ArtifactDir)
	if err != nil {
		return "", fmt.Errorf("artifact directory %s: %w", job.ArtifactDir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create the artifact directory: %w", err)
	}
	if err := os.Remove(filepath.Join(dir, ResultFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("remove the %s of an earlier run: %w", ResultFileName, err)
	}
	if err := os.WriteFile(filepath.Join(dir, SignalFileName), job.Signal, 0o644); err != nil {
		return "", fmt.Errorf("save the signal: %w", err)
	}
	return dir, nil
}

// Reconstruct is the first stage of Run alone: it rebuilds the job's frames
// (or copies its VideoPath) into a video in job.ArtifactDir, which it
// creates, and returns the video's absolute path and summary. A serve node
// that hands the analysis to a worker on another machine sends it this
// video; the worker's Run then copies it as it is. Errors are *StageError
// of protocol.StageVideoReconstruction (or StagePrepare for the directory).
func Reconstruct(ctx context.Context, job Job, progress func(float64, string)) (string, VideoSummary, error) {
	if progress == nil {
		progress = func(float64, string) {}
	}
	if err := checkVideoJob(job); err != nil {
		return "", VideoSummary{}, &StageError{Stage: protocol.StageVideoReconstruction, Err: err}
	}
	if job.TracksPath != "" {
		return "", VideoSummary{}, stageErrorf(protocol.StageVideoReconstruction, "a tracks job has no video to rebuild")
	}
	if job.ArtifactDir == "" {
		return "", VideoSummary{}, stageErrorf(StagePrepare, "no artifact directory given")
	}
	dir, err := filepath.Abs(job.ArtifactDir)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return "", VideoSummary{}, stageErrorf(StagePrepare, "create the artifact directory %s: %w", job.ArtifactDir, err)
	}
	path, summary, err := reconstruct(ctx, job, dir, progress)
	if err != nil {
		return "", VideoSummary{}, &StageError{Stage: protocol.StageVideoReconstruction, Err: err}
	}
	return path, summary, nil
}

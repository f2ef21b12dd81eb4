package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/videoio"
	"github.com/referee-project/referee/pipeline/videoio/videotest"
	"github.com/referee-project/referee/protocol"
)

func TestRunFrames(t *testing.T) {
	const w, h = 640, 480
	alternate := func(i int) string {
		return []string{protocol.EncodingJPEG, protocol.EncodingPNG, protocol.EncodingRaw}[i%3]
	}
	tests := []struct {
		name     string
		src      counterSource
		format   string
		file     string
		codec    string
		describe string
	}{
		{"jpeg 10", counterSource{n: 10, encoding: protocol.EncodingJPEG}, "", "video.avi", "MJPG", "JPEG frames stored as received"},
		{"jpeg 300", counterSource{n: 300, encoding: protocol.EncodingJPEG}, VideoFormatMJPEG, "video.avi", "MJPG", "JPEG frames stored as received"},
		{"png 10", counterSource{n: 10, encoding: protocol.EncodingPNG}, "", "video.avi", "MJPG", "frames encoded as JPEG"},
		{"png 300", counterSource{n: 300, encoding: protocol.EncodingPNG}, "", "video.avi", "MJPG", "frames encoded as JPEG"},
		{"raw 10", counterSource{n: 10, encoding: protocol.EncodingRaw}, "", "video.avi", "MJPG", "frames encoded as JPEG"},
		{"raw 300", counterSource{n: 300, encoding: protocol.EncodingRaw}, "", "video.avi", "MJPG", "frames encoded as JPEG"},
		{"raw grey", counterSource{n: 10, encoding: protocol.EncodingRaw, channels: 1}, "", "video.avi", "MJPG", "frames encoded as JPEG"},
		{"raw BGRA", counterSource{n: 10, encoding: protocol.EncodingRaw, channels: 4}, "", "video.avi", "MJPG", "frames encoded as JPEG"},
		{"jpeg first, then mixed", counterSource{n: 12, encodingOf: alternate}, "", "video.avi", "MJPG", "JPEG frames stored as received, 8 others encoded as JPEG"},
		{"png first, then mixed", counterSource{n: 12, encodingOf: func(i int) string { return alternate(i + 1) }}, "", "video.avi", "MJPG", "JPEG frames stored as received, 8 others encoded as JPEG"},
		{"gaps in the numbers", counterSource{n: 10, encoding: protocol.EncodingJPEG, numberOf: func(i int) int { return 3 * i }}, "", "video.avi", "MJPG", "JPEG frames stored as received"},
		{"h264", counterSource{n: 10, encoding: protocol.EncodingJPEG}, VideoFormatH264, "video.mp4", "avc1", "decoded and encoded as avc1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.src
			src.t, src.width, src.height = t, w, h
			dir := filepath.Join(t.TempDir(), "session")
			stats := protocol.SessionStats{SessionID: "s1", FPS: 15, Width: w, Height: h, FramesReceived: src.n}
			job := Job{
				SessionID:      "s1",
				FPS:            15,
				Width:          w,
				Height:         h,
				Frames:         &src,
				VideoFormat:    tc.format,
				Signal:         readLog(t, logSingleLeft),
				ArtifactDir:    dir,
				StreamingStats: stats,
			}
			var log progressLog
			res, err := Run(context.Background(), job, log.add)
			if err != nil {
				t.Fatal(err)
			}
			log.check(t)
			if first, want := log.reports[0], (progressReport{protocol.StageVideoReconstruction, 0, fmt.Sprintf("rebuilding %d frames into %s", src.n, tc.file)}); first != want {
				t.Errorf("first report %+v, want %+v", first, want)
			}
			msgs := log.messages(protocol.StageVideoReconstruction)
			if want := fmt.Sprintf("%d frames in %s (%s)", src.n, tc.file, tc.describe); msgs[len(msgs)-1] != want {
				t.Errorf("last reconstruction message %q, want %q", msgs[len(msgs)-1], want)
			}
			if src.n == 300 && !strings.Contains(strings.Join(msgs, "|"), "|frame 120/300|") {
				t.Errorf("reconstruction messages %q lack \"frame 120/300\"", msgs)
			}
			if len(msgs) > progressUpdates+2 {
				t.Errorf("%d reconstruction reports, want at most %d", len(msgs), progressUpdates+2)
			}

			want := &Result{
				Status:     StatusSuccess,
				SessionID:  "s1",
				Winner:     signal.WinnerLeft,
				Reason:     "Left scored: only the left light (red) came on",
				Confidence: 1,
				Phrase:     res.Phrase,
				Video:      VideoSummary{Frames: src.n, FPS: 15, Width: w, Height: h, Codec: tc.codec},
				Artifacts: Artifacts{
					Video:      filepath.Join(dir, tc.file),
					Signal:     filepath.Join(dir, SignalFileName),
					ResultJSON: filepath.Join(dir, ResultFileName),
				},
				StreamingStats:  stats,
				ArtifactDir:     dir,
				WallTimeSeconds: res.WallTimeSeconds,
			}
			checkResult(t, res, want)
			if res.Phrase == nil || res.Phrase.Touch == nil || *res.Phrase.Touch != "left" {
				t.Errorf("phrase %+v, want the parsed log with touch left", res.Phrase)
			}
			checkCounters(t, res.Artifacts.Video, src.n)
			info, err := videoio.Probe(res.Artifacts.Video)
			if err != nil || info.FrameCount != src.n || info.Width != w || info.Height != h {
				t.Errorf("probe: %+v, %v; want %d frames %dx%d", info, err, src.n, w, h)
			}
		})
	}
}

// checkResult compares res with want, checks that result.json holds
// exactly res, and that the artifacts exist.
func checkResult(t *testing.T, res, want *Result) {
	t.Helper()
	gotJSON, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("result:\n%s\nwant:\n%s", gotJSON, wantJSON)
	}
	if !(res.WallTimeSeconds > 0) {
		t.Errorf("wall_time_seconds %v, want > 0", res.WallTimeSeconds)
	}
	file, err := os.ReadFile(res.Artifacts.ResultJSON)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, append(gotJSON, '\n')) {
		t.Errorf("result.json differs from the returned result:\n%s", file)
	}
	if fi, err := os.Stat(res.Artifacts.ResultJSON); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("result.json mode %v (%v), want -rw-r--r-- like the other artifacts", fi.Mode(), err)
	}
	// Read back, the result holds the same values; streaming_stats and
	// extras come back as JSON objects, so compare them as such.
	var back Result
	if err := json.Unmarshal(file, &back); err != nil {
		t.Fatal(err)
	}
	again, err := json.Marshal(&back)
	if err != nil {
		t.Fatal(err)
	}
	var fromFile, fromBack any
	if err := json.Unmarshal(file, &fromFile); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(again, &fromBack); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromFile, fromBack) {
		t.Errorf("result.json does not read back into the same result:\n%s", again)
	}
	for name, path := range map[string]string{"video": res.Artifacts.Video, "signal": res.Artifacts.Signal, "result_json": res.Artifacts.ResultJSON} {
		if !filepath.IsAbs(path) {
			t.Errorf("artifact %s: %q is not absolute", name, path)
		}
		if st, err := os.Stat(path); err != nil || st.Size() == 0 {
			t.Errorf("artifact %s: %v", name, err)
		}
	}
	if data, err := os.ReadFile(res.Artifacts.Signal); err != nil || res.Phrase == nil {
		t.Errorf("signal.txt: %v", err)
	} else if p, err := signal.Parse(data); err != nil || *p.Phrase != *res.Phrase.Phrase {
		t.Errorf("signal.txt does not hold the job's signal: %v", err)
	}
}

func TestRealPhrases(t *testing.T) {
	tests := []struct {
		log    string
		winner string
		reason string
	}{
		{logSingleLeft, signal.WinnerLeft, "Left scored: only the left light (red) came on"},
		{logDouble, signal.WinnerUndecided, "double touch: right-of-way needs the video analysis"},
	}
	for _, tc := range tests {
		t.Run(tc.log, func(t *testing.T) {
			for _, analyzer := range []string{"", AnalyzerSignal} {
				job := Job{
					SessionID:   "real",
					FPS:         30,
					Width:       160,
					Height:      120,
					Frames:      &counterSource{t: t, n: 10, width: 160, height: 120, encoding: protocol.EncodingJPEG},
					Signal:      readLog(t, tc.log),
					ArtifactDir: t.TempDir(),
					Analyzer:    analyzer,
				}
				res, err := Run(context.Background(), job, nil)
				if err != nil {
					t.Fatal(err)
				}
				wantConf := 1.0
				if tc.winner == signal.WinnerUndecided {
					wantConf = 0
				}
				if res.Winner != tc.winner || res.Reason != tc.reason || res.Confidence != wantConf {
					t.Errorf("analyzer %q: winner %q, reason %q, confidence %v; want %q, %q, %v", analyzer, res.Winner, res.Reason, res.Confidence, tc.winner, tc.reason, wantConf)
				}
				raw, err := os.ReadFile(res.Artifacts.ResultJSON)
				if err != nil {
					t.Fatal(err)
				}
				var fields map[string]json.RawMessage
				if err := json.Unmarshal(raw, &fields); err != nil {
					t.Fatal(err)
				}
				if c, ok := fields["confidence"]; !ok || string(c) != strconv.FormatFloat(wantConf, 'f', -1, 64) {
					t.Errorf("result.json confidence %s (present %v), want %v", c, ok, wantConf)
				}
				if string(fields["winner"]) != `"`+tc.winner+`"` {
					t.Errorf("result.json winner %s, want %q", fields["winner"], tc.winner)
				}
			}
		})
	}
}

// failure runs job and checks that it fails in stage with exactly want,
// and leaves no result.json and no video.
func failure(t *testing.T, job Job, stage, want string) error {
	t.Helper()
	res, err := Run(context.Background(), job, nil)
	if err == nil {
		t.Fatalf("Run succeeded (%+v), want error %q", res, want)
	}
	var se *StageError
	if !errors.As(err, &se) || se.Stage != stage {
		t.Errorf("error %v is not a StageError of stage %s", err, stage)
	}
	if err.Error() != want {
		t.Errorf("error:\n  %s\nwant:\n  %s", err, want)
	}
	assertNoResult(t, job.ArtifactDir)
	for _, name := range []string{"video.avi", "video.mp4"} {
		if _, err := os.Stat(filepath.Join(job.ArtifactDir, name)); err == nil {
			t.Errorf("%s left behind after a failure", name)
		}
	}
	return err
}

func TestRunMixedSizes(t *testing.T) {
	const w, h = 640, 480
	small := func(i int) (int, int) {
		if i == 5 {
			return 320, 240
		}
		return w, h
	}
	want := "video_reconstruction: frame 5: picture is 320x240, the session's frames are 640x480"
	for _, enc := range []string{protocol.EncodingJPEG, protocol.EncodingPNG, protocol.EncodingRaw} {
		for _, format := range []string{VideoFormatMJPEG, VideoFormatH264} {
			t.Run(enc+" "+format, func(t *testing.T) {
				dir := t.TempDir()
				// A result.json of an earlier run must not survive either.
				if err := os.WriteFile(filepath.Join(dir, ResultFileName), []byte("{}"), 0o644); err != nil {
					t.Fatal(err)
				}
				job := Job{
					SessionID: "mixed", FPS: 15, Width: w, Height: h, VideoFormat: format,
					Frames:      &counterSource{t: t, n: 10, width: w, height: h, encoding: enc, sizeOf: small},
					Signal:      readLog(t, logSingleLeft),
					ArtifactDir: dir,
				}
				failure(t, job, protocol.StageVideoReconstruction, want)
			})
		}
	}
}

func TestRunCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	job := Job{
		SessionID: "cancel", FPS: 15, Width: 320, Height: 240,
		Frames: &counterSource{t: t, n: 300, width: 320, height: 240, encoding: protocol.EncodingJPEG, before: func(i int) {
			if i == 5 {
				cancel()
			}
		}},
		Signal:      readLog(t, logSingleLeft),
		ArtifactDir: dir,
	}
	var log progressLog
	_, err := Run(ctx, job, log.add)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if want := "video_reconstruction: canceled after 5 of 300 frames: context canceled"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	assertNoResult(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "video.avi")); err == nil {
		t.Error("the partial video.avi was left behind")
	}
	if msgs := log.messages(protocol.StageAnalysis); len(msgs) != 0 {
		t.Errorf("analysis ran after the cancellation: %q", msgs)
	}
}

func TestRunBadJob(t *testing.T) {
	frames := func(t *testing.T) *counterSource {
		return &counterSource{t: t, n: 3, width: 64, height: 48, encoding: protocol.EncodingJPEG}
	}
	tests := []struct {
		name  string
		edit  func(t *testing.T, j *Job)
		stage string
		want  string
	}{
		{"empty signal", func(_ *testing.T, j *Job) { j.Signal = nil }, protocol.StageAnalysis,
			"analysis: read the signal: signal file is empty: 0 bytes"},
		{"not a phrase log", func(_ *testing.T, j *Job) { j.Signal = []byte("hello\nworld\n") }, protocol.StageAnalysis,
			`analysis: read the signal: signal file is not a scoring-box phrase log: no "Phrase N initialized" line, no timed "<seconds>s | <event>" line and no "Scores ->" or "Interpretation ->" line; is it the box's phrase log?`},
		{"unknown analyzer", func(_ *testing.T, j *Job) { j.Analyzer = "motion" }, protocol.StageAnalysis,
			`analysis: unknown analyzer "motion": known analyzers are signal`},
		{"neither frames nor video", func(_ *testing.T, j *Job) { j.Frames = nil }, protocol.StageVideoReconstruction,
			"video_reconstruction: the job has neither frames nor a video path"},
		{"frames and video", func(_ *testing.T, j *Job) { j.VideoPath = "x.mp4" }, protocol.StageVideoReconstruction,
			"video_reconstruction: the job has both frames and a video path; give one"},
		{"no frames", func(t *testing.T, j *Job) { j.Frames = &counterSource{t: t} }, protocol.StageVideoReconstruction,
			"video_reconstruction: no frames to rebuild: the session received none"},
		{"fps 0", func(_ *testing.T, j *Job) { j.FPS = 0 }, protocol.StageVideoReconstruction,
			"video_reconstruction: frame rate 0 out of range: it must be 0.01 to 1000 frames per second"},
		{"size 0", func(_ *testing.T, j *Job) { j.Width, j.Height = 0, 0 }, protocol.StageVideoReconstruction,
			"video_reconstruction: frame size 0x0 out of range: width and height must be 1 to 32767"},
		{"unknown format", func(_ *testing.T, j *Job) { j.VideoFormat = "vp9" }, protocol.StageVideoReconstruction,
			`video_reconstruction: unknown video format "vp9": use "mjpeg" or "h264"`},
		{"no artifact dir", func(_ *testing.T, j *Job) { j.ArtifactDir = "" }, StagePrepare,
			"prepare: no artifact directory given"},
		{"frames out of order", func(t *testing.T, j *Job) {
			j.Frames = &counterSource{t: t, n: 3, width: 64, height: 48, encoding: protocol.EncodingJPEG, numberOf: func(i int) int { return []int{0, 2, 1}[i] }}
		}, protocol.StageVideoReconstruction,
			"video_reconstruction: frame 1 came after frame 2: the frame source must yield frames in order, each once"},
		{"fewer frames than announced", func(t *testing.T, j *Job) {
			j.Frames = &counterSource{t: t, n: 3, count: 4, width: 64, height: 48, encoding: protocol.EncodingJPEG}
		}, protocol.StageVideoReconstruction,
			"video_reconstruction: the frame source announced 4 frames but gave 3"},
		{"unknown encoding", func(t *testing.T, j *Job) {
			j.Frames = &counterSource{t: t, n: 3, width: 64, height: 48, encoding: "webp"}
		}, protocol.StageVideoReconstruction,
			`video_reconstruction: frame 0: unknown encoding "webp": want "jpeg", "png" or "raw"`},
		{"bad raw frame", func(t *testing.T, j *Job) {
			j.Frames = &fixedSource{frames: []EncodedFrame{{Number: 0, Encoding: protocol.EncodingRaw, Data: protocol.AppendRaw(nil, 48, 64, 3, make([]byte, 10))}}}
		}, protocol.StageVideoReconstruction,
			"video_reconstruction: frame 0: bad raw frame: 64x48x3 needs 9216 pixel bytes, got 10"},
		{"truncated JPEG", func(t *testing.T, j *Job) {
			data := encodeCounter(t, 0, 64, 48, protocol.EncodingJPEG, 3)
			j.Frames = &fixedSource{frames: []EncodedFrame{{Number: 0, Encoding: protocol.EncodingJPEG, Data: data[:len(data)/2]}}}
		}, protocol.StageVideoReconstruction,
			"video_reconstruction: frame 0: JPEG is truncated: no end-of-image marker (FF D9)"},
		{"not a JPEG", func(t *testing.T, j *Job) {
			j.Frames = &fixedSource{frames: []EncodedFrame{{Number: 0, Encoding: protocol.EncodingJPEG, Data: []byte("GIF89a")}}}
		}, protocol.StageVideoReconstruction,
			"video_reconstruction: frame 0: unreadable JPEG header: invalid JPEG format: missing SOI marker"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			job := Job{
				SessionID: "bad", FPS: 15, Width: 64, Height: 48, Frames: frames(t),
				Signal: readLog(t, logSingleLeft), ArtifactDir: filepath.Join(t.TempDir(), "a"),
			}
			tc.edit(t, &job)
			failure(t, job, tc.stage, tc.want)
		})
	}
}

// fixedSource yields the frames it holds.
type fixedSource struct {
	frames []EncodedFrame
}

func (s *fixedSource) Count() int { return len(s.frames) }

func (s *fixedSource) Each(ctx context.Context, fn func(EncodedFrame) error) error {
	for _, f := range s.frames {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func TestRunVideoPath(t *testing.T) {
	const n, w, h = 12, 320, 240
	src := filepath.Join(t.TempDir(), "upload.mp4")
	videotest.WriteCounterVideo(t, src, "", 25, n, w, h)
	info, err := videoio.Probe(src)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	var log progressLog
	res, err := Run(context.Background(), Job{SessionID: "upload", VideoPath: src, Signal: readLog(t, logDouble), ArtifactDir: dir}, log.add)
	if err != nil {
		t.Fatal(err)
	}
	log.check(t)
	if got := log.reports[0]; got.stage != protocol.StageVideoReconstruction || got.progress != 1 || got.message != "copied upload.mp4 into video.mp4 (12 frames)" {
		t.Errorf("first report %+v, want reconstruction at 1 at once", got)
	}
	checkResult(t, res, &Result{
		Status:    StatusSuccess,
		SessionID: "upload",
		Winner:    signal.WinnerUndecided,
		Reason:    signal.ReasonDouble,
		Phrase:    res.Phrase,
		Video:     VideoSummary{Frames: n, FPS: info.FPS, Width: w, Height: h, Codec: info.Codec},
		Artifacts: Artifacts{
			Video:      filepath.Join(dir, "video.mp4"),
			Signal:     filepath.Join(dir, SignalFileName),
			ResultJSON: filepath.Join(dir, ResultFileName),
		},
		ArtifactDir:     dir,
		WallTimeSeconds: res.WallTimeSeconds,
	})
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	copied, err := os.ReadFile(res.Artifacts.Video)
	if err != nil || !bytes.Equal(orig, copied) {
		t.Errorf("the artifact video is not a copy of the upload: %v", err)
	}
	checkCounters(t, res.Artifacts.Video, n)

	// Analysing again in place: the video is its own artifact.
	again, err := Run(context.Background(), Job{SessionID: "upload", VideoPath: res.Artifacts.Video, Signal: readLog(t, logDouble), ArtifactDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Artifacts.Video != res.Artifacts.Video || again.Video != res.Video {
		t.Errorf("re-analysis in place: %+v, want %+v", again.Video, res.Video)
	}
	checkCounters(t, again.Artifacts.Video, n)

	t.Run("not a video", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "notes.mp4")
		if err := os.WriteFile(bad, []byte("not a video at all"), 0o644); err != nil {
			t.Fatal(err)
		}
		job := Job{SessionID: "bad", VideoPath: bad, Signal: readLog(t, logDouble), ArtifactDir: t.TempDir()}
		err := failure(t, job, protocol.StageVideoReconstruction,
			"video_reconstruction: video "+bad+": cannot open video: not a video in a container and codec this OpenCV (4.6.0, FFmpeg backend) can read")
		if !errors.Is(err, videoio.ErrCannotOpen) {
			t.Errorf("%v does not wrap videoio.ErrCannotOpen", err)
		}
	})
}

// With frames prepared on several goroutines, the error is that of the
// first bad frame, and no worker outlives Run.
func TestRunFirstBadFrameReported(t *testing.T) {
	before := runtime.NumGoroutine()
	bad := func(i int) (int, int) {
		if i == 3 || i == 4 || i == 20 {
			return 64, 48
		}
		return 160, 120
	}
	for _, enc := range []string{protocol.EncodingPNG, protocol.EncodingRaw} {
		job := Job{
			SessionID: "bad", FPS: 15, Width: 160, Height: 120,
			Frames:      &counterSource{t: t, n: 30, width: 160, height: 120, encoding: enc, sizeOf: bad},
			Signal:      readLog(t, logSingleLeft),
			ArtifactDir: t.TempDir(),
		}
		failure(t, job, protocol.StageVideoReconstruction, "video_reconstruction: frame 3: picture is 64x48, the session's frames are 160x120")
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("%d goroutines after failed runs, %d before", after, before)
	}
}

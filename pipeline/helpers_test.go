package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio/videotest"
	"github.com/referee-project/referee/protocol"
)

// Real phrase logs, copied from shared/testdata/phrases.
const (
	logSingleLeft = "20260127_210842_phrase02.txt" // only the left light
	logDouble     = "20251020_210329_phrase09.txt" // both lights
)

func readLog(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "signal", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// counterSource generates counter frames as it yields them, so that a
// long session of raw frames never sits in memory.
type counterSource struct {
	t        testing.TB
	n        int
	width    int
	height   int
	encoding string
	channels int // of raw frames: 1, 3 (the default) or 4
	// encodingOf, sizeOf and numberOf, when set, give frame i another
	// encoding, size or frame number.
	encodingOf func(i int) string
	sizeOf     func(i int) (w, h int)
	numberOf   func(i int) int
	// count, when not 0, is what Count reports instead of n.
	count int
	// before, when set, runs before frame i is yielded.
	before func(i int)
}

func (s *counterSource) Count() int {
	if s.count != 0 {
		return s.count
	}
	return s.n
}

func (s *counterSource) Each(ctx context.Context, fn func(EncodedFrame) error) error {
	for i := range s.n {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.before != nil {
			s.before(i)
		}
		f := EncodedFrame{Number: i, Encoding: s.encoding}
		if s.numberOf != nil {
			f.Number = s.numberOf(i)
		}
		if s.encodingOf != nil {
			f.Encoding = s.encodingOf(i)
		}
		w, h := s.width, s.height
		if s.sizeOf != nil {
			w, h = s.sizeOf(i)
		}
		f.Data = encodeCounter(s.t, i, w, h, f.Encoding, s.channels)
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// encodeCounter returns counter frame i, w x h, in the given encoding; raw
// frames with the given number of channels (1, 3 or 4); "not a picture"
// for an unknown encoding.
func encodeCounter(t testing.TB, i, w, h int, encoding string, channels int) []byte {
	t.Helper()
	if !protocol.KnownEncoding(encoding) {
		return []byte("not a picture")
	}
	if encoding != protocol.EncodingRaw || channels != 1 && channels != 4 {
		return videotest.EncodeCounter(t, i, w, h, encoding)
	}
	img := videotest.CounterPicture(i, w, h)
	if channels == 1 {
		gray := make([]byte, w*h)
		for p := range gray {
			gray[p] = img.Gray(p%w, p/w)
		}
		return protocol.AppendRaw(nil, h, w, 1, gray)
	}
	bgra := make([]byte, 0, w*h*4)
	for p := 0; p < len(img.Pix); p += 3 {
		bgra = append(bgra, img.Pix[p], img.Pix[p+1], img.Pix[p+2], 255)
	}
	return protocol.AppendRaw(nil, h, w, 4, bgra)
}

// checkCounters checks that the video at path holds counter frames 0..n-1
// in order, and that OpenCV reports n frames.
func checkCounters(t testing.TB, path string, n int) {
	t.Helper()
	indices, info := videotest.ReadCounters(t, path)
	rep := synth.VerifySequence(indices)
	if !rep.SequenceOK || rep.Frames != n || info.FrameCount != n {
		t.Errorf("%s: %d frames read, %d reported, want %d in order: %+v", filepath.Base(path), rep.Frames, info.FrameCount, n, rep)
	}
}

// progressLog records progress reports.
type progressLog struct {
	reports []progressReport
}

type progressReport struct {
	stage    string
	progress float64
	message  string
}

func (l *progressLog) add(stage string, p float64, msg string) {
	l.reports = append(l.reports, progressReport{stage, p, msg})
}

// check asserts that both stages came, in order, each going up to 1
// without going back.
func (l *progressLog) check(t testing.TB) {
	t.Helper()
	var stages []string
	last := -1.0
	for _, r := range l.reports {
		if len(stages) == 0 || stages[len(stages)-1] != r.stage {
			if last != -1 && last != 1 {
				t.Errorf("stage %s ended at %v, want 1", stages[len(stages)-1], last)
			}
			stages = append(stages, r.stage)
			last = 0
		}
		if r.progress < last || r.progress > 1 {
			t.Errorf("stage %s went from %v to %v (%q)", r.stage, last, r.progress, r.message)
		}
		last = r.progress
	}
	if last != 1 {
		t.Errorf("last stage ended at %v, want 1", last)
	}
	if want := []string{protocol.StageVideoReconstruction, protocol.StageAnalysis}; !slices.Equal(stages, want) {
		t.Errorf("stages %v, want %v", stages, want)
	}
}

// messages returns the messages of stage.
func (l *progressLog) messages(stage string) []string {
	var out []string
	for _, r := range l.reports {
		if r.stage == stage {
			out = append(out, r.message)
		}
	}
	return out
}

// assertNoResult checks that dir holds no result.json, nor a temporary one.
func assertNoResult(t testing.TB, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == ResultFileName || filepath.Ext(e.Name()) == ".tmp" {
			t.Errorf("%s left in the artifact directory after a failure", e.Name())
		}
	}
}

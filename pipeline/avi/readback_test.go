package avi

import (
	"math"
	"testing"

	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio/videotest"
)

// TestReadBackOpenCV writes real JPEG counter frames and reads them back
// through OpenCV: every frame must decode, in order, with the right count,
// size and rate, for a plain AVI and for an OpenDML file of several RIFFs.
func TestReadBackOpenCV(t *testing.T) {
	const w, h = 320, 240
	tests := []struct {
		name  string
		n     int
		fps   float64
		riffs int // RIFFs to spread the frames over
	}{
		{"plain AVI", 30, 15, 1},
		{"NTSC rate", 10, 30000.0 / 1001, 1},
		{"OpenDML", 45, 25, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frames := videotest.CounterJPEGs(t, tc.n, w, h, 85)
			var size int64
			for _, f := range frames {
				size += int64(len(f))
			}
			var limit int64 // the default
			if tc.riffs > 1 {
				limit = size / int64(tc.riffs)
			}
			path, file := writeFile(t, Config{Width: w, Height: h, FPS: tc.fps}, limit, frames)
			if riffs := len(parseChunks(t, file, 0)); riffs < tc.riffs {
				t.Fatalf("%d RIFFs, want at least %d", riffs, tc.riffs)
			}

			indices, info := videotest.ReadCounters(t, path)
			if !info.Opened || !info.ReadFrame || info.FrameCount != tc.n || info.Width != w || info.Height != h ||
				info.Codec != "MJPG" || math.Abs(info.FPS-tc.fps) > 1e-3 {
				t.Errorf("OpenCV reports %+v; want %d MJPG frames %dx%d at %v fps", info, tc.n, w, h, tc.fps)
			}
			if rep := synth.VerifySequence(indices); !rep.SequenceOK || rep.Frames != tc.n {
				t.Errorf("read back %d frames, want %d in order: %+v", rep.Frames, tc.n, rep)
			}
		})
	}
}

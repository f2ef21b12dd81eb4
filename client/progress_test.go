package client

import (
	"math"
	"testing"
	"time"
)

// TestProgressRateAndBarText: the bar's rate is measured over the intervals
// between frames, never over the first frame alone or no time, and shown
// only once the frames span minRateWindow or the stream is finished.
func TestProgressRateAndBarText(t *testing.T) {
	const dashes = "Streaming    -- fps     -- Mbps"
	for _, c := range []struct {
		name      string
		frames    int
		bytes     int64
		elapsed   time.Duration
		finished  bool
		fps, mbps float64
		ok        bool
		text      string
	}{
		{name: "before the first frame", text: dashes},
		{name: "the first tick: one frame, no interval", frames: 1, bytes: 50_000, elapsed: 0, text: dashes},
		{name: "one frame, finished", frames: 1, bytes: 50_000, finished: true, text: dashes},
		{name: "two frames in no time", frames: 2, bytes: 100_000, elapsed: 0, text: dashes},
		{name: "two frames 1 µs apart: a burst into the socket's buffer", frames: 2, bytes: 100_000, elapsed: time.Microsecond,
			fps: 1e6, mbps: 400_000, ok: true, text: dashes},
		{name: "just under the window", frames: 8, bytes: 400_000, elapsed: minRateWindow - time.Millisecond,
			fps: 7 / 0.249, mbps: 350_000 * 8 / 0.249 / 1e6, ok: true, text: dashes},
		{name: "at the window", frames: 31, bytes: 31 * 25_000, elapsed: time.Second, // 30 fps of 25 kB frames
			fps: 30, mbps: 6, ok: true, text: "Streaming  30.0 fps    6.0 Mbps"},
		{name: "30 fps of 187.5 kB frames for a minute", frames: 1801, bytes: 1801 * 187_500, elapsed: time.Minute,
			fps: 30, mbps: 45, ok: true, text: "Streaming  30.0 fps   45.0 Mbps"},
		{name: "a finished stream shorter than the window", frames: 64, bytes: 64 * 10_000, elapsed: 180 * time.Millisecond, finished: true,
			fps: 350, mbps: 28, ok: true, text: "Streaming 350.0 fps   28.0 Mbps"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fps, mbps, ok := rate(c.frames, c.bytes, c.elapsed)
			if ok != c.ok || math.Abs(fps-c.fps) > 1e-6*c.fps || math.Abs(mbps-c.mbps) > 1e-6*c.mbps {
				t.Errorf("rate(%d, %d, %v) = %v fps, %v Mbps, %v; want %v, %v, %v", c.frames, c.bytes, c.elapsed, fps, mbps, ok, c.fps, c.mbps, c.ok)
			}
			if got := barText(c.frames, c.bytes, c.elapsed, c.finished); got != c.text {
				t.Errorf("barText(%d, %d, %v, %v) = %q, want %q", c.frames, c.bytes, c.elapsed, c.finished, got, c.text)
			}
		})
	}
}

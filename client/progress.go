package client

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progressEvery is how many frames apart the "Progress:" log lines are.
const progressEvery = 100

// barRedraw is how often the progress bar is drawn.
const barRedraw = 100 * time.Millisecond

// progress reports frames sent: as a progress bar when a writer for it is
// given, else as a log line every progressEvery frames.
type progress struct {
	log *slog.Logger
	bar *progressbar.ProgressBar
	// described is when the bar's rate text was last set.
	described time.Time
	total     int // 0 when unknown
	start     time.Time
	last      time.Time // when the last frame was handed to the connection
	sent      int
	bytes     int64
}

func newProgress(log *slog.Logger, barTo io.Writer, total int) *progress {
	p := &progress{log: log, total: total}
	if barTo != nil {
		max := total
		if max <= 0 {
			max = -1
		}
		p.bar = progressbar.NewOptions(max,
			progressbar.OptionSetWriter(barTo),
			progressbar.OptionSetDescription("Streaming   0.0 Mbps"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("frames"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(barRedraw),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(barTo) }),
		)
	}
	return p
}

// frameSent records one frame of size bytes handed to the connection.
func (p *progress) frameSent(size int) {
	now := time.Now()
	if p.sent == 0 {
		p.start = now
	}
	p.last = now
	p.sent++
	p.bytes += int64(size)
	if p.bar != nil {
		if p.total > 0 && p.sent > p.total {
			// The container's frame count was an estimate.
			p.bar.ChangeMax(p.sent)
		}
		// The bar redraws at most every barRedraw: the rate text need not
		// be formatted more often.
		if now.Sub(p.described) >= barRedraw {
			p.described = now
			p.bar.Describe(fmt.Sprintf("Streaming %5.1f Mbps", p.mbps()))
		}
		p.bar.Add(1)
		return
	}
	if p.sent%progressEvery == 0 {
		if p.total > 0 {
			p.log.Info(fmt.Sprintf("Progress: %d/%d frames (%.1f%%), %.1f FPS, %.1f Mbps",
				p.sent, p.total, 100*float64(p.sent)/float64(p.total), p.fps(), p.mbps()))
		} else {
			p.log.Info(fmt.Sprintf("Progress: %d frames, %.1f FPS, %.1f Mbps", p.sent, p.fps(), p.mbps()))
		}
	}
}

// done closes the bar, so that log lines can follow on their own line.
func (p *progress) done() {
	if p.bar != nil && !p.bar.IsFinished() {
		p.bar.Exit()
	}
}

// elapsed is the time from the first frame sent to the last.
func (p *progress) elapsed() time.Duration {
	return p.last.Sub(p.start)
}

// fps is the rate since the first frame; counting from the first frame
// means frame n is n intervals after it.
func (p *progress) fps() float64 {
	if s := time.Since(p.start).Seconds(); s > 0 && p.sent > 1 {
		return float64(p.sent-1) / s
	}
	return 0
}

func (p *progress) mbps() float64 {
	if s := time.Since(p.start).Seconds(); s > 0 {
		return float64(p.bytes) * 8 / s / 1e6
	}
	return 0
}

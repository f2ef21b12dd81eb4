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

// minRateWindow is how long the frames shown must span before the bar
// shows a rate: over the first milliseconds a rate measures the socket's
// buffer and the clock's resolution, not the link (the first frame alone
// read as 75994 Mbps).
const minRateWindow = 250 * time.Millisecond

// progress reports frames sent: as a progress bar when a writer for it is
// given, else as a log line every progressEvery frames. With a bar, the
// server's processing stages get a bar of their own after it.
type progress struct {
	log   *slog.Logger
	barTo io.Writer
	bar   *progressbar.ProgressBar
	// described is when the bar's rate text was last set.
	described time.Time
	total     int // 0 when unknown
	start     time.Time
	last      time.Time // when the last frame was handed to the connection
	sent      int
	bytes     int64
	// proc is the processing bar, made at the first stage reported, and
	// stage the stage it shows.
	proc  *progressbar.ProgressBar
	stage string
}

func newProgress(log *slog.Logger, barTo io.Writer, total int) *progress {
	p := &progress{log: log, barTo: barTo, total: total}
	if barTo != nil {
		max := total
		if max <= 0 {
			max = -1
		}
		p.bar = progressbar.NewOptions(max,
			progressbar.OptionSetWriter(barTo),
			progressbar.OptionSetDescription(barText(0, 0, 0, false)),
			progressbar.OptionShowCount(),
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
		// be formatted more often. The last frame's text is set before
		// the bar draws itself complete: a finished bar is not redrawn.
		if last := p.sent == p.total; last || now.Sub(p.described) >= barRedraw {
			p.described = now
			p.bar.Describe(barText(p.sent, p.bytes, p.elapsed(), last))
		}
		p.bar.Add(1)
		return
	}
	if p.sent%progressEvery == 0 {
		fps, mbps := p.rate()
		if p.total > 0 {
			p.log.Info(fmt.Sprintf("Progress: %d/%d frames (%.1f%%), %.1f FPS, %.1f Mbps",
				p.sent, p.total, 100*float64(p.sent)/float64(p.total), fps, mbps))
		} else {
			p.log.Info(fmt.Sprintf("Progress: %d frames, %.1f FPS, %.1f Mbps", p.sent, fps, mbps))
		}
	}
}

// done closes the bars, so that log lines can follow on their own line.
func (p *progress) done() {
	for _, b := range []*progressbar.ProgressBar{p.bar, p.proc} {
		if b != nil && !b.IsFinished() {
			b.Exit()
		}
	}
}

// processing shows the server's progress in a stage, pct 0 to 100, on the
// processing bar, when there is a bar.
func (p *progress) processing(stage string, pct int) {
	if p.bar == nil {
		return
	}
	if p.proc == nil {
		p.done()
		p.proc = progressbar.NewOptions(100,
			progressbar.OptionSetWriter(p.barTo),
			progressbar.OptionThrottle(barRedraw),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.barTo) }),
		)
	}
	if stage != p.stage {
		p.stage = stage
		p.proc.Describe(fmt.Sprintf("Processing: %-22s", stage))
	}
	if pct < 100 {
		// 100% finishes the bar: only the last stage's end may.
		p.proc.Set(pct)
	}
}

// processed draws the processing bar complete: the result has come.
func (p *progress) processed() {
	if p.proc != nil {
		p.proc.Finish()
	}
}

// elapsed is the time from the first frame sent to the last.
func (p *progress) elapsed() time.Duration {
	return p.last.Sub(p.start)
}

// rate is the sending rate so far, as rate counts it.
func (p *progress) rate() (fps, mbps float64) {
	fps, mbps, _ = rate(p.sent, p.bytes, p.elapsed())
	return fps, mbps
}

// rate is the sending rate of frames frames of bytes bytes in all, the
// last sent elapsed after the first: frame n is n-1 intervals after the
// first, and so are all but one frame's bytes (the mean frame's, as the
// first frame left before the clock started). ok is false, and the rates
// 0, when there is no interval to measure: fewer than two frames, or no
// time between them.
func rate(frames int, bytes int64, elapsed time.Duration) (fps, mbps float64, ok bool) {
	if frames < 2 || elapsed <= 0 {
		return 0, 0, false
	}
	s := elapsed.Seconds()
	intervals := float64(frames - 1)
	return intervals / s, float64(bytes) * intervals / float64(frames) * 8 / s / 1e6, true
}

// barText is the progress bar's description: the rate of the frames sent
// so far, or dashes while it is not yet measurable, which is until the
// frames span minRateWindow unless finished (the whole stream was sent,
// however fast).
func barText(frames int, bytes int64, elapsed time.Duration, finished bool) string {
	fps, mbps, ok := rate(frames, bytes, elapsed)
	if !ok || (!finished && elapsed < minRateWindow) {
		return "Streaming    -- fps     -- Mbps"
	}
	return fmt.Sprintf("Streaming %5.1f fps %6.1f Mbps", fps, mbps)
}

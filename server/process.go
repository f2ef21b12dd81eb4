package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/protocol"
)

// progressInterval is the least time between two process_progress messages
// of one stage; a stage's first and last are always sent.
const progressInterval = 100 * time.Millisecond

// startProcessing moves s to processing, once both session_end and the
// signal are in, and runs it in a goroutine the server owns: processing
// goes on if the client disconnects, and stops when the server shuts down
// or the client aborts. c, which sent the last of the two, takes the
// processing messages until it goes or another connection resumes s.
func (srv *Server) startProcessing(s *session, c *conn) {
	ctx, cancel := context.WithCancelCause(srv.ctx)
	signalBytes, ok := s.beginProcessing(cancel)
	if !ok {
		cancel(nil)
		return
	}
	s.log.Info("signal received, starting processing", "frames", s.spool.Count(), "signal_bytes", signalBytes)
	c.send(protocol.ProcessStart{SessionID: s.id})
	if !srv.goProcessing(func() { srv.process(ctx, s) }) {
		srv.finish(s, failure("shutdown", "server shutting down before processing"), stateProcessing)
	}
}

// process runs the pipeline for s and sends the progress and the result,
// or the error, to the connection attached to s at the time.
func (srv *Server) process(ctx context.Context, s *session) {
	if s.spool.Count() == 0 {
		srv.processFailed(s, "", errors.New("no frames were received: nothing to reconstruct"))
		return
	}
	// A place among ProcessingWorkers, so that many phrases ending
	// together do not thrash two cores; before any upload's.
	release, err := srv.workers.acquire(ctx, false)
	if err != nil {
		srv.processFailed(s, "", err)
		return
	}
	// Once: a phrase analysed elsewhere gives its place back as soon as
	// it is submitted.
	release = sync.OnceFunc(release)
	defer release()
	fwd := &progressForwarder{s: s}
	dir, err := srv.claim(ctx, s, fwd)
	if err != nil {
		srv.processFailed(s, "", err)
		return
	}
	if srv.cfg.Jobs != nil {
		if key := srv.submittedKey(s); key != "" {
			// Submitted before a restart: the artifacts come from that job.
			release()
			s.log.Info("waiting for the job submitted before the restart", "phrase", key)
			srv.awaitRemote(ctx, s, dir, key, time.Now(), fwd)
			return
		}
	}
	unreadable, err := s.spool.DropUnreadable(ctx, func(encoding string, payload []byte) error {
		if reason := checkPicture(encoding, payload, s.start.Width, s.start.Height, srv.cfg.MaxFramePixels); reason != "" {
			return errors.New(reason)
		}
		if encoding == protocol.EncodingPNG {
			return srv.decodePNG(ctx, payload, s.start.Width, s.start.Height)
		}
		return nil
	})
	if err != nil {
		srv.processFailed(s, dir, err)
		return
	}
	v := s.validation()
	count := len(unreadable)
	v.UnreadableFrames = &count
	if len(unreadable) > 0 {
		s.log.Warn("left frames that cannot be read out of the video", "unreadable", len(unreadable), "frames", fmt.Sprint(unreadable))
		v.Issues = append(v.Issues, fmt.Sprintf("unreadable frames left out of the video: %d (%s)", len(unreadable), listFrames(unreadable)))
		v.Valid = false
	}
	if v.FrameCount == 0 {
		srv.processFailed(s, dir, errors.New("no frame can be read: nothing to reconstruct"))
		return
	}
	s.mu.Lock()
	sig := s.signal
	s.mu.Unlock()
	if srv.cfg.Jobs != nil {
		srv.processRemote(ctx, s, dir, v, sig, fwd, release)
		return
	}
	analyzer, analyzers := srv.analyzerWith(v)
	began := time.Now()
	res, err := pipeline.Run(ctx, pipeline.Job{
		SessionID:      s.id,
		FPS:            s.start.FPS,
		Width:          s.start.Width,
		Height:         s.start.Height,
		Frames:         s.spool,
		Signal:         sig,
		ArtifactDir:    dir,
		Analyzer:       analyzer,
		Analyzers:      analyzers,
		VideoFormat:    srv.cfg.VideoFormat,
		StreamingStats: s.stats(time.Now()),
		StartedAt:      s.created,
	}, fwd.report)
	srv.metrics.processing.Observe(time.Since(began).Seconds())
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, cause)
		}
		srv.processFailed(s, dir, err)
		return
	}
	result, err := json.Marshal(res)
	if err != nil {
		srv.processFailed(s, dir, fmt.Errorf("encode the result: %w", err))
		return
	}
	s.log.Info("processing complete", "winner", res.Winner, "frames", res.Video.Frames, "wall_time_s", roundTo(res.WallTimeSeconds, 3), "artifact_dir", res.ArtifactDir)
	srv.completeProcessing(s, result, res.Artifacts.ResultJSON)
}

// completeProcessing ends the processing of s with its result. With a
// connection waiting for it, the result goes there and s is done: it is
// counted and logged as completed, and then kept, delivered, for the resume
// grace period, in case the connection was lost before the client read the
// result (a resume then gets it from result.json). With no such connection,
// s becomes processed and is kept for the grace period the same way, still
// active until a client resumes it for the result. Either way its spool is
// dropped. When the server is shutting down, s is removed at once.
func (srv *Server) completeProcessing(s *session, result []byte, resultPath string) {
	if srv.isClosing() {
		if d, ok := srv.end(s, completed(), stateProcessing); ok && d.receiver() != nil {
			d.receiver().send(protocol.ProcessComplete{SessionID: s.id, Result: result})
		}
		return // or aborted by the client, or cancelled by the shutdown
	}
	d, ok := s.markProcessed(resultPath)
	if !ok {
		return // aborted by the client, or cancelled by a shutdown
	}
	// Before the result is sent: a new session with the id of s, which
	// creates its spool in the same directory, replaces s only once this
	// is done.
	srv.dropSpool(s)
	d.cancel(nil)
	if c := d.receiver(); c != nil {
		srv.countEnd(s, completed(), srv.reg.count())
		c.send(protocol.ProcessComplete{SessionID: s.id, Result: result})
		return
	}
	s.log.Info("processing complete while no client waits for the result; keeping the session to resume", "keep_for", srv.cfg.ResumeGrace, "result", resultPath)
	srv.limitHeld(d.host)
}

// sendStoredResult ends s, processed, with the result read back from its
// result.json, sent on c, the connection that resumed s and asked for it.
func (srv *Server) sendStoredResult(s *session, c *conn) {
	s.mu.Lock()
	path := s.result
	s.mu.Unlock()
	result, err := os.ReadFile(path)
	if err != nil {
		msg := fmt.Sprintf("cannot read the stored result of session %s: %v (check the output directory)", s.id, err)
		if srv.finish(s, failure("internal_error", "error %s: %s", protocol.CodeInternalError, msg), stateProcessed) {
			c.sendError(s, protocol.CodeInternalError, msg, false)
			c.closeWith(closeCodeFor(protocol.CodeInternalError), string(protocol.CodeInternalError))
		}
		return
	}
	if srv.finish(s, completed(), stateProcessed) {
		c.send(protocol.ProcessComplete{SessionID: s.id, Result: result})
	}
}

// processFailed records in dir (if dir is not "") why the run of s
// failed, in failure.json beside whatever the run wrote: the phrase keeps
// its directory and key and is listed as failed. It tells the client if
// one is attached, and keeps s with its spool as a disconnected session
// for the resume grace period: a client that resumes it and sends
// session_end and the signal again retries the processing in the same
// directory. A session without frames has nothing to keep, and one whose
// processing a shutdown cancelled nobody to keep it for: they end, and a
// cancelled run's directory is removed, since the phrase did not fail.
func (srv *Server) processFailed(s *session, dir string, err error) {
	if dir != "" && srv.isClosing() {
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			s.log.Warn("cannot remove the artifacts of a cancelled run", "path", dir, "err", rmErr)
		}
		srv.forget(s, filepath.Base(dir))
	} else if dir != "" {
		if werr := writeFailure(dir, err); werr != nil {
			s.log.Warn("cannot record the failure in the artifact directory", "path", dir, "err", werr)
		}
		srv.publish(srv.ctx, s, dir)
	}
	if s.spool.Count() == 0 || srv.isClosing() {
		d, ok := srv.end(s, failure("processing_failed", "processing failed: %v", err), stateProcessing)
		if c := d.conn; ok && c != nil {
			c.sendError(s, protocol.CodeProcessingFailed, err.Error(), false)
			c.closeWith(closeCodeFor(protocol.CodeProcessingFailed), string(protocol.CodeProcessingFailed))
		}
		return
	}
	d, parkErr, ok := s.failProcessing(err.Error(), srv.reg)
	if !ok {
		return // aborted by the client, who is not waiting for an answer
	}
	frames := s.spool.Count()
	d.cancel(nil)
	if parkErr != nil {
		s.log.Warn("cannot flush the spool of a session whose processing failed", "err", parkErr)
	}
	s.log.Warn("processing failed; keeping the session and its frames to resume and retry", "err", err, "frames", frames, "keep_for", srv.cfg.ResumeGrace)
	srv.limitHeld(d.host)
	if c := d.conn; c != nil {
		c.sendError(s, protocol.CodeProcessingFailed, fmt.Sprintf("%v; the server keeps the session's %d frames for %s: resume the session (with its resume token) and send session_end and the signal again to retry", err, frames, srv.cfg.ResumeGrace), false)
		c.closeWith(closeCodeFor(protocol.CodeProcessingFailed), string(protocol.CodeProcessingFailed))
	}
}

// analyzerWith returns the name and the analyzers of a streamed session's
// job: the configured analyzer, wrapped so that its verdict carries the
// session's validation v, which the result then has as "validation".
func (srv *Server) analyzerWith(v protocol.Validation) (string, map[string]pipeline.Analyzer) {
	name := srv.cfg.Analyzer
	a := srv.cfg.Analyzers[name]
	if a == nil {
		a = pipeline.SignalAnalyzer{} // Config.withDefaults admits no other name without an entry
	}
	return name, map[string]pipeline.Analyzer{name: withValidation{a, v}}
}

// withValidation is an analyzer whose verdict also carries a session's
// validation in its Extra, under "validation".
type withValidation struct {
	pipeline.Analyzer
	v protocol.Validation
}

// Analyze implements pipeline.Analyzer.
func (w withValidation) Analyze(ctx context.Context, in pipeline.AnalysisInput, progress func(float64, string)) (pipeline.Verdict, error) {
	verdict, err := w.Analyzer.Analyze(ctx, in, progress)
	if err != nil {
		return verdict, err
	}
	extra := maps.Clone(verdict.Extra)
	if extra == nil {
		extra = map[string]any{}
	}
	extra["validation"] = w.v
	verdict.Extra = extra
	return verdict, nil
}

// listFrames writes frame numbers for a person: the first ten, then how
// many more.
func listFrames(numbers []int) string {
	const shown = 10
	parts := make([]string, 0, shown+1)
	for i, n := range numbers {
		if i == shown {
			parts = append(parts, fmt.Sprintf("and %d more", len(numbers)-shown))
			break
		}
		parts = append(parts, strconv.Itoa(n))
	}
	return "frames " + strings.Join(parts, ", ")
}

// progressForwarder sends the pipeline's progress as process_progress
// messages to the connection that takes them at the time, at most one per
// progressInterval and stage besides each stage's first and last.
type progressForwarder struct {
	s *session

	mu    sync.Mutex
	stage string
	last  time.Time
}

func (p *progressForwarder) report(stage string, progress float64, message string) {
	progress = min(max(progress, 0), 1)
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if stage == p.stage && progress < 1 && now.Sub(p.last) < progressInterval {
		return
	}
	p.stage, p.last = stage, now
	p.s.log.Debug("processing", "stage", stage, "progress", roundTo(progress, 3), "message", message)
	if c := p.s.receiver(); c != nil {
		c.send(protocol.ProcessProgress{SessionID: p.s.id, Stage: stage, Progress: progress, Message: message})
	}
}

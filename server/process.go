package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
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
// or the client aborts.
func (srv *Server) startProcessing(s *session, c *conn) {
	ctx, cancel := context.WithCancelCause(srv.ctx)
	s.mu.Lock()
	if s.state != stateStreaming {
		s.mu.Unlock()
		cancel(nil)
		return
	}
	s.state, s.cancel = stateProcessing, cancel
	signalBytes := len(s.signal)
	s.mu.Unlock()
	s.log.Info("signal received, starting processing", "frames", s.spool.Count(), "signal_bytes", signalBytes)
	c.send(protocol.ProcessStart{SessionID: s.id})
	if !srv.goProcessing(func() { srv.process(ctx, s, c) }) {
		srv.finish(s, failure("shutdown", "server shutting down before processing"), stateProcessing)
	}
}

// process runs the pipeline for s and answers on c with the progress and
// the result, or the error.
func (srv *Server) process(ctx context.Context, s *session, c *conn) {
	if s.spool.Count() == 0 {
		srv.processFailed(s, c, "", errors.New("no frames were received: nothing to reconstruct"))
		return
	}
	select {
	case srv.workers <- struct{}{}:
		defer func() { <-srv.workers }()
	case <-ctx.Done():
		srv.processFailed(s, c, "", context.Cause(ctx))
		return
	}
	dir := filepath.Join(srv.cfg.OutputDir, s.id)
	if err := keepEarlierArtifacts(dir, s.log); err != nil {
		srv.processFailed(s, c, "", err)
		return
	}
	s.mu.Lock()
	sig := s.signal
	s.mu.Unlock()
	fwd := &progressForwarder{c: c, id: s.id, log: s.log}
	began := time.Now()
	res, err := pipeline.Run(ctx, pipeline.Job{
		SessionID:      s.id,
		FPS:            s.start.FPS,
		Width:          s.start.Width,
		Height:         s.start.Height,
		Frames:         s.spool,
		Signal:         sig,
		ArtifactDir:    dir,
		Analyzer:       srv.cfg.Analyzer,
		Analyzers:      srv.cfg.Analyzers,
		VideoFormat:    srv.cfg.VideoFormat,
		StreamingStats: s.stats(time.Now()),
	}, fwd.report)
	srv.metrics.processing.Observe(time.Since(began).Seconds())
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, cause)
		}
		srv.processFailed(s, c, dir, err)
		return
	}
	result, err := json.Marshal(res)
	if err != nil {
		srv.processFailed(s, c, dir, fmt.Errorf("encode the result: %w", err))
		return
	}
	s.log.Info("processing complete", "winner", res.Winner, "frames", res.Video.Frames, "wall_time_s", roundTo(res.WallTimeSeconds, 3), "artifact_dir", res.ArtifactDir)
	if srv.finish(s, completed(), stateProcessing) {
		c.send(protocol.ProcessComplete{SessionID: s.id, Result: result})
	}
}

// processFailed ends s with err, removes what the failed run left in dir
// (if dir is not ""), and tells the client if it is still there.
func (srv *Server) processFailed(s *session, c *conn, dir string, err error) {
	if dir != "" {
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			s.log.Warn("cannot remove the artifacts of a failed run", "path", dir, "err", rmErr)
		}
	}
	if !srv.finish(s, failure("processing_failed", "processing failed: %v", err), stateProcessing) {
		return // aborted by the client, who is not waiting for an answer
	}
	c.sendError(s, protocol.CodeProcessingFailed, err.Error(), false)
	c.closeWith(closeCodeFor(protocol.CodeProcessingFailed), string(protocol.CodeProcessingFailed))
}

// keepEarlierArtifacts moves the artifact directory an earlier session with
// the same id left at dir to dir.1 (or the first free dir.N), so that a new
// run never mixes with nor overwrites an earlier phrase. Capture clients
// often reuse one session id for every phrase.
func keepEarlierArtifacts(dir string, log *slog.Logger) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	for i := 1; ; i++ {
		to := fmt.Sprintf("%s.%d", dir, i)
		if _, err := os.Lstat(to); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.Rename(dir, to); err != nil {
			return fmt.Errorf("keep the artifacts of an earlier session with the same id: %w", err)
		}
		log.Info("kept the artifacts of an earlier session with the same id", "moved_to", to)
		return nil
	}
}

// progressForwarder sends the pipeline's progress as process_progress
// messages, at most one per progressInterval and stage besides each
// stage's first and last.
type progressForwarder struct {
	c   *conn
	id  string
	log *slog.Logger

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
	p.log.Debug("processing", "stage", stage, "progress", roundTo(progress, 3), "message", message)
	p.c.send(protocol.ProcessProgress{SessionID: p.id, Stage: stage, Progress: progress, Message: message})
}

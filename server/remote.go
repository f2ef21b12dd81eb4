package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/atomicfile"
	"github.com/referee-project/referee/pipeline/jobs"
	"github.com/referee-project/referee/protocol"
)

// processRemote processes s through the cluster's job queue: it rebuilds
// the video here into dir (stage video_reconstruction, as in place),
// submits it with the signal, gives the processing place back (release)
// once the job is queued, relays the worker's progress, and takes the
// worker's artifacts and result into dir. The result reads as if analysed
// here: its paths are dir's and it carries the session's validation v.
// Ending ctx (a shutdown) stops the waiting, never the job: its result
// stays in the cluster.
func (srv *Server) processRemote(ctx context.Context, s *session, dir string, v protocol.Validation, sig []byte, fwd *progressForwarder, release func()) {
	began := time.Now()
	video, _, err := pipeline.Reconstruct(ctx, pipeline.Job{
		SessionID:   s.id,
		FPS:         s.start.FPS,
		Width:       s.start.Width,
		Height:      s.start.Height,
		Frames:      s.spool,
		ArtifactDir: dir,
		VideoFormat: srv.cfg.VideoFormat,
	}, func(p float64, msg string) { fwd.report(protocol.StageVideoReconstruction, p, msg) })
	if err != nil {
		srv.processFailed(s, dir, err)
		return
	}
	sigPath := filepath.Join(dir, pipeline.SignalFileName)
	if err := os.WriteFile(sigPath, sig, 0o644); err != nil {
		srv.processFailed(s, dir, fmt.Errorf("save the signal: %w", err))
		return
	}
	validation, err := json.Marshal(v)
	if err != nil {
		srv.processFailed(s, dir, fmt.Errorf("encode the validation: %w", err))
		return
	}
	stats, err := json.Marshal(s.stats(time.Now()))
	if err != nil {
		srv.processFailed(s, dir, fmt.Errorf("encode the streaming stats: %w", err))
		return
	}
	s.mu.Lock()
	key := s.key
	s.mu.Unlock()
	spec := jobs.Spec{
		Key:            key,
		SessionID:      s.id,
		Analyzer:       srv.cfg.Analyzer,
		Video:          filepath.Base(video),
		Extra:          map[string]json.RawMessage{"validation": validation},
		StreamingStats: stats,
	}
	inputs := map[string]string{spec.Video: video, jobs.SignalFile: sigPath}
	key, err = srv.cfg.Jobs.Submit(ctx, spec, inputs, func(reason string) {
		s.log.Warn("waiting to submit the phrase", "reason", reason)
		fwd.report(protocol.StageAnalysis, 0, reason)
	})
	release()
	if err != nil {
		srv.processFailed(s, dir, fmt.Errorf("submit the phrase to the analysis cluster: %w", err))
		return
	}
	s.log.Info("phrase submitted to the analysis cluster", "phrase", key, "analyzer", spec.Analyzer)
	if err := atomicfile.WriteFile(filepath.Join(s.dir, jobKeyFile), []byte(key), 0o644); err != nil {
		s.log.Warn("cannot save the phrase key beside the spool: a restart would submit the phrase again", "phrase", key, "err", err)
	}
	srv.awaitRemote(ctx, s, dir, key, began, fwd)
}

// jobKeyFile, in a session's spool directory, holds the phrase key its job
// was submitted under, so that a node restarted while the job runs waits
// for that job when the client resumes instead of submitting the phrase
// again.
const jobKeyFile = "job.key"

// submittedKey is the phrase key s was submitted under before a restart,
// or "".
func (srv *Server) submittedKey(s *session) string {
	data, err := os.ReadFile(filepath.Join(s.dir, jobKeyFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// awaitRemote waits for the job of s, submitted under key, and ends the
// processing of s with its result or its failure. A failed phrase forgets
// its key, so that a retry submits it anew. Cut by a shutdown, s is kept
// on disk with its key (parkRemote).
func (srv *Server) awaitRemote(ctx context.Context, s *session, dir, key string, began time.Time, fwd *progressForwarder) {
	out, err := srv.cfg.Jobs.Wait(ctx, key, dir, fwd.report)
	srv.metrics.processing.Observe(time.Since(began).Seconds())
	var failed *jobs.FailedError
	if err != nil && srv.isClosing() && !errors.As(err, &failed) {
		srv.parkRemote(s, key)
		return
	}
	if err != nil {
		if rmErr := os.Remove(filepath.Join(s.dir, jobKeyFile)); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
			s.log.Warn("cannot forget the phrase key of a failed job", "phrase", key, "err", rmErr)
		}
		srv.processFailed(s, dir, err)
		return
	}
	var res pipeline.Result
	if err := json.Unmarshal(out.Result, &res); err != nil {
		srv.processFailed(s, dir, fmt.Errorf("read the result of phrase %s from worker %s: %w", key, out.Worker, err))
		return
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		srv.processFailed(s, dir, fmt.Errorf("artifact directory %s: %w", dir, err))
		return
	}
	res.Relocate(abs)
	// The worker does not know when the session began; the list sorts by it.
	res.StartedAt = s.created.UTC().Format(time.RFC3339Nano)
	if err := pipeline.WriteResult(res.Artifacts.ResultJSON, &res); err != nil {
		srv.processFailed(s, dir, err)
		return
	}
	result, err := json.Marshal(&res)
	if err != nil {
		srv.processFailed(s, dir, fmt.Errorf("encode the result: %w", err))
		return
	}
	// Before the client hears: once it has the result, every node lists it.
	srv.publish(ctx, s, dir)
	s.log.Info("processing complete", "phrase", key, "worker", out.Worker, "winner", res.Winner, "frames", res.Video.Frames, "wall_time_s", roundTo(time.Since(began).Seconds(), 3), "artifact_dir", res.ArtifactDir)
	srv.completeProcessing(s, result, res.Artifacts.ResultJSON)
}

// parkRemote keeps s, whose job goes on in the cluster, on disk for the
// next start as a shutdown keeps a disconnected session, and closes its
// connection with 1001 "server shutting down" so that its client resumes:
// once the server is back, the client's session_end and signal wait for
// the same job (submittedKey).
func (srv *Server) parkRemote(s *session, key string) {
	d, ok := s.stopProcessing()
	if !ok {
		return
	}
	c := d.conn
	if d.cancel != nil {
		d.cancel(nil)
	}
	srv.suspend(s, "server shutting down while the phrase is analysed in the cluster (phrase "+key+"); the next start waits for the same job")
	if c != nil {
		c.closeWith(closeGoingAway, errShutdown.text)
	}
}

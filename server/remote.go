package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/referee-project/referee/pipeline"
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
	spec := jobs.Spec{
		SessionID:      s.id,
		Analyzer:       srv.cfg.Analyzer,
		Video:          filepath.Base(video),
		Extra:          map[string]json.RawMessage{"validation": validation},
		StreamingStats: stats,
	}
	inputs := map[string]string{spec.Video: video, jobs.SignalFile: sigPath}
	key, err := srv.cfg.Jobs.Submit(ctx, spec, inputs, func(reason string) {
		s.log.Warn("waiting to submit the phrase", "reason", reason)
		fwd.report(protocol.StageAnalysis, 0, reason)
	})
	release()
	if err != nil {
		srv.processFailed(s, dir, fmt.Errorf("submit the phrase to the analysis cluster: %w", err))
		return
	}
	s.log.Info("phrase submitted to the analysis cluster", "phrase", key, "analyzer", spec.Analyzer)
	out, err := srv.cfg.Jobs.Wait(ctx, key, dir, fwd.report)
	srv.metrics.processing.Observe(time.Since(began).Seconds())
	if err != nil {
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
	if err := pipeline.WriteResult(res.Artifacts.ResultJSON, &res); err != nil {
		srv.processFailed(s, dir, err)
		return
	}
	result, err := json.Marshal(&res)
	if err != nil {
		srv.processFailed(s, dir, fmt.Errorf("encode the result: %w", err))
		return
	}
	s.log.Info("processing complete", "phrase", key, "worker", out.Worker, "winner", res.Winner, "frames", res.Video.Frames, "wall_time_s", roundTo(time.Since(began).Seconds(), 3), "artifact_dir", res.ArtifactDir)
	srv.completeProcessing(s, result, res.Artifacts.ResultJSON)
}

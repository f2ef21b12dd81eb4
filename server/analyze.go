package server

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/protocol"
)

// Multipart field names of POST /analyze.
const (
	FieldVideo  = "video"
	FieldSignal = "signal"
)

// httpError is a failed POST /analyze: the status and the protocol error
// code and message of its JSON body.
type httpError struct {
	status int
	code   protocol.ErrorCode
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) *httpError {
	return &httpError{http.StatusBadRequest, protocol.CodeInvalidMessage, fmt.Sprintf(format, args...)}
}

// bodyError classifies a failure to read the request body.
func (s *Server) bodyError(what string, err error) *httpError {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return &httpError{http.StatusRequestEntityTooLarge, protocol.CodeLimitExceeded, fmt.Sprintf("the upload is over the %d-byte limit", mbe.Limit)}
	case errors.As(err, &ne) && ne.Timeout():
		return &httpError{http.StatusRequestTimeout, protocol.CodeLimitExceeded, fmt.Sprintf("the upload was not received within %s (upload timeout): send it over a faster link, or ask for a longer --upload-timeout", s.cfg.UploadTimeout)}
	}
	return badRequest("read the %s: %v", what, err)
}

// admitUpload counts one more upload from host, unless the server or host
// has as many as it may; the refusal says which limit.
func (s *Server) admitUpload(host string) *httpError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.uploadN; n >= s.cfg.MaxUploads {
		return &httpError{http.StatusServiceUnavailable, protocol.CodeLimitExceeded, fmt.Sprintf("too many uploads at once: %d in progress, the limit is %d (max uploads); try again later", n, s.cfg.MaxUploads)}
	}
	if n := s.uploads[host]; n >= s.cfg.MaxUploadsPerAddr {
		return &httpError{http.StatusTooManyRequests, protocol.CodeLimitExceeded, fmt.Sprintf("too many uploads from %s: %d in progress, the limit is %d (max uploads per address); wait for one to finish", host, n, s.cfg.MaxUploadsPerAddr)}
	}
	s.uploadN++
	s.uploads[host]++
	return nil
}

// leaveUpload uncounts an upload from host.
func (s *Server) leaveUpload(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uploadN--
	if s.uploads[host]--; s.uploads[host] <= 0 {
		delete(s.uploads, host)
	}
}

// handleAnalyze is POST /analyze: a multipart upload of a whole video
// (field "video") and its phrase log (field "signal"). Both are saved in a
// new session's artifact directory and processed like a streamed session;
// the answer is the same result JSON. Failures answer with a JSON error
// message (protocol.Error): 400 for a missing or invalid field, 413 for an
// upload over the limit, 422 when processing fails. A refused upload
// leaves no artifact directory; a phrase whose processing failed (422)
// keeps its directory with failure.json, as a streamed one does.
func (s *Server) handleAnalyze(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		s.writeError(w, nil, &httpError{http.StatusServiceUnavailable, protocol.CodeInternalError, "the server is shutting down"})
		return
	}
	defer s.wg.Done()
	host := remoteHost(r.RemoteAddr)
	if herr := s.admitUpload(host); herr != nil {
		s.refusals.log(s.log, slog.LevelWarn, "upload", "refused an upload", "remote", r.RemoteAddr, "status", herr.status, "message", herr.msg)
		s.metrics.refused.WithLabelValues("upload").Inc()
		w.Header().Set("Retry-After", "10")
		w.Header().Set("Connection", "close") // the body is not read
		s.writeError(w, nil, herr)
		return
	}
	defer s.leaveUpload(host)
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(s.cfg.UploadTimeout))
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes)

	id, dir, err := s.newUploadDir()
	if err != nil {
		s.log.Error("cannot create an artifact directory for an upload", "err", err)
		s.writeError(w, nil, &httpError{http.StatusInternalServerError, protocol.CodeInternalError, err.Error()})
		return
	}
	defer s.reg.releaseUpload(id)
	log := s.log.With("session_id", id, "remote", r.RemoteAddr)
	res, herr := s.analyzeUpload(r, id, dir, log)
	rc.SetWriteDeadline(time.Now().Add(writeWait))
	if herr != nil {
		// A phrase whose processing failed (422) keeps its directory with
		// failure.json; a refused upload is no phrase.
		if herr.status == http.StatusUnprocessableEntity {
			log.Info("kept the failed phrase's directory", "path", dir)
		} else if err := os.RemoveAll(dir); err != nil {
			log.Warn("cannot remove the artifacts of a failed upload", "path", dir, "err", err)
		}
		log.Warn("analysis failed", "status", herr.status, "code", herr.code, "message", herr.msg)
		s.writeError(w, &id, herr)
		return
	}
	log.Info("analysis complete", "winner", res.Winner, "frames", res.Video.Frames, "wall_time_s", roundTo(res.WallTimeSeconds, 3), "artifact_dir", res.ArtifactDir)
	writeJSON(w, http.StatusOK, res)
}

// newUploadDir reserves an id for a new upload in the registry and creates
// its artifact directory; the caller releases the id when the upload ends.
// An id whose directory an earlier phrase left is passed over.
func (s *Server) newUploadDir() (id, dir string, err error) {
	for {
		id = s.reg.reserveUpload()
		dir = filepath.Join(s.cfg.OutputDir, id)
		err = os.Mkdir(dir, 0o755)
		if !errors.Is(err, fs.ErrExist) {
			if err != nil {
				s.reg.releaseUpload(id)
			}
			return id, dir, err
		}
	}
}

func (s *Server) analyzeUpload(r *http.Request, id, dir string, log *slog.Logger) (*pipeline.Result, *httpError) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, badRequest("expected a multipart/form-data upload with the fields %q and %q: %v", FieldVideo, FieldSignal, err)
	}
	var videoPath, signalName string
	var videoBytes int64
	var sig []byte
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, s.bodyError("upload", err)
		}
		switch part.FormName() {
		case FieldVideo:
			if videoPath != "" {
				return nil, badRequest("more than one %q field", FieldVideo)
			}
			videoPath = filepath.Join(dir, "video"+safeExt(part.FileName()))
			if videoBytes, err = saveFile(videoPath, part); err != nil {
				return nil, s.bodyError("video", err)
			}
			if videoBytes == 0 {
				return nil, badRequest("the %q field is empty", FieldVideo)
			}
		case FieldSignal:
			if sig != nil {
				return nil, badRequest("more than one %q field", FieldSignal)
			}
			signalName = part.FileName()
			if sig, err = io.ReadAll(io.LimitReader(part, s.cfg.MaxSignalBytes+1)); err != nil {
				return nil, s.bodyError("signal", err)
			}
			if int64(len(sig)) > s.cfg.MaxSignalBytes {
				return nil, badRequest("the signal is over the %d-byte limit (a phrase log is a few KiB: is this the video?)", s.cfg.MaxSignalBytes)
			}
		default:
			if _, err := io.Copy(io.Discard, part); err != nil {
				return nil, s.bodyError("upload", err)
			}
		}
	}
	switch {
	case videoPath == "":
		return nil, badRequest("missing the %q field (the video file)", FieldVideo)
	case sig == nil:
		return nil, badRequest("missing the %q field (the phrase log)", FieldSignal)
	}
	if _, err := signal.Parse(sig); err != nil {
		return nil, badRequest("signal %q rejected: %v", clip(signalName), err)
	}
	log.Info("analysis upload received", "video_bytes", videoBytes, "signal_bytes", len(sig))

	release, err := s.workers.acquire(r.Context(), true)
	var qf *queueFullError
	switch {
	case errors.As(err, &qf):
		return nil, &httpError{http.StatusServiceUnavailable, protocol.CodeLimitExceeded, qf.Error()}
	case err != nil:
		return nil, &httpError{http.StatusServiceUnavailable, protocol.CodeInternalError, "the server is shutting down"}
	}
	defer release()
	res, err := pipeline.Run(r.Context(), pipeline.Job{
		SessionID:   id,
		VideoPath:   videoPath,
		Signal:      sig,
		ArtifactDir: dir,
		Analyzer:    s.cfg.Analyzer,
		Analyzers:   s.cfg.Analyzers,
		StartedAt:   time.Now(),
	}, nil)
	if err != nil {
		if r.Context().Err() != nil {
			return nil, &httpError{http.StatusServiceUnavailable, protocol.CodeProcessingFailed, "processing cancelled: the server is shutting down"}
		}
		// The phrase failed: it keeps its directory, with why, and is
		// listed as failed.
		if werr := writeFailure(dir, err); werr != nil {
			log.Warn("cannot record the failure in the artifact directory", "path", dir, "err", werr)
		}
		return nil, &httpError{http.StatusUnprocessableEntity, protocol.CodeProcessingFailed, err.Error()}
	}
	return res, nil
}

// extPattern is the shape of a file name extension kept for an uploaded
// video; the extension helps the demuxer, anything else is dropped.
var extPattern = regexp.MustCompile(`^\.[a-z0-9]{1,5}$`)

func safeExt(name string) string {
	ext := strings.ToLower(filepath.Ext(name))
	if extPattern.MatchString(ext) {
		return ext
	}
	return ""
}

// saveFile writes r to a new file at path.
func saveFile(path string, r io.Reader) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// writeError answers with a protocol error message as the JSON body and
// counts it.
func (s *Server) writeError(w http.ResponseWriter, id *string, e *httpError) {
	s.metrics.errors.WithLabelValues(string(e.code)).Inc()
	writeError(w, id, e)
}

// writeError answers with a protocol error message as the JSON body.
func writeError(w http.ResponseWriter, id *string, e *httpError) {
	body, err := protocol.Encode(protocol.Error{SessionID: id, ErrorCode: e.code, ErrorMessage: e.msg, Recoverable: false})
	if err != nil {
		http.Error(w, e.msg, e.status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	w.Write(append(body, '\n'))
}

package server

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/referee-project/referee/pipeline/atomicfile"
	"github.com/referee-project/referee/protocol"
)

// Files of a session's spool directory, DataDir/spool/<id>.
const (
	spoolFileName = "frames.spool"
	metaFileName  = "session.json"
)

// sessionMeta is session.json: what a restarted server needs, besides the
// frames, to recover a session. It is written once, at session start.
type sessionMeta struct {
	SessionID      string  `json:"session_id"`
	FPS            float64 `json:"fps"`
	Width          int     `json:"width"`
	Height         int     `json:"height"`
	ExpectedFrames int     `json:"expected_frames"`
	Protocol       string  `json:"protocol"`
	// ResumeToken is the session's resume token, so that its client can
	// resume it after a restart. A spool of an older server has none: its
	// session is recovered but cannot be resumed.
	ResumeToken string `json:"resume_token,omitempty"`
	// Host is the remote address of the client that started the session,
	// so that after a restart its rerun may replace it (see
	// registry.replaceableBy).
	Host string `json:"host,omitempty"`
}

// writeMeta writes session.json in dir with atomicfile.WriteFile: a crash
// leaves no session.json or all of it, never part of one (at most a
// temporary file beside it, which recovery ignores), and once it returns
// nil the file and its name in dir are on disk. dir's own name in the spool
// directory is not: registry.create syncs that next.
func writeMeta(dir string, m sessionMeta) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, metaFileName), data, 0o600)
}

// readMeta reads and checks the session.json of the session directory dir;
// maxPixels is Config.MaxFramePixels.
func readMeta(dir string, maxPixels int64) (sessionMeta, error) {
	var m sessionMeta
	data, err := os.ReadFile(filepath.Join(dir, metaFileName))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%s: %w", metaFileName, err)
	}
	start := protocol.SessionStart{SessionID: m.SessionID, FPS: m.FPS, Width: m.Width, Height: m.Height, ExpectedFrames: m.ExpectedFrames}
	if msg := checkStart(start, maxPixels); msg != "" || m.SessionID != filepath.Base(dir) {
		return m, fmt.Errorf("%s does not describe session %s: %s", metaFileName, filepath.Base(dir), msg)
	}
	return m, nil
}

// recoverSessions scans the spool directory at start and keeps every
// session it can read as disconnected, for the resume grace period. A
// spool cut off mid-write is truncated to its last whole record, and a
// damaged record before it is left out (and logged). Only the frames of a
// session_ended, and those of the sessions a shutdown kept, were fsynced:
// after a power cut, later frames may be missing, as a resume's "have"
// then says. A directory whose session.json is missing, empty or invalid
// cannot be resumed: when its spool holds frames it is moved to
// DataDir/unrecovered, for a person to look at, otherwise removed; so is
// one whose spool cannot be read. A crash alone leaves no such spool with
// frames: registry.create has session.json and both names on disk before
// the session takes its first frame, and a crash before that leaves an
// empty spool, or none, without session.json.
func (srv *Server) recoverSessions() {
	root := filepath.Join(srv.cfg.DataDir, "spool")
	entries, err := os.ReadDir(root)
	if err != nil {
		srv.log.Warn("cannot read the spool directory: no session recovered", "dir", root, "err", err)
		return
	}
	now := time.Now()
	for _, e := range entries {
		id, dir := e.Name(), filepath.Join(root, e.Name())
		log := srv.log.With("session_id", id)
		if !e.IsDir() || !protocol.ValidSessionID(id) {
			log.Warn("ignored an entry of the spool directory that is not a session", "path", dir)
			continue
		}
		meta, err := readMeta(dir, srv.cfg.MaxFramePixels)
		if err != nil {
			srv.unrecoverable(log, dir, err)
			continue
		}
		if meta.Protocol != protocol.V2 {
			meta.Protocol = protocol.V1
		}
		sp, cut, damaged, err := openSpool(filepath.Join(dir, spoolFileName), srv.reg.disk)
		if err != nil {
			log.Warn("cannot recover a session: removed its spool", "path", dir, "err", err)
			if err := os.RemoveAll(dir); err != nil {
				log.Warn("cannot remove the spool", "path", dir, "err", err)
			}
			continue
		}
		for _, d := range damaged {
			log.Warn("dropped a damaged record from a recovered spool", "frame", d.frame, "offset", d.offset, "bytes", d.bytes, "why", d.why, "path", sp.path)
		}
		if cut > 0 {
			log.Warn("truncated a spool cut off mid-write to its last whole frame", "cut_bytes", cut, "frames", sp.Count(), "path", sp.path)
		}
		s := &session{
			id:           id,
			log:          log,
			start:        protocol.SessionStart{SessionID: id, FPS: meta.FPS, Width: meta.Width, Height: meta.Height, ExpectedFrames: meta.ExpectedFrames},
			protocol:     meta.Protocol,
			created:      now,
			dir:          dir,
			spool:        sp,
			token:        meta.ResumeToken,
			host:         meta.Host,
			state:        stateDisconnected,
			disconnected: now,
			lastActivity: now,
			maxNumber:    -1,
			gapsBelow:    -1,
		}
		if numbers := sp.Numbers(); len(numbers) > 0 {
			s.maxNumber = numbers[len(numbers)-1]
		}
		srv.reg.mu.Lock()
		srv.reg.sessions[id] = s
		srv.reg.mu.Unlock()
		log.Info("recovered session", "frames", sp.Count(), "spool_bytes", sp.Size(), "keep_for", srv.cfg.ResumeGrace)
	}
}

// unrecoverable handles the spool directory dir, whose session.json could
// not be read (err): a spool with frames is moved to DataDir/unrecovered,
// so that the server deletes no frame it acknowledged; anything else is
// removed. The move is then synced in DataDir/unrecovered, DataDir and the
// spool directory: once those syncs succeed, a power cut leaves the spool
// moved.
func (srv *Server) unrecoverable(log *slog.Logger, dir string, err error) {
	info, serr := os.Stat(filepath.Join(dir, spoolFileName))
	if serr != nil || info.Size() == 0 {
		log.Warn("cannot recover a session: removed its spool", "path", dir, "err", err)
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("cannot remove the spool", "path", dir, "err", err)
		}
		return
	}
	aside := filepath.Join(srv.cfg.DataDir, "unrecovered")
	to := filepath.Join(aside, filepath.Base(dir))
	for i := 1; ; i++ {
		if _, err := os.Lstat(to); errors.Is(err, fs.ErrNotExist) {
			break
		}
		to = fmt.Sprintf("%s.%d", filepath.Join(aside, filepath.Base(dir)), i)
	}
	merr := os.MkdirAll(aside, 0o700)
	if merr == nil {
		merr = os.Rename(dir, to)
	}
	if merr != nil {
		log.Error("cannot recover a session nor move its spool aside: left it in place", "path", dir, "err", err, "move_err", merr)
		return
	}
	for _, d := range []string{aside, srv.cfg.DataDir, filepath.Dir(dir)} {
		if serr := atomicfile.SyncDir(d); serr != nil {
			log.Warn("cannot sync a directory after moving a spool aside", "path", d, "err", serr)
		}
	}
	log.Warn("cannot recover a session: moved its spool aside, the frames are kept", "moved_to", to, "spool_bytes", info.Size(), "err", err)
}

// resume attaches c to the session it asks to resume and returns it, with
// the state it was in, or nil when there is no such session (the caller
// starts a new one). The resume must present the session's token: without
// it, or with another, it is refused and the session is left as it was. A
// session still streaming on another connection, one
// the server has not yet noticed is dead, is taken over: that connection
// is closed. So is a session being processed, or processed and waiting for
// its client (or delivered, its result sent on a connection that may have
// been lost before the client read it): c then owes session_end and the
// signal again, which are answered without a second run, before it gets
// the result.
func (r *registry) resume(m protocol.SessionStart, proto string, c *conn) (*session, sessionState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, 0, &startError{protocol.CodeSessionStartFailed, "the server is shutting down"}
	}
	s := r.sessions[m.SessionID]
	if s == nil {
		return nil, 0, nil
	}
	if m.ResumeToken == "" && r.replaceableBy(s, c) {
		return s, stateDisconnected, errReplaceable
	}
	if m.ResumeToken == "" || subtle.ConstantTimeCompare([]byte(m.ResumeToken), []byte(s.token)) != 1 {
		what := "without the session's resume token"
		if m.ResumeToken != "" {
			what = "with a wrong resume token"
		}
		return nil, 0, &startError{protocol.CodeSessionStartFailed, fmt.Sprintf("cannot resume session %s %s: a resume must send the resume_token of the session_started that began the session; the session goes on untouched", s.id, what)}
	}
	if m.FPS != s.start.FPS || m.Width != s.start.Width || m.Height != s.start.Height {
		return nil, 0, &startError{protocol.CodeSessionStartFailed, fmt.Sprintf("cannot resume session %s: it was started at %vfps %dx%d, the resume asks for %vfps %dx%d",
			s.id, s.start.FPS, s.start.Width, s.start.Height, m.FPS, m.Width, m.Height)}
	}
	previous, state, ok := s.resumeBy(c, proto, r)
	if !ok {
		return nil, 0, nil
	}
	if previous != nil && previous != c {
		previous.closeWith(closePolicy, "session "+s.id+" resumed on another connection")
	}
	return s, state, nil
}

// errReplaceable is what resume returns, with the session, for a resume
// without a token of a session that replaceableBy says its caller may
// replace: the caller ends it and starts the session anew.
var errReplaceable = errors.New("a session held for a client that left before processing, resumed without its token from the same address")

// replaceableBy reports whether s, which a session_start of c without a
// resume token names (a rerun that reuses the id, or a resume by a client
// that never read the token), may be replaced by a new session: s has no
// live connection, its phrase has not started processing (it was
// streaming, or waiting for its signal; one whose processing failed keeps
// its frames for a retry) and c comes from the address of the client that
// left it. A stranger elsewhere cannot use this to wipe a held phrase, and
// a session being processed or holding a result is never replaced. The
// caller holds r.mu.
func (r *registry) replaceableBy(s *session, c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateDisconnected && s.conn == nil && s.failed == "" && s.host != "" && s.host == remoteHost(c.remote)
}

// rerunOf returns the session held under id that a session_start of c
// without "resume" replaces (see replaceableBy), or nil.
func (r *registry) rerunOf(id string, c *conn) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.sessions[id]; s != nil && r.replaceableBy(s, c) {
		return s
	}
	return nil
}

// replace ends s, held for a client that left, so that what, a
// session_start of c without a resume token, starts its id afresh: its
// spool and frames are dropped, logged in its "removed session" line. It
// reports whether it did (another path may have ended or resumed s first).
func (srv *Server) replace(s *session, c *conn, what string) bool {
	frames := s.spool.Count()
	return srv.finish(s, failure("replaced", "replaced by %s from the address of the client that left it (%s): starting afresh, its %d frames dropped",
		what, remoteHost(c.remote), frames), stateDisconnected)
}

// detach handles the end of connection c for its session s: processing goes
// on without it; a session still streaming is kept for the resume grace
// period, or on disk for the next start when the server is shutting down.
// A session being processed is kept until its processing ends and then for
// the grace period, so that its client can resume it for the result.
func (srv *Server) detach(s *session, c *conn, reason string) {
	closing := srv.isClosing()
	state, d, parkErr, ok := s.disconnect(c, closing, srv.reg)
	if !ok {
		return
	}
	host := d.host
	switch {
	case state == stateProcessing:
		s.log.Info("connection lost during processing", "reason", fmt.Sprintf("%s; keeping the session until processing ends, then for %s to resume", reason, srv.cfg.ResumeGrace))
	case state == stateProcessed:
		s.log.Info("connection lost before the stored result was sent", "reason", fmt.Sprintf("%s; keeping the session for %s to resume", reason, srv.cfg.ResumeGrace))
		srv.limitHeld(host)
	case state != stateStreaming:
	case closing:
		srv.suspend(s, reason)
	default:
		if parkErr != nil {
			s.log.Warn("cannot flush the spool of a disconnected session", "err", parkErr)
		}
		s.log.Info("session disconnected", "reason", fmt.Sprintf("%s; keeping the session for %s to resume", reason, srv.cfg.ResumeGrace),
			"frames", s.spool.Count())
		srv.limitHeld(host)
	}
}

// suspend ends s without deleting its spool, when the server stops: the
// next start on the same data directory recovers it.
func (srv *Server) suspend(s *session, reason string) {
	if _, ok := s.finishFrom(stateStreaming, stateDisconnected); !ok {
		return
	}
	active := srv.reg.remove(s)
	err := s.spool.Sync()
	if cerr := s.spool.Close(); err == nil {
		err = cerr
	}
	srv.reg.uncountBuffer(s)
	if err != nil {
		s.log.Warn("cannot write the spool of a session kept for recovery", "path", s.spool.path, "err", err)
	}
	s.log.Info("kept session on disk for recovery at the next start", "reason", reason, "frames", s.spool.Count(), "active", active)
}

// isClosing reports whether Shutdown has begun.
func (srv *Server) isClosing() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.closing
}

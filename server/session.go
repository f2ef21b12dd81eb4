package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/referee-project/referee/pipeline/atomicfile"
	"github.com/referee-project/referee/protocol"
)

// session is one streaming session: its parameters, its spool and the
// account of its frames.
//
// Locks, in order: registry.mu, then s.mu; the spool's own lock is never
// taken under either. No file I/O under registry.mu nor s.mu, and no log
// line: the spool's lock is held across disk writes and fsyncs (Append,
// Park, Sync, Close, and the flush of DropUnreadable and Each), so every
// spool call but the lock-free Count runs with s.mu released (a change of
// state decides under s.mu, then parks or drops the spool), and so does
// every read and write of session.json, result.json and the artifact
// directory. registry.mu, which every start and resume takes, and under
// which each session's s.mu is taken (liveLocked, dropDeliveredLocked,
// replaceableBy, resumeBy), thus never waits on the disk.
type session struct {
	id       string
	log      *slog.Logger
	start    protocol.SessionStart
	protocol string // protocol.V1 or protocol.V2
	created  time.Time
	dir      string // the spool directory, DataDir/spool/<id>
	spool    *spool
	// token is the secret a resume must present: given to the client that
	// started the session, kept in session.json, shown nowhere else.
	token string

	// dropSpool makes the spool's removal happen once: when the session
	// is removed, or as soon as processing has put its frames in the video.
	dropSpool sync.Once
	// spoolDropped: dropSpool has returned, the spool directory is gone.
	spoolDropped atomic.Bool
	// bufferCounted: the spool's write buffer is counted in the memory
	// budget (the session is live); parked, it is not.
	bufferCounted atomic.Bool

	mu           sync.Mutex
	conn         *conn  // the connection streaming the session; nil while disconnected
	host         string // the remote host of the connection that started or last resumed it
	state        sessionState
	disconnected time.Time // when the session lost its client, or its processing ended without one
	ackBase      int       // messages before the current connection: v2 acks count from it
	lastActivity time.Time
	messages     int // frame messages received, duplicates and rejected ones included
	duplicates   int
	outOfOrder   int
	maxNumber    int // highest frame number stored; -1 before the first
	gapsBelow    int // maxNumber at the last resume: frames below it fill gaps, they are not out of order
	bytes        int64
	ended        bool // session_end received
	totalFrames  int  // as the client's session_end says
	signal       []byte
	aborted      bool
	failed       string                  // why its last processing failed, while disconnected to be retried
	cancel       context.CancelCauseFunc // stops processing; set in stateProcessing
	// ready: conn takes the processing messages. The connection that sent
	// the last of session_end and the signal does; one that resumes the
	// session after its end does once it has sent them again (replayEnd
	// and replaySignal say which it still owes): a client waits for
	// session_ended and signal_ack before it listens for the result.
	ready        bool
	replayEnd    bool
	replaySignal bool
	result       string // result.json of a processed session
	key          string // the phrase's key: its artifact directory's name, once claimed (claimArtifactDir)
	// delivered: the result of this processed session was sent on a live
	// connection. The session is held only to answer a resume from a
	// client that lost the connection before reading it: it does not count
	// as active, and a new session with its id replaces it.
	delivered atomic.Bool
}

// touch records activity now, which keeps the reaper away.
func (s *session) touch() {
	s.mu.Lock()
	s.lastActivity = time.Now()
	s.mu.Unlock()
}

// attachedTo reports whether c streams s or awaits its result: not once s
// has finished or another connection has resumed it.
func (s *session) attachedTo(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn == c && (s.state == stateStreaming || s.state == stateProcessing || s.state == stateProcessed)
}

// receiver returns the connection that takes the processing messages of s,
// or nil.
func (s *session) receiver() *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ready {
		return nil
	}
	return s.conn
}

// frameResult is what happened to one received frame.
type frameResult struct {
	duplicate bool
	total     int // distinct frames stored
	messages  int // frame messages received on the current connection
}

// addFrame stores one frame in the spool and counts it. The error is a
// failure to store (the disk), which ends the session.
func (s *session) addFrame(number int, encoding string, payload []byte) (frameResult, error) {
	dup, err := s.spool.Append(number, encoding, payload)
	total := s.spool.Count()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastActivity = time.Now()
	s.messages++
	s.bytes += int64(len(payload))
	if err != nil {
		return frameResult{}, err
	}
	switch {
	case dup:
		s.duplicates++
	case number <= s.gapsBelow:
	case number < s.maxNumber:
		s.outOfOrder++
	default:
		s.maxNumber = number
	}
	return frameResult{duplicate: dup, total: total, messages: s.messages - s.ackBase}, nil
}

// countRejected counts a frame message that was refused.
func (s *session) countRejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastActivity = time.Now()
	s.messages++
	return s.messages - s.ackBase
}

// validation is the account of the session's frames for session_ended.
// Missing frames are the numbers below the highest one received (or below
// the client's total_frames) that never arrived. A signal that has not
// arrived yet is not an issue: in the documented flow it comes next.
func (s *session) validation() protocol.Validation {
	count := s.spool.Count()
	s.mu.Lock()
	defer s.mu.Unlock()
	v := protocol.Validation{
		Issues:           []string{},
		FrameCount:       count,
		MissingFrames:    s.missingLocked(count),
		DuplicateFrames:  s.duplicates,
		OutOfOrderFrames: s.outOfOrder,
		HasSignal:        s.signal != nil,
	}
	if count == 0 {
		v.Issues = append(v.Issues, "no frames received")
	}
	if v.MissingFrames > 0 {
		v.Issues = append(v.Issues, fmt.Sprintf("missing frames: %d", v.MissingFrames))
	}
	if v.DuplicateFrames > 0 {
		v.Issues = append(v.Issues, fmt.Sprintf("duplicate frames: %d", v.DuplicateFrames))
	}
	if v.OutOfOrderFrames > 0 {
		v.Issues = append(v.Issues, fmt.Sprintf("out-of-order frames: %d", v.OutOfOrderFrames))
	}
	if s.ended && s.totalFrames != count && s.totalFrames != 0 {
		v.Issues = append(v.Issues, fmt.Sprintf("the client reported %d frames, the server holds %d", s.totalFrames, count))
	}
	v.Valid = len(v.Issues) == 0
	return v
}

func (s *session) missingLocked(count int) int {
	span := s.maxNumber + 1
	if s.ended && s.totalFrames > span {
		span = s.totalFrames
	}
	return max(span-count, 0)
}

// stats is the session's entry in GET /streaming/stats and its result's
// streaming_stats.
func (s *session) stats(now time.Time) protocol.SessionStats {
	var memory int64
	if s.bufferCounted.Load() {
		memory = spoolBufferSize
	}
	count := s.spool.Count()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		memory += connBufferBytes + s.conn.bufBytes.Load()
	}
	return protocol.SessionStats{
		SessionID:           s.id,
		FPS:                 s.start.FPS,
		Width:               s.start.Width,
		Height:              s.start.Height,
		ExpectedFrames:      s.start.ExpectedFrames,
		FramesReceived:      count,
		TotalFramesReceived: s.messages,
		DuplicateFrames:     s.duplicates,
		OutOfOrderFrames:    s.outOfOrder,
		MissingFrames:       s.missingLocked(count),
		HasSignal:           s.signal != nil,
		DurationSeconds:     roundTo(now.Sub(s.created).Seconds(), 3),
		IdleSeconds:         roundTo(now.Sub(s.lastActivity).Seconds(), 3),
		MemoryMB:            megabytes(memory),
		Completed:           s.ended,
		Aborted:             s.aborted,
		Protocol:            s.protocol,
		BytesReceived:       s.bytes,
	}
}

// megabytes converts a byte count to MB (MiB) rounded to 0.001, the figure
// of the logs and the stats.
func megabytes(n int64) float64 { return roundTo(float64(n)/(1<<20), 3) }

func roundTo(x float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(x*p) / p
}

// registry holds the active streaming sessions and enforces the limits on
// them.
type registry struct {
	cfg    Config
	disk   *diskBudget // the bytes of every spool
	memory *memBudget  // the server's, where live sessions count their spool buffers

	mu       sync.Mutex
	sessions map[string]*session
	// uploads are the ids of the POST /analyze uploads being received or
	// processed: one namespace with the sessions', so that a stream never
	// takes an upload's id, nor its artifact directory.
	uploads map[string]struct{}
	// starting are the ids of sessions that create is writing to disk
	// without the lock: taken, and counted by the session limit.
	starting map[string]struct{}
	closed   bool
	phrase   int // the last phrase number of a generated id
}

func newRegistry(cfg Config, memory *memBudget) *registry {
	return &registry{cfg: cfg, disk: &diskBudget{limit: cfg.MaxSpoolBytes}, memory: memory, sessions: make(map[string]*session), uploads: make(map[string]struct{}), starting: make(map[string]struct{})}
}

// startError is a refused session_start: Code and the message for the
// client.
type startError struct {
	code protocol.ErrorCode
	msg  string
}

func (e *startError) Error() string { return e.msg }

// create admits a new session with the client's id, or a generated one
// when id is "", and creates its spool; active is the number of sessions
// with it. It refuses a taken id and a start over the session or memory
// limit. The id is reserved under r.mu, the spool and session.json are
// written without it: a slow disk holds up this start, not every other
// one, nor the stats and the reaper.
func (r *registry) create(id string, start protocol.SessionStart, proto string, c *conn) (s *session, active int, err error) {
	id, err = r.reserveStart(id)
	if err != nil {
		return nil, 0, err
	}
	token := rand.Text()
	dir := filepath.Join(r.cfg.DataDir, "spool", id)
	sp, err := createSessionDir(dir, sessionMeta{SessionID: id, FPS: start.FPS, Width: start.Width, Height: start.Height, ExpectedFrames: start.ExpectedFrames, Protocol: proto, ResumeToken: token, Host: remoteHost(c.remote)}, r.disk)
	if err != nil {
		r.unreserveStart(id)
		return nil, 0, &startError{protocol.CodeInternalError, err.Error()}
	}
	now := time.Now()
	s = &session{
		id:           id,
		log:          c.log.With("session_id", id),
		state:        stateStreaming,
		start:        start,
		protocol:     proto,
		created:      now,
		dir:          dir,
		spool:        sp,
		token:        token,
		conn:         c,
		host:         remoteHost(c.remote),
		lastActivity: now,
		maxNumber:    -1,
		gapsBelow:    -1,
	}
	s.bufferCounted.Store(true)
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.starting, id)
	r.sessions[id] = s
	return s, r.countLocked(), nil
}

// reserveStart checks that a new session may start with id (generated
// when ""), reserves the id and the memory of its spool buffer, and
// returns the id. The reservation counts as a live session until create
// installs the session or unreserveStart drops it.
func (r *registry) reserveStart(id string) (string, error) {
	r.mu.Lock()
	id, dropped, err := r.reserveStartLocked(id)
	r.mu.Unlock()
	if dropped != nil {
		dropped.log.Info("dropped the delivered result kept for a resume: a new session starts with its id", "result", dropped.result)
	}
	return id, err
}

// reserveStartLocked is reserveStart under r.mu. It also returns the
// delivered session it dropped to give its id to the new one, if any, for
// the caller to log once r.mu is released.
func (r *registry) reserveStartLocked(id string) (string, *session, error) {
	if r.closed {
		return "", nil, &startError{protocol.CodeSessionStartFailed, "the server is shutting down"}
	}
	_, starting := r.starting[id]
	var dropped *session
	if id == "" {
		id = r.generateIDLocked()
	} else if _, upload := r.uploads[id]; upload {
		return "", nil, &startError{protocol.CodeSessionStartFailed, fmt.Sprintf("session %s is taken by an upload being analysed (POST /analyze); use another session_id", id)}
	} else if held := r.sessions[id]; starting || held != nil && !r.dropDeliveredLocked(held) {
		return "", nil, &startError{protocol.CodeSessionStartFailed, fmt.Sprintf("session %s already exists: another connection is streaming it, or it waits to be resumed (session_start with \"resume\": true); use another session_id or wait until it ends", id)}
	} else if held != nil {
		dropped = held
	}
	if n := r.liveLocked(); n >= r.cfg.MaxSessions {
		return "", dropped, &startError{protocol.CodeSessionStartFailed, fmt.Sprintf("session limit reached: %d of %d streaming sessions active (max streaming sessions); try again when one has ended", n, r.cfg.MaxSessions)}
	}
	if used := r.disk.used.Load(); used >= r.disk.limit {
		return "", dropped, &startError{protocol.CodeSessionStartFailed, fmt.Sprintf("spool disk limit reached: the spools hold %d bytes (%d sessions), the limit is %d (max spool bytes); try again when one has ended", used, r.countLocked(), r.disk.limit)}
	}
	if !r.memory.reserve(spoolBufferSize) {
		return "", dropped, &startError{protocol.CodeSessionStartFailed, fmt.Sprintf("memory limit reached: the server holds %.1f MB for %d sessions and their connections, and a new session needs %.1f MB, over the %d MB limit (max streaming memory MB)",
			float64(r.memory.used.Load())/(1<<20), r.countLocked(), float64(spoolBufferSize)/(1<<20), r.cfg.MaxMemoryMB)}
	}
	r.starting[id] = struct{}{}
	return id, dropped, nil
}

// unreserveStart gives back what reserveStart took for a session that
// could not be created.
func (r *registry) unreserveStart(id string) {
	r.mu.Lock()
	delete(r.starting, id)
	r.mu.Unlock()
	r.memory.release(spoolBufferSize)
}

// createSessionDir creates the spool directory dir of a new session, its
// spool and its session.json, and makes them durable. On failure it
// leaves nothing behind, and its error says what to check.
func createSessionDir(dir string, meta sessionMeta, disk *diskBudget) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the spool directory for session %s: %w", meta.SessionID, err)
	}
	// The spool first: writeMeta's directory sync then makes both names
	// durable, and a crash between the two leaves an empty spool without
	// metadata, which recovery removes.
	sp, err := createSpool(filepath.Join(dir, spoolFileName), disk)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("cannot create the spool for session %s: %w", meta.SessionID, err)
	}
	err = writeMeta(dir, meta)
	if err == nil {
		err = atomicfile.SyncDir(filepath.Dir(dir))
	}
	if err != nil {
		sp.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("cannot save the metadata of session %s: %w (check the data directory's disk)", meta.SessionID, err)
	}
	return sp, nil
}

// dropDeliveredLocked removes s from the registry, whose lock the caller
// holds, if s is a delivered session no connection has resumed and whose
// spool is gone (finishDelivered), and reports whether it did. The caller
// logs it, once r.mu is released.
func (r *registry) dropDeliveredLocked(s *session) bool {
	if !s.finishDelivered() {
		return false
	}
	delete(r.sessions, s.id)
	return true
}

// generateIDLocked returns an id in the capture box's style that no
// session nor upload holds, numbering phrases from 1 since the server
// started.
func (r *registry) generateIDLocked() string {
	for {
		r.phrase++
		id := protocol.NewSessionID(time.Now(), r.phrase)
		_, session := r.sessions[id]
		_, upload := r.uploads[id]
		_, starting := r.starting[id]
		if !session && !upload && !starting {
			return id
		}
	}
}

// reserveUpload gives an upload a generated id that no session nor upload
// holds, and holds it until releaseUpload: no stream can start with it
// meanwhile.
func (r *registry) reserveUpload() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.generateIDLocked()
	r.uploads[id] = struct{}{}
	return id
}

// releaseUpload frees the id of an upload that has ended.
func (r *registry) releaseUpload(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.uploads, id)
}

// remove takes s out of the registry and returns the number of active
// sessions left.
func (r *registry) remove(s *session) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sessions[s.id] == s {
		delete(r.sessions, s.id)
	}
	return r.countLocked()
}

// list returns the sessions held, delivered ones included, ordered by id.
func (r *registry) list() []*session {
	r.mu.Lock()
	out := make([]*session, 0, len(r.sessions))
	for _, s := range r.sessions {
		out = append(out, s)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// count returns the number of active sessions: those held, less the
// delivered ones.
func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.countLocked()
}

// liveLocked returns the number of live sessions, those the session limit
// counts: attached to a connection, or being processed. A session held for
// its client to resume (disconnected, processed without a client) holds
// no slot: clients that start sessions and go cannot lock others out.
// A session being created counts.
func (r *registry) liveLocked() int {
	n := len(r.starting)
	for _, s := range r.sessions {
		s.mu.Lock()
		if s.conn != nil || s.state == stateProcessing {
			n++
		}
		s.mu.Unlock()
	}
	return n
}

func (r *registry) countLocked() int {
	n := 0
	for _, s := range r.sessions {
		if !s.delivered.Load() {
			n++
		}
	}
	return n
}

// close refuses every later create.
func (r *registry) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
}

// endReason says why a session finished, for its one "removed session" line.
// kind is the reason label of referee_sessions_failed_total: a few fixed
// words, never a client's text.
type endReason struct {
	text  string
	kind  string
	level slog.Level
}

func completed() endReason { return endReason{"completed", "", slog.LevelInfo} }

func failure(kind, format string, args ...any) endReason {
	return endReason{fmt.Sprintf(format, args...), kind, slog.LevelWarn}
}

// finish ends s if it is in one of the states from: it marks it finished,
// stops its processing, removes it from the registry, closes and deletes its
// spool, and logs the one line that says why. It reports whether it did;
// false means another path finished s first.
func (srv *Server) finish(s *session, reason endReason, from ...sessionState) bool {
	_, ok := srv.end(s, reason, from...)
	return ok
}

// end is finish that also returns what was attached to s when it ended:
// the connection to tell.
func (srv *Server) end(s *session, reason endReason, from ...sessionState) (detached, bool) {
	d, ok := s.finishFrom(from...)
	if !ok {
		return d, false
	}
	if d.cancel != nil {
		d.cancel(fmt.Errorf("session %s ended: %s", s.id, reason.text))
	}
	// The spool goes first: once s is out of the registry, a new session
	// with its id may create its own spool in the same directory.
	srv.dropSpool(s)
	active := srv.reg.remove(s)
	// A delivered session was counted and logged when its result was
	// sent: its end is only a debug line.
	if s.delivered.Load() {
		s.log.Debug("dropped the delivered result kept for a resume", "reason", reason.text, "active", active)
		return d, true
	}
	srv.countEnd(s, reason, active)
	return d, true
}

// countEnd counts the end of s in the metrics and logs its one "removed
// session" line; active is the number of active sessions left.
func (srv *Server) countEnd(s *session, reason endReason, active int) {
	if reason.kind == "" {
		srv.metrics.completed.Inc()
	} else {
		srv.metrics.failed.WithLabelValues(reason.kind).Inc()
	}
	s.log.Log(context.Background(), reason.level, "removed session", "reason", reason.text, "frames", s.spool.Count(), "active", active)
}

// dropSpool closes the spool of s, deletes its directory and gives its
// bytes back to the disk budget, once. The spool's index stays: a processed
// session still answers a resume with the frames it had.
func (srv *Server) dropSpool(s *session) {
	s.dropSpool.Do(func() {
		if err := s.spool.Close(); err != nil {
			s.log.Warn("cannot close the spool", "path", s.spool.path, "err", err)
		}
		if err := os.RemoveAll(s.dir); err != nil {
			s.log.Warn("cannot remove the spool", "path", s.dir, "err", err)
		}
		srv.reg.disk.release(s.spool.Size())
		srv.reg.uncountBuffer(s)
		s.spoolDropped.Store(true)
	})
}

// countBuffer counts the spool write buffer of s, live again, in the
// memory budget; uncountBuffer uncounts it once s is parked or gone. Both
// may be called more than once.
func (r *registry) countBuffer(s *session) {
	if s.bufferCounted.CompareAndSwap(false, true) {
		r.memory.add(spoolBufferSize)
	}
}

func (r *registry) uncountBuffer(s *session) {
	if s.bufferCounted.CompareAndSwap(true, false) {
		r.memory.release(spoolBufferSize)
	}
}

// reap ends every streaming session that has received nothing for longer
// than the session timeout, and closes its connection, every disconnected
// session not resumed within the grace period, and every processed session
// whose result no client came for within the grace period (or whose
// resuming client went quiet for the session timeout), delivered ones
// included.
func (srv *Server) reap(now time.Time) {
	timeout, grace := srv.cfg.SessionTimeout, srv.cfg.ResumeGrace
	for _, s := range srv.reg.list() {
		s.mu.Lock()
		idle, gone := now.Sub(s.lastActivity), now.Sub(s.disconnected)
		frames, state, c, result, failed := s.messages, s.state, s.conn, s.result, s.failed
		s.mu.Unlock()
		switch {
		case state == stateDisconnected && gone > grace && failed != "":
			srv.finish(s, failure("processing_failed", "processing failed: %s; not resumed within %s to retry", failed, grace), stateDisconnected)
		case state == stateDisconnected && gone > grace:
			srv.finish(s, failure("not_resumed", "disconnected and not resumed within %s", grace), stateDisconnected)
		case state == stateStreaming && idle > timeout:
			reason := fmt.Sprintf("idle timeout: no message for %s after %d frames", formatDuration(idle), frames)
			if srv.finish(s, failure("idle_timeout", "%s", reason), stateStreaming) {
				c.closeWith(closePolicy, "session "+s.id+" idle timeout")
			}
		case state == stateProcessed && c == nil && gone > grace && s.delivered.Load():
			srv.finish(s, endReason{fmt.Sprintf("result delivered; not resumed within %s", grace), "", slog.LevelDebug}, stateProcessed)
		case state == stateProcessed && c == nil && gone > grace:
			srv.finish(s, uncollected(fmt.Sprintf("not resumed within %s", grace), result), stateProcessed)
		case state == stateProcessed && c != nil && idle > timeout:
			reason := fmt.Sprintf("the resuming client sent no session_end and signal for %s", formatDuration(idle))
			if srv.finish(s, uncollected(reason, result), stateProcessed) {
				c.closeWith(closePolicy, "session "+s.id+" idle timeout")
			}
		}
	}
}

// limitHeld ends the oldest of the sessions held for host (disconnected,
// or processed with no client waiting) beyond Config.MaxHeldPerAddr, and
// logs each: one address may not keep the server holding spools and
// results without bound. Called when a session of host becomes held.
func (srv *Server) limitHeld(host string) {
	type heldSession struct {
		s     *session
		since time.Time
		state sessionState
	}
	var held []heldSession
	for _, s := range srv.reg.list() {
		s.mu.Lock()
		if s.host == host && s.conn == nil && (s.state == stateDisconnected || s.state == stateProcessed) && !s.delivered.Load() {
			held = append(held, heldSession{s, s.disconnected, s.state})
		}
		s.mu.Unlock()
	}
	limit := srv.cfg.MaxHeldPerAddr
	if len(held) <= limit {
		return
	}
	slices.SortFunc(held, func(a, b heldSession) int { return a.since.Compare(b.since) })
	for _, h := range held[:len(held)-limit] {
		why := fmt.Sprintf("dropped to make room: %s holds more than %d sessions waiting to be resumed (max held sessions per address)", host, limit)
		reason := failure("held_limit", "%s", why)
		if h.state == stateProcessed {
			reason = uncollected(why, h.s.result)
		}
		srv.finish(h.s, reason, h.state)
	}
}

// uncollected is the end of a processed session whose result no client
// took, for why: it is complete, its result stays in result.json.
func uncollected(why, result string) endReason {
	return endReason{fmt.Sprintf("completed; the result was not sent (%s): it is in %s", why, result), "", slog.LevelInfo}
}

// formatDuration prints d rounded to what a person reads in a log.
func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}

// trimTo shortens s to at most n bytes on a rune boundary, for WebSocket
// close reasons (at most 123 bytes).
func trimTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/jobs"
	"github.com/referee-project/referee/pipeline/rightofway"
	"github.com/referee-project/referee/protocol"
)

// Paths of the review API.
const (
	PathLogin     = "/api/login"
	PathSessions  = "/api/sessions"
	PathAgreement = "/api/agreement"
)

// AuthCookie is the cookie POST /api/login sets: it stands for the token
// where a browser cannot send a header (<video>, polling from a page).
const AuthCookie = "referee_auth"

// Limits of a review.
const (
	// MaxReviewBytes bounds the body of POST /api/sessions/{id}/review.
	MaxReviewBytes = 16 << 10
	// MaxRefereeRunes and MaxNoteRunes bound the review's text fields.
	MaxRefereeRunes = 100
	MaxNoteRunes    = 2000
	// maxHistory bounds the earlier reviews a review.json keeps.
	maxHistory = 100
)

// ReviewEntry is one referee's call on a phrase.
type ReviewEntry struct {
	// Call is left, right, simultaneous or abstain.
	Call    string `json:"call"`
	Referee string `json:"referee"`
	Note    string `json:"note"`
	// At is when it was recorded, RFC 3339.
	At string `json:"at"`
}

// Review is the latest call on a phrase with the earlier ones, as
// review.json holds it.
type Review struct {
	ReviewEntry
	// History holds the earlier reviews of the phrase, oldest first (at
	// most maxHistory of them).
	History []ReviewEntry `json:"history"`
	// RequestID, in a cluster, identifies the request that recorded the
	// review, so that a compare-and-set retried after a lost answer
	// records it once.
	RequestID string `json:"request_id,omitempty"`
}

// reviewRequest is the body of POST /api/sessions/{id}/review.
type reviewRequest struct {
	Call    *string `json:"call"`
	Referee *string `json:"referee"`
	Note    *string `json:"note"`
}

// reviews serialises the writes of review.json, so that two referees
// saving at once both end up in the history.
type reviews struct {
	mu sync.Mutex
}

// reviewRoutes adds the pages and the review API to mux.
func (s *Server) reviewRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", withDeadlines(s.servePage("index.html")))
	mux.HandleFunc("GET /sessions/{id}", withDeadlines(s.servePage("session.html")))
	mux.Handle("GET /static/", withDeadlines(staticHandler().ServeHTTP))
	mux.HandleFunc("POST "+PathLogin, withDeadlines(s.handleLogin))
	mux.HandleFunc("GET "+PathSessions, withDeadlines(s.withReviewAuth(s.handleSessions)))
	mux.HandleFunc("GET "+PathSessions+"/{id}", withDeadlines(s.withReviewAuth(s.handleSession)))
	mux.HandleFunc("GET "+PathSessions+"/{id}/files/{name}", withDeadlines(s.withReviewAuth(s.handleFile)))
	mux.HandleFunc("POST "+PathSessions+"/{id}/review", withDeadlines(s.withReviewAuth(s.handleReview)))
	mux.HandleFunc("GET "+PathAgreement, withDeadlines(s.withReviewAuth(s.handleAgreement)))
}

// withDeadlines bounds the reading of a request's body and the writing of
// the answer to writeWait each (handleFile gives a large file more), so
// that a client that stops reading or sending holds nothing for long.
func withDeadlines(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		rc.SetReadDeadline(now.Add(writeWait))
		rc.SetWriteDeadline(now.Add(writeWait))
		h(w, r)
	}
}

// cookieValue is the value of AuthCookie for the server's token: a MAC of
// it, so that the cookie never holds the token itself and changes with it.
func (s *Server) cookieValue() string {
	m := hmac.New(sha256.New, []byte(s.cfg.Token))
	m.Write([]byte("referee review cookie v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// withReviewAuth is withToken for the review API: the token may also come
// as the AuthCookie POST /api/login set.
func (s *Server) withReviewAuth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Token != "" && !s.authorized(r, false) {
			c, err := r.Cookie(AuthCookie)
			if err != nil || !hmac.Equal([]byte(c.Value), []byte(s.cookieValue())) {
				s.refusals.log(s.log, slog.LevelWarn, "review_auth", "refused a review request without a valid token or cookie", "remote", r.RemoteAddr, "path", r.URL.Path)
				s.metrics.refused.WithLabelValues("unauthorized").Inc()
				s.writeError(w, nil, &httpError{http.StatusUnauthorized, protocol.CodeUnauthorized,
					"missing or wrong token: log in on the page with the server's token (POST " + PathLogin + "), or send the header \"Authorization: Bearer <token>\""})
				return
			}
		}
		h(w, r)
	}
}

// handleLogin is POST /api/login with {"token": "..."}: with the server's
// token it answers 204 and sets AuthCookie (HttpOnly, SameSite=Strict,
// Secure over TLS); with another, 401. A server without a token answers
// 204 and sets nothing.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&body); err != nil {
		s.writeError(w, nil, s.bodyError("login", err))
		return
	}
	if s.cfg.Token == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	a, b := sha256.Sum256([]byte(body.Token)), sha256.Sum256([]byte(s.cfg.Token))
	if !hmac.Equal(a[:], b[:]) {
		s.refusals.log(s.log, slog.LevelWarn, "login", "refused a login with a wrong token", "remote", r.RemoteAddr)
		s.metrics.refused.WithLabelValues("unauthorized").Inc()
		s.writeError(w, nil, &httpError{http.StatusUnauthorized, protocol.CodeUnauthorized, "wrong token: give the server's token (referee serve --token, REFEREE_TOKEN)"})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: AuthCookie, Value: s.cookieValue(), Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.tls != nil})
	w.WriteHeader(http.StatusNoContent)
}

// sessionList is the body of GET /api/sessions.
type sessionList struct {
	Sessions []PhraseSummary `json:"sessions"`
	// Partial, in a cluster, says why only this node's phrases are
	// listed, or why the sessions the other nodes stream are not; absent
	// when the list is the cluster's.
	Partial string `json:"partial,omitempty"`
}

func (s *Server) handleSessions(w http.ResponseWriter, r *http.Request) {
	l, err := s.phrases(r.Context())
	if err != nil {
		s.log.Error("cannot list the phrases", "err", err)
		s.writeError(w, nil, &httpError{http.StatusInternalServerError, protocol.CodeInternalError, err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, sessionList{Sessions: l.all, Partial: l.incomplete()})
}

// FileInfo is one file of a phrase's directory in GET /api/sessions/{id}.
type FileInfo struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	Type string `json:"type"`
}

// phraseDetail is the body of GET /api/sessions/{id}.
type phraseDetail struct {
	SessionID string          `json:"session_id"`
	Status    string          `json:"status"`
	StartedAt string          `json:"started_at"`
	Result    json.RawMessage `json:"result"`
	Failure   *Failure        `json:"failure,omitempty"`
	Files     []FileInfo      `json:"files"`
	Review    *Review         `json:"review"`
}

// noSession is the answer for a phrase key no node holds.
func noSession(key string) *httpError {
	return &httpError{http.StatusNotFound, protocol.CodeInvalidMessage, fmt.Sprintf("no session %q: see GET %s for the sessions this server holds", clip(key), PathSessions)}
}

// lookup finds the phrase key names: one on disk, a session streaming or
// being processed, or in a cluster one another node holds (its entry is
// then returned too); it answers 404 itself when there is none.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, key string) (PhraseSummary, *jobs.Entry, bool) {
	notFound := noSession(key)
	if !jobs.ValidKey(key) {
		s.writeError(w, nil, notFound)
		return PhraseSummary{}, nil, false
	}
	l, err := s.phrases(r.Context())
	if err != nil {
		s.writeError(w, nil, &httpError{http.StatusInternalServerError, protocol.CodeInternalError, err.Error()})
		return PhraseSummary{}, nil, false
	}
	for _, p := range l.all {
		if p.SessionID == key {
			if e, ok := l.remote[key]; ok {
				return p, &e, true
			}
			return p, nil, true
		}
	}
	if l.incomplete() != "" {
		s.writeError(w, nil, clusterUnreachable(fmt.Sprintf("this node holds no session %q", clip(key)), errors.New(l.incomplete())))
		return PhraseSummary{}, nil, false
	}
	s.writeError(w, nil, notFound)
	return PhraseSummary{}, nil, false
}

func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("id")
	sum, remote, ok := s.lookup(w, r, key)
	if !ok {
		return
	}
	d := phraseDetail{SessionID: key, Status: sum.Status, StartedAt: sum.StartedAt, Failure: sum.Failure, Review: sum.Review, Files: []FileInfo{}}
	if remote != nil {
		remoteDetail(&d, *remote)
		writeJSON(w, http.StatusOK, d)
		return
	}
	if sum.Status == StatusDone || sum.Status == StatusFailed {
		dir := filepath.Join(s.cfg.OutputDir, key)
		if data, err := os.ReadFile(filepath.Join(dir, pipeline.ResultFileName)); err == nil && json.Valid(data) {
			d.Result = data
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			s.writeError(w, nil, &httpError{http.StatusInternalServerError, protocol.CodeInternalError, fmt.Sprintf("list the files of session %s: %v", key, err)})
			return
		}
		for _, e := range entries {
			if !servable(e.Name()) || !e.Type().IsRegular() {
				continue
			}
			if fi, err := e.Info(); err == nil {
				d.Files = append(d.Files, FileInfo{e.Name(), fi.Size(), contentType(e.Name())})
			}
		}
	}
	writeJSON(w, http.StatusOK, d)
}

// servable reports whether name may be served from a phrase's directory:
// one plain name, not hidden (temporary files are), no separator.
func servable(name string) bool {
	return name != "" && !strings.HasPrefix(name, ".") && !strings.ContainsAny(name, `/\`) && len(name) <= 255
}

// contentType is the type a phrase's file is served with.
func contentType(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".avi":
		return "video/x-msvideo"
	case ".mp4":
		return "video/mp4"
	case ".webm":
		return "video/webm"
	case ".json":
		return "application/json"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(filepath.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// handleFile is GET /api/sessions/{id}/files/{name}: one file of the
// phrase's directory with Range requests, an ETag and its content type.
// A name that is not a plain file of that directory, a symbolic link
// above all, is 404 and nothing is read.
func (s *Server) handleFile(w http.ResponseWriter, r *http.Request) {
	key, name := r.PathValue("id"), r.PathValue("name")
	notFound := &httpError{http.StatusNotFound, protocol.CodeInvalidMessage, fmt.Sprintf("session %q has no file %q: see GET %s/%s for its files", clip(key), clip(name), PathSessions, clip(key))}
	if !jobs.ValidKey(key) || !servable(name) {
		s.writeError(w, nil, notFound)
		return
	}
	path := filepath.Join(s.cfg.OutputDir, key, name)
	if fi, err := os.Lstat(filepath.Join(s.cfg.OutputDir, key)); err != nil || !fi.IsDir() {
		if s.cfg.Jobs != nil && errors.Is(err, fs.ErrNotExist) {
			s.serveRemoteFile(w, r, key, name, notFound)
			return
		}
		s.writeError(w, nil, notFound)
		return
	}
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		s.writeError(w, nil, notFound)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		s.writeError(w, nil, notFound)
		return
	}
	defer f.Close()
	serveFileHeaders(w, name, fmt.Sprintf(`"%x-%x"`, fi.Size(), fi.ModTime().UnixNano()), fi.Size())
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

// handleReview is POST /api/sessions/{id}/review: it validates the call,
// writes review.json atomically with the earlier reviews in its history,
// and answers with it. In a cluster the review is stored in the
// catalogue first (a compare-and-set, so that two nodes saving at once
// both end up in the history), then in the phrase's directory if this
// node holds it; a cluster that cannot be asked is 503 and nothing is
// recorded.
func (s *Server) handleReview(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("id")
	sum, remote, ok := s.lookup(w, r, key)
	if !ok {
		return
	}
	if sum.Status == StatusStreaming || sum.Status == StatusProcessing {
		s.writeError(w, nil, &httpError{http.StatusConflict, protocol.CodeInvalidMessage, fmt.Sprintf("session %s is still %s: review it once it is processed", key, sum.Status)})
		return
	}
	req, herr := s.readReview(w, r)
	if herr != nil {
		s.writeError(w, nil, herr)
		return
	}
	dir := filepath.Join(s.cfg.OutputDir, key)
	var rev Review
	var data []byte
	stored := false
	if q := s.cfg.Jobs; q != nil {
		// A phrase this node holds is reviewed in the cluster only in the
		// record this node published: another node's with the same key
		// is a different phrase.
		node := s.nodeName()
		if remote != nil {
			node = remote.Node
		}
		ctx, cancel := context.WithTimeout(r.Context(), listTimeout)
		var err error
		data, err = q.SetReview(ctx, key, node, reviewChange(key, req, rand.Text(), &rev))
		cancel()
		switch {
		case err == nil:
			stored = true
		case remote != nil && errors.Is(err, jobs.ErrUnknown):
			// Another node's phrase whose record went since the list
			// was read (past --nats-retention, or forgotten): no node
			// holds it any more.
			s.writeError(w, nil, noSession(key))
			return
		case !errors.Is(err, jobs.ErrUnknown):
			s.log.Error("cannot store a review in the cluster", "session_id", key, "err", err)
			s.writeError(w, nil, clusterUnreachable("the review is not recorded", err))
			return
		}
		// Unknown to the cluster: a phrase only this node has (an
		// upload, or one from before the cluster) keeps its review here.
	}
	s.reviews.mu.Lock()
	defer s.reviews.mu.Unlock()
	if !stored {
		prev, err := readReview(dir)
		if err != nil {
			s.writeError(w, nil, &httpError{http.StatusInternalServerError, protocol.CodeInternalError, err.Error()})
			return
		}
		rev = nextReview(prev, req)
		data, err = encodeReview(rev)
		if err == nil {
			err = writeFileAtomic(filepath.Join(dir, ReviewFileName), data)
		}
		if err != nil {
			s.log.Error("cannot store a review", "session_id", key, "err", err)
			s.writeError(w, nil, &httpError{http.StatusInternalServerError, protocol.CodeInternalError, fmt.Sprintf("store the review: %v (check the output directory)", err)})
			return
		}
	} else if fi, err := os.Lstat(dir); err == nil && fi.IsDir() {
		if err := writeFileAtomic(filepath.Join(dir, ReviewFileName), data); err != nil {
			s.log.Warn("the review is stored in the cluster but not in the phrase's directory", "session_id", key, "err", err)
		}
	}
	s.metrics.reviews.WithLabelValues(rev.Call).Inc()
	s.log.Info("review recorded", "session_id", key, "call", rev.Call, "winner", sum.Winner, "agrees", sum.Status == StatusDone && rightofway.Agrees(rev.Call, sum.Winner), "earlier_reviews", len(rev.History), "node", sum.Node)
	writeJSON(w, http.StatusOK, rev)
}

// reviewChange is the change of Catalog.SetReview that records req with
// the request id id, setting *rev to the review it gives. Given the review
// it made (a try whose answer was lost), it gives it back unchanged.
func reviewChange(key string, req reviewRequest, id string, rev *Review) func(current []byte) ([]byte, error) {
	return func(current []byte) ([]byte, error) {
		var prev *Review
		if current != nil {
			prev = &Review{}
			if err := json.Unmarshal(current, prev); err != nil {
				return nil, fmt.Errorf("the cluster's review of session %s is not a review: %w", key, err)
			}
			if prev.RequestID == id {
				*rev = *prev
				return current, nil
			}
		}
		*rev = nextReview(prev, req)
		rev.RequestID = id
		return encodeReview(*rev)
	}
}

// nextReview is the review req makes of a phrase whose review was prev
// (nil for none): req's call, with prev's at the end of the history.
func nextReview(prev *Review, req reviewRequest) Review {
	rev := Review{ReviewEntry: ReviewEntry{Call: *req.Call, Referee: *req.Referee, At: time.Now().UTC().Format(time.RFC3339Nano)}, History: []ReviewEntry{}}
	if req.Note != nil {
		rev.Note = *req.Note
	}
	if prev != nil {
		rev.History = append(prev.History, prev.ReviewEntry)
		if len(rev.History) > maxHistory {
			rev.History = rev.History[len(rev.History)-maxHistory:]
		}
	}
	return rev
}

// encodeReview is review.json's content for rev.
func encodeReview(rev Review) ([]byte, error) {
	data, err := json.MarshalIndent(rev, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode the review: %w", err)
	}
	return append(data, '\n'), nil
}

// readReview reads and validates a review's body; errors name the field.
func (s *Server) readReview(w http.ResponseWriter, r *http.Request) (reviewRequest, *httpError) {
	var req reviewRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxReviewBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return req, &httpError{http.StatusRequestEntityTooLarge, protocol.CodeLimitExceeded, fmt.Sprintf("the review is over the %d-byte limit", MaxReviewBytes)}
		}
		return req, badRequest("the review is not a JSON object {\"call\", \"referee\", \"note\"}: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, badRequest("the review is followed by more data: send one JSON object")
	}
	switch {
	case req.Call == nil:
		return req, badRequest("call: missing; want %s", rightofway.CallNames())
	case !rightofway.ValidCall(*req.Call):
		return req, badRequest("call %q: want %s", clip(*req.Call), rightofway.CallNames())
	case req.Referee == nil || strings.TrimSpace(*req.Referee) == "":
		return req, badRequest("referee: missing; give the referee's name")
	}
	if err := checkText(*req.Referee, MaxRefereeRunes); err != "" {
		return req, badRequest("referee: %s", err)
	}
	if req.Note != nil {
		if err := checkText(*req.Note, MaxNoteRunes); err != "" {
			return req, badRequest("note: %s", err)
		}
	}
	trimmed := strings.TrimSpace(*req.Referee)
	req.Referee = &trimmed
	return req, nil
}

// checkText says what is wrong with a review's text field, or "".
func checkText(v string, maxRunes int) string {
	if !utf8.ValidString(v) {
		return "not valid UTF-8"
	}
	if n := utf8.RuneCountInString(v); n > maxRunes {
		return fmt.Sprintf("%d characters, the most is %d", n, maxRunes)
	}
	for _, c := range v {
		if unicode.IsControl(c) && c != '\n' && c != '\t' {
			return fmt.Sprintf("control character %U", c)
		}
	}
	return ""
}

// Agreement is the body of GET /api/agreement: how often the referees'
// reviews agree with the analysis (rightofway.Agrees), over phrases with
// a result, by the referee's call and overall.
type Agreement struct {
	Reviewed int                   `json:"reviewed"`
	Agreeing int                   `json:"agreeing"`
	Rate     *float64              `json:"rate"`
	ByCall   map[string]*CallTally `json:"by_call"`
	// Partial, in a cluster, says why only this node's phrases are
	// counted, as GET /api/sessions does; absent when all are.
	Partial string `json:"partial,omitempty"`
}

// CallTally counts the reviews of one call.
type CallTally struct {
	Reviewed int      `json:"reviewed"`
	Agreeing int      `json:"agreeing"`
	Rate     *float64 `json:"rate"`
}

// agreement counts the current review of every phrase with a result (in
// a cluster, every node's).
func (s *Server) agreement(ctx context.Context) (Agreement, error) {
	l, err := s.phrases(ctx)
	if err != nil {
		return Agreement{}, err
	}
	list := l.all
	a := Agreement{ByCall: map[string]*CallTally{}, Partial: l.partial}
	for _, c := range rightofway.Calls() {
		a.ByCall[c] = &CallTally{}
	}
	for _, p := range list {
		if p.Status != StatusDone || p.Review == nil || a.ByCall[p.Review.Call] == nil {
			continue
		}
		t := a.ByCall[p.Review.Call]
		a.Reviewed++
		t.Reviewed++
		if rightofway.Agrees(p.Review.Call, p.Winner) {
			a.Agreeing++
			t.Agreeing++
		}
	}
	a.Rate = rate(a.Agreeing, a.Reviewed)
	for _, t := range a.ByCall {
		t.Rate = rate(t.Agreeing, t.Reviewed)
	}
	return a, nil
}

func rate(n, d int) *float64 {
	if d == 0 {
		return nil
	}
	r := roundTo(float64(n)/float64(d), 4)
	return &r
}

func (s *Server) handleAgreement(w http.ResponseWriter, r *http.Request) {
	a, err := s.agreement(r.Context())
	if err != nil {
		s.writeError(w, nil, &httpError{http.StatusInternalServerError, protocol.CodeInternalError, err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// agreementCollector gives the agreement as Prometheus gauges, counted
// from the reviews on disk (in a cluster, every node's) at each scrape, so
// that they survive restarts. They are gauges, not counters: they count
// each phrase's latest review, so a review changed from left to right
// takes one from call="left".
type agreementCollector struct {
	s                  *Server
	reviewed, agreeing *prometheus.Desc
}

func newAgreementCollector(s *Server) *agreementCollector {
	return &agreementCollector{
		s: s,
		reviewed: prometheus.NewDesc("referee_reviewed_phrases",
			"Phrases with a result that a referee has reviewed, by the referee's call (the latest review of each; in a cluster, the whole cluster's).", []string{"call"}, nil),
		agreeing: prometheus.NewDesc("referee_reviewed_phrases_agreeing",
			"Reviewed phrases whose result agrees with the referee's call (rightofway.Agrees), by the call.", []string{"call"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *agreementCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.reviewed
	ch <- c.agreeing
}

// Collect implements prometheus.Collector.
func (c *agreementCollector) Collect(ch chan<- prometheus.Metric) {
	a, err := c.s.agreement(context.Background())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.reviewed, err)
		return
	}
	for call, t := range a.ByCall {
		ch <- prometheus.MustNewConstMetric(c.reviewed, prometheus.GaugeValue, float64(t.Reviewed), call)
		ch <- prometheus.MustNewConstMetric(c.agreeing, prometheus.GaugeValue, float64(t.Agreeing), call)
	}
}

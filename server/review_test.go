package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/protocol"
)

// call sends a request with the server's token (if any) and extra
// headers, and returns the status, the headers and the body.
func (ts *testServer) call(method, path, body string, extra http.Header) (int, http.Header, []byte) {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.base+path, strings.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	req.Header = ts.header.Clone()
	for k, v := range extra {
		req.Header[k] = v
	}
	resp, err := ts.http.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

// refusedWith checks an answer: the status and a JSON error whose message
// is want.
func refusedWith(t *testing.T, what string, status int, body []byte, wantStatus int, want string) {
	t.Helper()
	var e protocol.Error
	if status != wantStatus || json.Unmarshal(body, &e) != nil || e.ErrorMessage != want {
		t.Errorf("%s: %d %s, want %d and the message %q", what, status, body, wantStatus, want)
	}
}

// listed returns GET /api/sessions by key, and the keys in order.
func (ts *testServer) listed() (map[string]PhraseSummary, []string) {
	ts.t.Helper()
	var body struct {
		Sessions []PhraseSummary `json:"sessions"`
	}
	ts.getJSON(PathSessions, &body)
	out := map[string]PhraseSummary{}
	var keys []string
	for _, s := range body.Sessions {
		out[s.SessionID] = s
		keys = append(keys, s.SessionID)
	}
	return out, keys
}

// TestReviewAPI: the list, a phrase and its files, reviews with their
// history, the agreement and its counters, and the bad input of the
// issue: unknown session 404, path traversal 404 with nothing read
// outside, a review of a session still streaming 409, an oversized review
// 413, and each bad field 400 naming it. Reviews survive a restart.
func TestReviewAPI(t *testing.T) {
	data := t.TempDir()
	ts := startServer(t, func(c *Config) { c.DataDir = data })
	res := ts.streamV1("club", 3)
	if res["started_at"] == nil {
		t.Errorf("the result has no started_at: %v", res)
	}
	// A rerun with the same session id is a new phrase with the next key;
	// the first keeps its own.
	ts.streamV1("club", 4)
	list, keys := ts.listed()
	if len(keys) != 2 || keys[0] != "club-2" || keys[1] != "club" {
		t.Fatalf("sessions %v, want club-2 then club (newest first)", keys)
	}
	if p := list["club"]; p.Status != StatusDone || p.Frames != 3 || p.Winner != "left" || p.Review != nil || p.StartedAt == "" {
		t.Errorf("club listed as %+v, want done, 3 frames, left, no review", p)
	}
	if p := list["club-2"]; p.Frames != 4 {
		t.Errorf("club-2 listed with %d frames, want 4", p.Frames)
	}

	var detail struct {
		SessionID string          `json:"session_id"`
		Status    string          `json:"status"`
		Result    json.RawMessage `json:"result"`
		Files     []FileInfo      `json:"files"`
		Review    *Review         `json:"review"`
	}
	ts.getJSON(PathSessions+"/club", &detail)
	files := map[string]FileInfo{}
	for _, f := range detail.Files {
		files[f.Name] = f
	}
	video, err := os.Stat(filepath.Join(ts.cfg.OutputDir, "club", "video.avi"))
	if err != nil {
		t.Fatal(err)
	}
	if detail.Status != StatusDone || !strings.Contains(string(detail.Result), `"winner":"left"`) ||
		files["video.avi"] != (FileInfo{"video.avi", video.Size(), "video/x-msvideo"}) || files["result.json"].Type != "application/json" || files["signal.txt"].Size == 0 {
		t.Errorf("GET /api/sessions/club: %+v", detail)
	}

	// A file: Range, ETag, content type.
	status, h, body := ts.call("GET", PathSessions+"/club/files/video.avi", "", http.Header{"Range": {"bytes=0-99"}})
	if status != http.StatusPartialContent || len(body) != 100 || h.Get("Content-Type") != "video/x-msvideo" ||
		h.Get("Content-Range") != fmt.Sprintf("bytes 0-99/%d", video.Size()) || h.Get("ETag") == "" || string(body[:4]) != "RIFF" {
		t.Errorf("range request: %d %v %q", status, h, body[:min(len(body), 8)])
	}
	if status, _, _ := ts.call("GET", PathSessions+"/club/files/video.avi", "", http.Header{"If-None-Match": {h.Get("ETag")}}); status != http.StatusNotModified {
		t.Errorf("If-None-Match with the ETag: %d, want 304", status)
	}

	// Nothing outside a phrase's directory is served: a file beside the
	// output directory, through a traversal or a symbolic link.
	secret := filepath.Join(data, "secret.txt")
	if err := os.WriteFile(secret, []byte("not for the web"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(ts.cfg.OutputDir, "club", "link.txt")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		"/club/files/..%2F..%2Fsecret.txt", "/club/files/%2E%2E", "/club/files/link.txt", "/club/files/.result.json.tmp",
		"/..%2Fsecret.txt/files/x", "/club/files/..%5C..%5Csecret.txt", "/nosuch/files/video.avi",
	} {
		status, _, body := ts.call("GET", PathSessions+p, "", nil)
		if status != http.StatusNotFound || strings.Contains(string(body), "not for the web") {
			t.Errorf("GET %s: %d %s, want 404", p, status, body)
		}
	}
	status, _, body = ts.call("GET", PathSessions+"/nosuch", "", nil)
	refusedWith(t, "unknown session", status, body, http.StatusNotFound, `no session "nosuch": see GET /api/sessions for the sessions this server holds`)

	// Reviews: bad fields, then two reviews, the second with the first in
	// its history.
	for _, c := range []struct{ body, want string }{
		{`{"call":"red","referee":"Ann"}`, `call "red": want left, right, simultaneous or abstain`},
		{`{"referee":"Ann"}`, `call: missing; want left, right, simultaneous or abstain`},
		{`{"call":"left"}`, `referee: missing; give the referee's name`},
		{`{"call":"left","referee":"  "}`, `referee: missing; give the referee's name`},
		{`{"call":"left","referee":"` + strings.Repeat("a", 101) + `"}`, `referee: 101 characters, the most is 100`},
		{`{"call":"left","referee":"Ann","note":"a\u0000b"}`, `note: control character U+0000`},
		{`{"call":"left","referee":"Ann","winner":"right"}`, `the review is not a JSON object {"call", "referee", "note"}: json: unknown field "winner"`},
		{`{"call":1,"referee":"Ann"}`, `the review is not a JSON object {"call", "referee", "note"}: json: cannot unmarshal number into Go struct field reviewRequest.call of type string`},
		{`{"call":"left","referee":"Ann"} {}`, `the review is followed by more data: send one JSON object`},
	} {
		status, _, body := ts.call("POST", PathSessions+"/club/review", c.body, nil)
		refusedWith(t, "review "+c.body, status, body, http.StatusBadRequest, c.want)
	}
	status, _, body = ts.call("POST", PathSessions+"/club/review", `{"call":"left","referee":"Ann","note":"`+strings.Repeat("x", MaxReviewBytes)+`"}`, nil)
	refusedWith(t, "oversized review", status, body, http.StatusRequestEntityTooLarge, fmt.Sprintf("the review is over the %d-byte limit", MaxReviewBytes))
	status, _, body = ts.call("POST", PathSessions+"/nosuch/review", `{"call":"left","referee":"Ann"}`, nil)
	refusedWith(t, "review of an unknown session", status, body, http.StatusNotFound, `no session "nosuch": see GET /api/sessions for the sessions this server holds`)
	if _, err := os.Stat(filepath.Join(ts.cfg.OutputDir, "club", ReviewFileName)); err == nil {
		t.Fatal("a refused review was written")
	}

	var first, second Review
	status, _, body = ts.call("POST", PathSessions+"/club/review", `{"call":"right","referee":"Ann","note":"parry riposte"}`, nil)
	if !strings.Contains(string(body), `"history":[]`) {
		t.Errorf("a first review without its empty history: %s", body)
	}
	if status != http.StatusOK || json.Unmarshal(body, &first) != nil || first.Call != "right" || first.Referee != "Ann" || first.Note != "parry riposte" || first.At == "" || first.History == nil || len(first.History) != 0 {
		t.Fatalf("first review: %d %s", status, body)
	}
	// The gauges count each phrase's latest review; the counter counts
	// the reviews recorded, so changing club's call from right to left
	// takes the gauge of right back to 0 and leaves the counter at 1.
	m := ts.scrape()
	if m[`referee_reviewed_phrases{call="right"}`] != 1 || m[`referee_reviewed_phrases{call="left"}`] != 0 || m[`referee_reviews_recorded_total{call="right"}`] != 1 {
		t.Errorf("review metrics after the first review: %v", m)
	}
	status, _, body = ts.call("POST", PathSessions+"/club/review", `{"call":"left","referee":" Bob "}`, nil)
	if status != http.StatusOK || json.Unmarshal(body, &second) != nil || second.Call != "left" || second.Referee != "Bob" ||
		len(second.History) != 1 || second.History[0].Call != "right" || second.History[0].Note != "parry riposte" || second.History[0].At != first.At {
		t.Fatalf("second review: %d %s", status, body)
	}
	var stored Review
	if data, err := os.ReadFile(filepath.Join(ts.cfg.OutputDir, "club", ReviewFileName)); err != nil || json.Unmarshal(data, &stored) != nil || stored.Call != "left" || len(stored.History) != 1 {
		t.Errorf("review.json: %s %v", data, err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(ts.cfg.OutputDir, "club", ".*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	ts.call("POST", PathSessions+"/club-2/review", `{"call":"abstain","referee":"Ann"}`, nil)

	// Agreement: club's left agrees with the analysis' left; club-2's
	// abstain does not.
	var a Agreement
	ts.getJSON(PathAgreement, &a)
	if a.Reviewed != 2 || a.Agreeing != 1 || *a.Rate != 0.5 || a.ByCall["left"].Agreeing != 1 || a.ByCall["abstain"].Reviewed != 1 || a.ByCall["abstain"].Agreeing != 0 || a.ByCall["right"].Rate != nil {
		t.Errorf("agreement %+v", a)
	}
	want := map[string]float64{
		`referee_reviewed_phrases{call="left"}`:               1,
		`referee_reviewed_phrases_agreeing{call="left"}`:      1,
		`referee_reviewed_phrases{call="right"}`:              0,
		`referee_reviewed_phrases_agreeing{call="right"}`:     0,
		`referee_reviewed_phrases{call="abstain"}`:            1,
		`referee_reviewed_phrases_agreeing{call="abstain"}`:   0,
		`referee_reviewed_phrases{call="simultaneous"}`:       0,
		`referee_reviews_recorded_total{call="left"}`:         1,
		`referee_reviews_recorded_total{call="right"}`:        1,
		`referee_reviews_recorded_total{call="abstain"}`:      1,
		`referee_reviews_recorded_total{call="simultaneous"}`: 0,
	}
	m = ts.scrape()
	for name, v := range want {
		if got, ok := m[name]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, v)
		}
	}
	checkMetricNames(t, ts)

	// A session still streaming is listed, and cannot be reviewed yet.
	c := ts.dial()
	c.startV1("live")
	f := newFrames(t, testWidth, testHeight)
	c.sendFrameV1("live", 0, protocol.EncodingJPEG, f.jpeg(0))
	list, keys = ts.listed()
	if p := list["live"]; p.Status != StatusStreaming || p.Frames != 1 || keys[0] != "live" {
		t.Errorf("live listed as %+v (order %v), want streaming with 1 frame, first", p, keys)
	}
	status, _, body = ts.call("POST", PathSessions+"/live/review", `{"call":"left","referee":"Ann"}`, nil)
	refusedWith(t, "review while streaming", status, body, http.StatusConflict, "session live is still streaming: review it once it is processed")
	c.ws.Close()

	// After a restart the reviews are there, and still counted.
	if err := ts.srv.Close(); err != nil {
		t.Fatal(err)
	}
	ts2 := startServer(t, func(c *Config) { c.DataDir = data })
	list, _ = ts2.listed()
	if r := list["club"].Review; r == nil || r.Call != "left" || r.Referee != "Bob" || len(r.History) != 1 {
		t.Errorf("after a restart club's review is %+v", r)
	}
	ts2.getJSON(PathAgreement, &a)
	if a.Reviewed != 2 || a.Agreeing != 1 {
		t.Errorf("after a restart the agreement is %+v", a)
	}
	// The gauges are counted from the disk; the counter starts again.
	m = ts2.scrape()
	if m[`referee_reviewed_phrases{call="left"}`] != 1 || m[`referee_reviewed_phrases{call="abstain"}`] != 1 || m[`referee_reviews_recorded_total{call="left"}`] != 0 {
		t.Errorf("review metrics after a restart: %v", m)
	}
}

// TestReviewFailedPhrase: a phrase whose processing failed is listed as
// failed with its stage and reason, and can be opened.
func TestReviewFailedPhrase(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.Analyzer = "fail-once"
		c.Analyzers = map[string]pipeline.Analyzer{"fail-once": failOnce{new(atomic.Int32)}}
	})
	c := ts.dial()
	c.startV1("broken")
	f := newFrames(t, testWidth, testHeight)
	c.sendFrameV1("broken", 0, protocol.EncodingJPEG, f.jpeg(0))
	c.send(protocol.SessionEnd{SessionID: "broken", TotalFrames: 1})
	expect[protocol.SessionEnded](c)
	c.sendSignal("broken", readPhrase(t, logSingleLeft))
	expect[protocol.SignalAck](c)
	expect[protocol.ProcessStart](c)
	for {
		m := c.recv()
		if e, ok := m.(protocol.Error); ok {
			if e.ErrorCode != protocol.CodeProcessingFailed {
				t.Fatalf("error %+v, want PROCESSING_FAILED", e)
			}
			break
		}
	}
	list, _ := ts.listed()
	p := list["broken"]
	if p.Status != StatusFailed || p.Failure == nil || p.Failure.Stage != "analysis" || p.Failure.Reason != "fail-once analyzer: the analyzer found no fencers" {
		t.Errorf("broken listed as %+v", p)
	}
	var detail struct {
		Status string     `json:"status"`
		Files  []FileInfo `json:"files"`
	}
	ts.getJSON(PathSessions+"/broken", &detail)
	names := fmt.Sprint(detail.Files)
	if detail.Status != StatusFailed || !strings.Contains(names, FailureFileName) || !strings.Contains(names, "video.avi") {
		t.Errorf("GET /api/sessions/broken: %+v", detail)
	}
}

// TestReviewLogin: with a token, the API wants it as the header or as
// the cookie POST /api/login sets for it, which never holds the token; the
// pages themselves hold no data and are served to anyone.
func TestReviewLogin(t *testing.T) {
	const token = "club-secret-1"
	ts := startServer(t, func(c *Config) { c.Token = token })
	ts.header = http.Header{}
	status, _, body := ts.call("GET", PathSessions, "", nil)
	refusedWith(t, "no token", status, body, http.StatusUnauthorized, `missing or wrong token: log in on the page with the server's token (POST /api/login), or send the header "Authorization: Bearer <token>"`)
	for _, p := range []string{"/", "/sessions/x", "/static/app.css", "/static/session.js"} {
		if status, h, _ := ts.call("GET", p, "", nil); status != http.StatusOK || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("GET %s: %d %v", p, status, h)
		}
	}
	status, _, body = ts.call("POST", PathLogin, `{"token":"club-secret-2"}`, nil)
	refusedWith(t, "wrong token", status, body, http.StatusUnauthorized, "wrong token: give the server's token (referee serve --token, REFEREE_TOKEN)")
	status, h, _ := ts.call("POST", PathLogin, `{"token":"`+token+`"}`, nil)
	cookie := h.Get("Set-Cookie")
	if status != http.StatusNoContent || !strings.Contains(cookie, AuthCookie+"=") || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") || strings.Contains(cookie, token) {
		t.Fatalf("login: %d, cookie %q", status, cookie)
	}
	value := strings.SplitN(strings.SplitN(cookie, ";", 2)[0], "=", 2)[1]
	if status, _, body := ts.call("GET", PathSessions, "", http.Header{"Cookie": {AuthCookie + "=" + value}}); status != http.StatusOK {
		t.Errorf("with the cookie: %d %s", status, body)
	}
	if status, _, _ := ts.call("GET", PathSessions, "", http.Header{"Cookie": {AuthCookie + "=" + value[:len(value)-1] + "0"}}); status != http.StatusUnauthorized {
		t.Errorf("with a forged cookie: %d", status)
	}
	if status, _, _ := ts.call("GET", PathSessions, "", http.Header{"Authorization": {"Bearer " + token}}); status != http.StatusOK {
		t.Errorf("with the header: %d", status)
	}
	if strings.Contains(ts.logs.String(), token) {
		t.Error("the token is in the log")
	}
}

// TestReviewChangeRetried: the change a cluster's compare-and-set applies
// for a review, tried again on what its first try stored (the store
// applied it, its answer was lost), gives that back unchanged: one entry,
// no doubled history; another request on it keeps the first in history.
func TestReviewChangeRetried(t *testing.T) {
	call, referee := "left", "Ann"
	var rev Review
	change := reviewChange("box1", reviewRequest{Call: &call, Referee: &referee}, "req-1", &rev)
	first, err := change(nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := change(first)
	if err != nil || !bytes.Equal(again, first) || rev.Call != "left" || len(rev.History) != 0 {
		t.Errorf("retried change: %s, %v, review %+v; want the first unchanged", again, err, rev)
	}
	call2, referee2 := "right", "Bob"
	var next Review
	second, err := reviewChange("box1", reviewRequest{Call: &call2, Referee: &referee2}, "req-2", &next)(first)
	if err != nil || next.Call != "right" || len(next.History) != 1 || next.History[0].Referee != "Ann" {
		t.Errorf("a second request: %s, %v; want Bob's with Ann's in its history", second, err)
	}
}

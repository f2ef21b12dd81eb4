package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"testing"

	"github.com/referee-project/referee/protocol"
)

// ready returns the status and the body of GET /readyz.
func (ts *testServer) ready() (int, readiness) {
	ts.t.Helper()
	status, _, body := ts.request("GET", PathReady, "")
	var r readiness
	if err := json.Unmarshal(body, &r); err != nil {
		ts.t.Fatalf("GET /readyz: %d %q: %v", status, body, err)
	}
	return status, r
}

// checkReady fails t unless GET /readyz answers status with reasons (none:
// ready), and GET /health 200 all the same.
func (ts *testServer) checkReady(when string, status int, reasons ...string) {
	ts.t.Helper()
	got, r := ts.ready()
	want := readiness{Status: "ready"}
	if status != http.StatusOK {
		want = readiness{Status: "not ready", Reasons: reasons}
	}
	if got != status || !reflect.DeepEqual(r, want) {
		ts.t.Errorf("%s: GET /readyz %d %+v, want %d %+v", when, got, r, status, want)
	}
	if h := ts.health(); h.Status != "ok" {
		ts.t.Errorf("%s: /health %+v", when, h)
	}
}

// TestReadyz: /readyz answers 200 while a new session would be taken, and
// 503 with the reason at the spool disk limit and at the session limit,
// without a token; /health stays 200 throughout. (Draining is in
// TestGracefulShutdown.)
func TestReadyz(t *testing.T) {
	f := newFrames(t, testWidth, testHeight)
	limit := int64(2*spoolHeaderSize + len(f.jpeg(0)) + len(f.jpeg(1)))
	ts := startServer(t, func(c *Config) {
		c.MaxSessions, c.MaxSpoolBytes, c.Token = 2, limit, "secret-token-of-this-test"
	})
	ts.checkReady("new server", http.StatusOK)

	full, _ := ts.startedWithFrames("full", 2)
	ts.checkReady("spools full", http.StatusServiceUnavailable,
		fmt.Sprintf("at the spool disk limit: the spools hold %d bytes, the limit is %d (max spool bytes)", limit, limit))
	full.complete("full", 2)
	ts.checkReady("spool dropped", http.StatusOK)

	a, b := ts.dial(), ts.dial()
	a.startV1("a")
	ts.checkReady("one session of two", http.StatusOK)
	b.startV1("b")
	ts.checkReady("two sessions of two", http.StatusServiceUnavailable,
		"at the session limit: 2 of 2 streaming sessions active (max streaming sessions)")
	a.send(protocol.SessionAbort{SessionID: "a", Reason: "test"})
	ts.logs.WaitFor(t, `msg="removed session"`, "session_id=a")
	ts.checkReady("a session aborted", http.StatusOK)
}

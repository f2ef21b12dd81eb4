package server

import (
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/referee-project/referee/server/servertest"

	"github.com/gorilla/websocket"

	"github.com/referee-project/referee/protocol"
)

// certPool returns a pool holding the PEM certificate in file.
func certPool(t testing.TB, file string) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatalf("no certificate in %s", file)
	}
	return pool
}

// request sends a request with the given Authorization header (none if
// "") and returns the status and body.
func (ts *testServer) request(method, path, auth string) (int, http.Header, []byte) {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.base+path, strings.NewReader(""))
	if err != nil {
		ts.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := ts.http.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// TestToken: with a token, every endpoint but /health, /readyz and the
// pages answers 401 with a JSON error unless the request carries it; the
// stream also takes it as a query parameter.
func TestToken(t *testing.T) {
	const token = "club-secret-1"
	ts := startServer(t, func(c *Config) { c.Token = token })
	wantUnauthorized := func(what string, status int, h http.Header, body []byte) {
		t.Helper()
		m, err := protocol.Decode(body)
		e, ok := m.(protocol.Error)
		if status != http.StatusUnauthorized || err != nil || !ok || e.ErrorCode != protocol.CodeUnauthorized ||
			!strings.Contains(e.ErrorMessage, `send the header "Authorization: Bearer <token>"`) || h.Get("WWW-Authenticate") != `Bearer realm="referee"` {
			t.Errorf("%s: %d %v %s, want 401 with an UNAUTHORIZED error", what, status, h, body)
		}
	}
	for _, tc := range []struct{ method, path string }{{"GET", PathStats}, {"POST", PathAnalyze}, {"GET", PathMetrics}, {"GET", protocol.Path}} {
		for _, auth := range []string{"", "Bearer club-secret-2", "Bearer " + token + "x", "Basic " + token, token} {
			status, h, body := ts.request(tc.method, tc.path, auth)
			wantUnauthorized(tc.method+" "+tc.path+" with "+auth, status, h, body)
		}
	}
	if status, _, body := ts.request("GET", PathHealth, ""); status != http.StatusOK {
		t.Errorf("/health without the token: %d %s, want 200", status, body)
	}
	for _, auth := range []string{"Bearer " + token, "bearer " + token} {
		if status, _, body := ts.request("GET", PathStats, auth); status != http.StatusOK {
			t.Errorf("stats with %q: %d %s", auth, status, body)
		}
	}
	if status, _, body := ts.request("GET", PathStats+"?token="+token, ""); status != http.StatusUnauthorized {
		t.Errorf("stats with the token as a query parameter: %d %s, want 401 (only the stream takes it there)", status, body)
	}

	ws, resp, err := websocket.DefaultDialer.Dial(ts.url, nil)
	if err == nil {
		ws.Close()
		t.Fatal("a stream without the token was accepted")
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantUnauthorized("stream dial", resp.StatusCode, resp.Header, body)
	ts.logs.WaitFor(t, `msg="refused a request without a valid token"`, "path=/stream")
	if strings.Contains(ts.logs.String(), token) {
		t.Error("the log holds the token")
	}

	// The header (ts.dial) and the query parameter both open a stream.
	checkResult(t, ts.streamV1("", 2), seq(2))
	ws, resp, err = websocket.DefaultDialer.Dial(ts.url+"?token="+token, nil)
	if err != nil {
		t.Fatalf("dial with ?token=: %v", err)
	}
	resp.Body.Close()
	c := &wsClient{t: t, ws: ws}
	defer ws.Close()
	c.startV1("by-query")
}

// TestTLS: with a certificate and key the server speaks HTTPS and WSS
// only, and streams a whole session.
func TestTLS(t *testing.T) {
	certFile, keyFile := servertest.SelfSignedCert(t)
	ts := startServer(t, func(c *Config) { c.TLSCertFile, c.TLSKeyFile = certFile, keyFile })
	if !strings.HasPrefix(ts.base, "https://") {
		t.Fatalf("base %s", ts.base)
	}
	ts.logs.WaitFor(t, `msg=listening`, "tls=true")
	ts.checkServing()
	plain := &http.Client{Timeout: 10 * time.Second}
	if resp, err := plain.Get("http://" + ts.srv.Addr() + PathHealth); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP answered 200 on a TLS server")
		}
	}
	if _, err := New(Config{DataDir: t.TempDir(), TLSCertFile: certFile}); err == nil || !strings.Contains(err.Error(), "give both or neither") {
		t.Errorf("New with a certificate and no key: %v", err)
	}
	var te *TLSError
	if _, err := New(Config{DataDir: t.TempDir(), TLSCertFile: keyFile, TLSKeyFile: keyFile}); !errors.As(err, &te) || te.Cert != keyFile || !strings.HasPrefix(err.Error(), "server configuration: load the TLS certificate "+keyFile+" and key "+keyFile+": ") {
		t.Errorf("New with a key for a certificate: %v", err)
	}
}

// TestOrigins: browser pages of this server and of the allowed origins
// may stream; others are answered 403 before the upgrade.
func TestOrigins(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.AllowedOrigins = []string{"https://club.example"} })
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + ts.srv.Addr(), true},
		{"https://club.example", true},
		{"HTTPS://CLUB.EXAMPLE", true},
		{"https://evil.example", false},
		{"https://club.example.evil.example", false},
		{"null", false},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		ws, resp, err := websocket.DefaultDialer.Dial(ts.url, h)
		if tc.ok {
			if err != nil {
				t.Errorf("origin %q refused: %v", tc.origin, err)
				continue
			}
			ws.Close()
			continue
		}
		if err == nil {
			ws.Close()
			t.Errorf("origin %q accepted", tc.origin)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m, _ := protocol.Decode(body)
		if e, ok := m.(protocol.Error); resp.StatusCode != http.StatusForbidden || !ok || !strings.Contains(e.ErrorMessage, "add its origin to --allowed-origins") {
			t.Errorf("origin %q: %d %s, want 403 with an error", tc.origin, resp.StatusCode, body)
		}
	}
	ts.logs.WaitFor(t, `msg="refused a connection from a browser page of another origin"`, "origin=https://evil.example")
	if _, err := New(Config{DataDir: t.TempDir(), AllowedOrigins: []string{"club.example"}}); err == nil || !strings.Contains(err.Error(), `allowed origin "club.example": want scheme://host[:port]`) {
		t.Errorf("New with an origin without a scheme: %v", err)
	}
	ts.checkServing()
}

package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestDialRefusalSaysWhy: a server that refuses the upgrade with a JSON
// error (a referee server at its per-address or memory limit) is quoted
// with what to do, as a connection error a later attempt may clear; a
// server that answers otherwise is asked about.
func TestDialRefusalSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		kind   Kind
		want   string
	}{
		{"too many connections", http.StatusTooManyRequests,
			`{"type":"error","session_id":null,"error_code":"LIMIT_EXCEEDED","error_message":"too many connections from 127.0.0.1: 2 open, the limit is 2 (max connections per address); close one or try again later","recoverable":false}`,
			KindConnection, "the server refused the connection (429 Too Many Requests): LIMIT_EXCEEDED: too many connections from 127.0.0.1: 2 open, the limit is 2 (max connections per address); close one or try again later (close other connections from this address, or try again in 5 s)"},
		{"memory limit", http.StatusServiceUnavailable,
			`{"type":"error","session_id":null,"error_code":"LIMIT_EXCEEDED","error_message":"memory limit reached","recoverable":false}`,
			KindConnection, "the server cannot take the connection now (503 Service Unavailable): LIMIT_EXCEEDED: memory limit reached (try again in 5 s)"},
		{"not a referee server", http.StatusNotFound, "404 page not found", KindConnection, "the server answered 404 Not Found (check that the URL points at a referee server)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "5")
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/stream"
			_, err := dial(context.Background(), link{url: url, timeout: 5 * time.Second, keepAlive: 5 * time.Second})
			var e *Error
			if !errors.As(err, &e) || e.Kind != tc.kind || err.Error() != "Cannot open "+url+": "+tc.want {
				t.Errorf("dial: %v (kind %v)\nwant: Cannot open %s: %s (kind %v)", err, e, url, tc.want, tc.kind)
			}
		})
	}
}

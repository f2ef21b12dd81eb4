package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/referee-project/referee/protocol"
)

// TokenQueryParam is the query parameter that carries the token on the
// WebSocket endpoint for clients that cannot set the Authorization header
// (browsers). Beware that URLs end up in proxies' logs: prefer the header.
const TokenQueryParam = "token"

// bearerPrefix opens the Authorization header that carries the token.
const bearerPrefix = "Bearer "

// authorized reports whether r carries the server's token, or the server
// has none. The comparison takes the same time whatever the token sent.
func (s *Server) authorized(r *http.Request, query bool) bool {
	if s.cfg.Token == "" {
		return true
	}
	var got string
	if h := r.Header.Get("Authorization"); len(h) > len(bearerPrefix) && strings.EqualFold(h[:len(bearerPrefix)], bearerPrefix) {
		got = h[len(bearerPrefix):]
	} else if query {
		got = r.URL.Query().Get(TokenQueryParam)
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(s.cfg.Token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// withToken answers 401 with a JSON error to a request to h without the
// token; query says whether the token may come as a query parameter.
func (s *Server) withToken(h http.HandlerFunc, query bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r, query) {
			s.log.Warn("refused a request without a valid token", "remote", r.RemoteAddr, "path", r.URL.Path)
			s.metrics.refused.WithLabelValues("unauthorized").Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="referee"`)
			s.writeError(w, nil, &httpError{http.StatusUnauthorized, protocol.CodeUnauthorized,
				"missing or wrong token: send the header \"Authorization: Bearer <token>\" with the server's token (referee stream --token, REFEREE_TOKEN)"})
			return
		}
		h(w, r)
	}
}

// originAllowed reports whether a browser page from r's Origin may open a
// WebSocket connection: pages of this server (gorilla's same-origin rule),
// the allowed origins, and programs that send no Origin.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if u, err := url.Parse(origin); err == nil && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, allowed := range s.cfg.AllowedOrigins {
		if allowed == "*" || strings.EqualFold(strings.TrimSuffix(allowed, "/"), origin) {
			return true
		}
	}
	return false
}

// loadTLS returns the TLS configuration of the certificate and key files,
// or nil when none is configured.
func loadTLS(cfg Config) (*tls.Config, error) {
	if cfg.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return nil, &TLSError{Cert: cfg.TLSCertFile, Key: cfg.TLSKeyFile, Err: err}
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// TLSError is New's error when Config.TLSCertFile and Config.TLSKeyFile
// are not a PEM certificate and its private key.
type TLSError struct {
	Cert, Key string
	Err       error
}

func (e *TLSError) Error() string {
	return fmt.Sprintf("load the TLS certificate %s and key %s: %v", e.Cert, e.Key, e.Err)
}

func (e *TLSError) Unwrap() error { return e.Err }

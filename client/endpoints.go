package client

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/referee-project/referee/protocol"
)

// Endpoints are the URLs of one referee server.
type Endpoints struct {
	// Base is the server's base URL, http or https, without a trailing
	// slash: "http://host:8080" or "https://host/referee".
	Base string
	// Stream is the WebSocket URL of the streaming endpoint:
	// "ws://host:8080/stream", "wss://host/referee/stream".
	Stream string
	// Health is the URL of GET /health.
	Health string
}

// ResolveEndpoints derives a server's URLs from what a user types as SERVER:
// a base URL ("http://host:8080", "https://host/prefix"), a bare "host:port"
// (taken as http), or the WebSocket URL itself ("ws://host:8080/stream").
// A path prefix is kept; a query, a fragment or user credentials are refused
// so that nothing the user typed is silently dropped.
func ResolveEndpoints(server string) (Endpoints, error) {
	s := strings.TrimSpace(server)
	if s == "" {
		return Endpoints{}, fmt.Errorf("server URL is empty; give the referee server as http://HOST:PORT")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return Endpoints{}, fmt.Errorf("server URL %q: %w; give it as http://HOST:PORT", server, err)
	}
	var httpScheme, wsScheme string
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		httpScheme, wsScheme = "http", "ws"
	case "https", "wss":
		httpScheme, wsScheme = "https", "wss"
	default:
		return Endpoints{}, fmt.Errorf("server URL %q: scheme %q, want http, https, ws or wss", server, u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return Endpoints{}, fmt.Errorf("server URL %q has no host; give it as http://HOST:PORT", server)
	}
	if u.User != nil {
		return Endpoints{}, fmt.Errorf("server URL %q holds credentials; remove them", server)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return Endpoints{}, fmt.Errorf("server URL %q has a query or fragment; give only scheme, host, port and path prefix", server)
	}
	prefix := strings.TrimRight(u.EscapedPath(), "/")
	if wsScheme == strings.ToLower(u.Scheme) {
		// A WebSocket URL names the endpoint itself.
		prefix = strings.TrimSuffix(prefix, protocol.Path)
	}
	host := u.Host
	return Endpoints{
		Base:   httpScheme + "://" + host + prefix,
		Stream: wsScheme + "://" + host + prefix + protocol.Path,
		Health: httpScheme + "://" + host + prefix + "/health",
	}, nil
}

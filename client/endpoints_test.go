package client

import (
	"strings"
	"testing"
)

func TestResolveEndpoints(t *testing.T) {
	for _, tc := range []struct {
		in                   string
		base, stream, health string
		err                  string
	}{
		{in: "http://server:8080", base: "http://server:8080", stream: "ws://server:8080/stream", health: "http://server:8080/health"},
		{in: "http://server:8080/", base: "http://server:8080", stream: "ws://server:8080/stream", health: "http://server:8080/health"},
		{in: "https://referee.club.org", base: "https://referee.club.org", stream: "wss://referee.club.org/stream", health: "https://referee.club.org/health"},
		{in: "https://club.org/referee/", base: "https://club.org/referee", stream: "wss://club.org/referee/stream", health: "https://club.org/referee/health"},
		{in: "HTTP://Server:8080", base: "http://Server:8080", stream: "ws://Server:8080/stream", health: "http://Server:8080/health"},
		{in: "server:8080", base: "http://server:8080", stream: "ws://server:8080/stream", health: "http://server:8080/health"},
		{in: "127.0.0.1:8080", base: "http://127.0.0.1:8080", stream: "ws://127.0.0.1:8080/stream", health: "http://127.0.0.1:8080/health"},
		{in: "[::1]:8080", base: "http://[::1]:8080", stream: "ws://[::1]:8080/stream", health: "http://[::1]:8080/health"},
		{in: " localhost:9000 ", base: "http://localhost:9000", stream: "ws://localhost:9000/stream", health: "http://localhost:9000/health"},
		{in: "ws://server:8080/stream", base: "http://server:8080", stream: "ws://server:8080/stream", health: "http://server:8080/health"},
		{in: "wss://club.org/referee/stream", base: "https://club.org/referee", stream: "wss://club.org/referee/stream", health: "https://club.org/referee/health"},
		{in: "http://club.org/stream", base: "http://club.org/stream", stream: "ws://club.org/stream/stream", health: "http://club.org/stream/health"},
		{in: "", err: "server URL is empty"},
		{in: "ftp://server:21", err: `scheme "ftp", want http, https, ws or wss`},
		{in: "http://", err: "has no host"},
		{in: "http://:8080", err: "has no host"},
		{in: "http://user:pw@server:8080", err: "holds credentials"},
		{in: "http://server:8080/?token=x", err: "has a query or fragment"},
		{in: "http://server:8080/#top", err: "has a query or fragment"},
		{in: "http://server:port", err: "invalid port"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			ep, err := ResolveEndpoints(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ResolveEndpoints(%q) = %+v, %v; want an error with %q", tc.in, ep, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ResolveEndpoints(%q): %v", tc.in, err)
			}
			if want := (Endpoints{Base: tc.base, Stream: tc.stream, Health: tc.health}); ep != want {
				t.Errorf("ResolveEndpoints(%q)\n got %+v\nwant %+v", tc.in, ep, want)
			}
		})
	}
}

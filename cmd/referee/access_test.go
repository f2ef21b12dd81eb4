package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/referee-project/referee/server/servertest"

	"github.com/referee-project/referee/server"
)

// lastLine is the last line of a command's stderr: the error it exits with.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestStreamToken streams to a server that requires a token: with the
// token as a flag or from REFEREE_TOKEN it completes; without it or with
// a wrong one the client exits 1 naming the flag, and the server never
// creates a session nor logs the token.
func TestStreamToken(t *testing.T) {
	const token = "club-secret-7"
	_, url, logs := startServer(t, func(c *server.Config) { c.Token = token })
	video := counterVideo(t, ".avi", 10, 320, 240)
	if code, _, errs := run(t, "stream", url, "--video", video, "--signal", sampleSignal, "--token", token, "--session-id", "flag"); code != exitOK {
		t.Fatalf("with --token: exit %d\n%s", code, errs)
	}
	t.Setenv("REFEREE_TOKEN", token)
	if code, _, errs := run(t, "stream", url, "--video", video, "--signal", sampleSignal, "--session-id", "env"); code != exitOK {
		t.Fatalf("with REFEREE_TOKEN: exit %d\n%s", code, errs)
	}
	t.Setenv("REFEREE_TOKEN", "")
	const want = "referee: the server refused the token (401): check --token / REFEREE_TOKEN"
	for _, args := range [][]string{
		{"--token", "wrong"},
		{"--token", token + "x"},
		{},
	} {
		code, _, errs := run(t, append([]string{"stream", url, "--video", video, "--signal", sampleSignal, "--session-id", "refused"}, args...)...)
		if code != exitFailure || lastLine(errs) != want {
			t.Errorf("stream %q: exit %d, last line %q; want exit 1 and %q", args, code, lastLine(errs), want)
		}
	}
	if n := strings.Count(logs.String(), `msg="created session"`); n != 2 {
		t.Errorf("%d sessions created, want the 2 with the token", n)
	}
	if strings.Contains(logs.String(), "session_id=refused") {
		t.Errorf("a refused client reached a session:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), token) {
		t.Error("the server logged the token")
	}
}

// TestStreamTLS streams to an https server with a self-signed certificate:
// with it as --ca the stream completes; without it the client exits 3
// saying the certificate is not trusted and naming --ca; a --ca file that
// holds no certificate is a usage error.
func TestStreamTLS(t *testing.T) {
	certFile, keyFile := servertest.SelfSignedCert(t)
	srv, _, _ := startServer(t, func(c *server.Config) { c.TLSCertFile, c.TLSKeyFile = certFile, keyFile })
	url := "https://" + srv.Addr()
	video := counterVideo(t, ".avi", 10, 320, 240)
	out := filepath.Join(t.TempDir(), "result.json")
	if code, _, errs := run(t, "stream", url, "--video", video, "--signal", sampleSignal, "--ca", certFile, "--output", out); code != exitOK {
		t.Fatalf("with --ca: exit %d\n%s", code, errs)
	}
	data, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(data), `"status": "success"`) {
		t.Errorf("result %s: %v", data, err)
	}
	code, _, errs := run(t, "stream", url, "--video", video, "--signal", sampleSignal)
	if want := "the server's TLS certificate is not trusted"; code != exitUnavailable || !strings.Contains(lastLine(errs), want) || !strings.Contains(lastLine(errs), "--ca FILE") {
		t.Errorf("without --ca: exit %d, last line %q; want exit 3 and %q naming --ca", code, lastLine(errs), want)
	}
	code, _, errs = run(t, "stream", url, "--video", video, "--signal", sampleSignal, "--ca", keyFile)
	if want := "referee: CA file " + keyFile + " holds no PEM certificate"; code != exitUsage || !strings.HasPrefix(lastLine(errs), want) {
		t.Errorf("--ca with a key: exit %d, last line %q; want exit 2 and %q", code, lastLine(errs), want)
	}
}

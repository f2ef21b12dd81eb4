package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUsageErrorsExit2 covers the usage errors cobra reports itself: each
// exits 2 with one line saying what was wrong.
func TestUsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `referee: unknown command "bogus" (see referee --help for the commands)`},
		{[]string{"serv", "--port", "1"}, `referee: unknown command "serv"; did you mean serve? (see referee --help for the commands)`},
		{[]string{"gen-test-video", "a.avi", "b", "c"}, "referee: gen-test-video takes at most 1 argument(s), the video to write; got 3: a.avi b c (see referee gen-test-video --help)"},
		{[]string{"version", "now"}, "referee: version takes 0 argument(s), none; got 1 (see referee version --help)"},
		{[]string{"completion", "bash", "extra"}, `referee: unknown command "extra" for "referee completion bash"`},
		{[]string{"--log-format", "yaml", "version"}, `referee: log format "yaml": want text or json`},
		{[]string{"worker"}, "referee: worker needs --nats, the NATS JetStream servers the serve nodes submit to"},
		{[]string{"worker", "--nats", "nats://127.0.0.1:1", "--nats-replicas", "7"}, "referee: NATS settings: replicas 7: want 1 to 5 (check the --nats flags or their REFEREE_* variables)"},
		{[]string{"serve", "--nats", "nats://127.0.0.1:1", "--nats-tls-cert", "c.pem"}, "referee: NATS settings: NATS TLS client certificate and key: give both or neither (check the --nats flags or their REFEREE_* variables)"},
		{[]string{"analyze", "--tracks", "t.json", "--signal", "s.txt", "--analyzer", "pose"}, "referee: --analyzer with --tracks: tracks are decided by the right-of-way engine alone, and --analyzer only says how a video becomes tracks; drop it, or give --video"},
		{[]string{"analyze", "--tracks", "t.json", "--signal", "s.txt", "--pose-timeout", "1m", "--analyzer-cmd", "rw {out}"}, "referee: --analyzer-cmd, --pose-timeout with --tracks: tracks are decided by the right-of-way engine alone, and --analyzer-cmd, --pose-timeout only says how a video becomes tracks; drop it, or give --video"},
		{[]string{"serve", "--data-dir", dir, "--cluster-cache-bytes", "-1"}, "referee: server configuration: cluster cache bytes -1: want a positive number (check the serve flags or their REFEREE_* variables)"},
		{[]string{"serve", "--data-dir", dir, "--tls-cert", cert, "--tls-key", key}, "referee: server configuration: load the TLS certificate " + cert + " and key " + key + ": open " + cert + ": no such file or directory (check --tls-cert and --tls-key: PEM files of a certificate and its private key)"},
	} {
		code, out, errs := run(t, c.args...)
		if code != exitUsage || errs != c.want+"\n" || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.args, code, out, errs, c.want)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, errs := run(t, "version")
	if code != exitOK || !strings.HasPrefix(out, "referee "+version+" (go") || !strings.Contains(out, ", OpenCV 4.") || strings.Count(out, "\n") != 1 {
		t.Errorf("version: exit %d, %q %q", code, out, errs)
	}
	code, out2, errs := run(t, "--version")
	if code != exitOK || out2 != out {
		t.Errorf("--version: exit %d, %q %q; want %q", code, out2, errs, out)
	}
}

func TestLogFormatJSON(t *testing.T) {
	var buf bytes.Buffer
	l, err := newLogger(&buf, "info", "json", false)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("Connected", "session_id", "s1")
	var line struct {
		Level     string `json:"level"`
		Msg       string `json:"msg"`
		SessionID string `json:"session_id"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line.Level != "INFO" || line.Msg != "Connected" || line.SessionID != "s1" {
		t.Errorf("json log line %q: %v", buf.String(), err)
	}
}

// TestCompletion asks the shell-completion entry point, as bash and zsh
// do, for the values of enum flags and the kind of file flags.
func TestCompletion(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"stream", "--protocol", ""}, "v2\nv1\n:4\n"},
		{[]string{"analyze", "--analyzer", ""}, "motion\nsignal\nexternal\npose\n:4\n"},
		{[]string{"gen-test-video", "--pattern", ""}, "noise\ncounter\nfencers\n:4\n"},
		{[]string{"--log-format", ""}, "text\njson\n:4\n"},
		// Extensions to offer first (directive 8, filter by extension).
		{[]string{"stream", "--signal", ""}, "txt\n:8\n"},
		{[]string{"--config", ""}, "yaml\nyml\n:8\n"},
		// Directories only (directive 16).
		{[]string{"serve", "--data-dir", ""}, ":16\n"},
	} {
		code, out, errs := run(t, append([]string{"__complete"}, c.args...)...)
		// The completion ends with a "Completion ended with directive"
		// line on stderr, not stdout.
		if code != exitOK || out != c.want {
			t.Errorf("complete %q: exit %d, %q (stderr %q); want %q", c.args, code, out, errs, c.want)
		}
	}
	code, out, _ := run(t, "__complete", "gen-test-video", "--scenario", "")
	for _, s := range []string{"left-attack-right-pause\tcall: left\n", "simultaneous-attack\tcall: simultaneous\n", ":4\n"} {
		if code != exitOK || !strings.Contains(out, s) {
			t.Errorf("--scenario completion %q lacks %q", out, s)
		}
	}
}

// TestManPages writes the man pages as "make man" does.
func TestManPages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man")
	code, out, errs := run(t, "man", dir)
	if code != exitOK || out != "Man pages written to "+dir+"\n" {
		t.Fatalf("exit %d: %q %q", code, out, errs)
	}
	for _, name := range []string{"referee.1", "referee-stream.1", "referee-serve.1", "referee-gen-test-video.1", "referee-version.1"} {
		page := readFile(t, filepath.Join(dir, name))
		if !strings.HasPrefix(page, ".nh\n.TH \"REFEREE\" \"1\"") || !strings.Contains(page, ".SH DESCRIPTION") {
			t.Errorf("%s does not read as a man page:\n%.300s", name, page)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "referee-man.1")); err == nil {
		t.Errorf("the hidden man command got a page")
	}
	if !strings.Contains(readFile(t, filepath.Join(dir, "referee-stream.1")), `\fB--protocol\fP="v2"`) {
		t.Errorf("referee-stream.1 does not list --protocol")
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestUsageErrorsExit2 covers the usage errors cobra reports itself: each
// exits 2 with one line saying what was wrong.
func TestUsageErrorsExit2(t *testing.T) {
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

package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// runTerminal is run with stdout taken for a terminal.
func runTerminal(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errw bytes.Buffer
	code := execute(args, streams{In: strings.NewReader(""), Out: &out, Err: &errw, OutIsTerminal: true})
	return code, out.String(), errw.String()
}

// TestStreamPrintsASummaryOnATerminal: a person at a terminal reads who
// scored and why; --json and a pipe get the result JSON.
func TestStreamPrintsASummaryOnATerminal(t *testing.T) {
	_, url, _ := startServer(t, nil)
	video := counterVideo(t, ".avi", 10, 320, 240)

	code, out, errs := runTerminal(t, "stream", url, "--video", video, "--signal", sampleSignal, "--session-id", "summary")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(out, "\n")
	if len(lines) != 6 || lines[0] != "winner:     right" || lines[1] != "confidence: 1.00" || !strings.HasPrefix(lines[2], "reason:     ") ||
		!strings.HasPrefix(lines[3], "artifacts:  ") || !strings.HasSuffix(lines[3], string(filepath.Separator)+"summary") ||
		!strings.Contains(lines[4], "result.json") || !strings.Contains(lines[4], "video.avi") || lines[5] != "" {
		t.Errorf("summary on a terminal:\n%s", out)
	}

	code, out, errs = runTerminal(t, "stream", url, "--video", video, "--signal", sampleSignal, "--session-id", "asjson", "--json")
	var res e2eResult
	if code != exitOK || json.Unmarshal([]byte(out), &res) != nil || res.SessionID != "asjson" {
		t.Errorf("--json on a terminal: exit %d, %q %q", code, out, errs)
	}
	code, out, errs = run(t, "stream", url, "--video", video, "--signal", sampleSignal, "--session-id", "piped")
	if code != exitOK || json.Unmarshal([]byte(out), &res) != nil || res.SessionID != "piped" {
		t.Errorf("stdout not a terminal: exit %d, %q %q", code, out, errs)
	}
}

// TestDefaultSessionIDsDoNotCollide starts two clients for the same phrase
// at once without --session-id: both succeed, and each result names its
// own artifacts.
func TestDefaultSessionIDsDoNotCollide(t *testing.T) {
	_, url, _ := startServer(t, nil)
	video := counterVideo(t, ".avi", 30, 320, 240)
	var wg sync.WaitGroup
	type outcome struct {
		code      int
		out, errs string
	}
	outs := make([]outcome, 2)
	for i := range outs {
		wg.Go(func() {
			code, out, errs := run(t, "stream", url, "--video", video, "--signal", sampleSignal, "--fps", "60")
			outs[i] = outcome{code, out, errs}
		})
	}
	wg.Wait()
	ids := map[string]bool{}
	for _, o := range outs {
		var res e2eResult
		if o.code != exitOK || json.Unmarshal([]byte(o.out), &res) != nil {
			t.Fatalf("exit %d: %s", o.code, o.errs)
		}
		ids[res.SessionID] = true
		if filepath.Base(res.ArtifactDir) != res.SessionID || filepath.Dir(res.Artifacts.ResultJSON) != res.ArtifactDir {
			t.Errorf("session %s: artifacts in %s, result.json at %s", res.SessionID, res.ArtifactDir, res.Artifacts.ResultJSON)
		}
		data, err := os.ReadFile(res.Artifacts.ResultJSON)
		var stored e2eResult
		if err != nil || json.Unmarshal(data, &stored) != nil || stored.SessionID != res.SessionID {
			t.Errorf("session %s: its result.json is another session's (%s): %v", res.SessionID, stored.SessionID, err)
		}
	}
	if len(ids) != 2 {
		t.Errorf("two clients got the ids %v", ids)
	}
}

// TestStreamOutputKeepsStdout: --output adds the file and leaves stdout as
// it is without it: the summary on a terminal, the result JSON in a pipe
// or with --json, the same bytes as the file's.
func TestStreamOutputKeepsStdout(t *testing.T) {
	_, url, _ := startServer(t, nil)
	video := counterVideo(t, ".avi", 10, 320, 240)
	dir := t.TempDir()
	stream := func(term bool, id string, extra ...string) (string, []byte) {
		t.Helper()
		args := append([]string{"stream", url, "--video", video, "--signal", sampleSignal, "--session-id", id}, extra...)
		var out, errw bytes.Buffer
		if code := execute(args, streams{In: strings.NewReader(""), Out: &out, Err: &errw, OutIsTerminal: term}); code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errw.String())
		}
		if len(extra) == 0 {
			return out.String(), nil
		}
		file, err := os.ReadFile(extra[len(extra)-1])
		must(t, err)
		return out.String(), file
	}

	plain, _ := stream(true, "plain")
	out, file := stream(true, "withfile", "--output", filepath.Join(dir, "t.json"))
	if want := strings.ReplaceAll(plain, "plain", "withfile"); out != want || !strings.HasPrefix(want, "winner:     right\n") {
		t.Errorf("-o on a terminal printed\n%s\nwant, as without -o,\n%s", out, want)
	}
	var res e2eResult
	if json.Unmarshal(file, &res) != nil || res.SessionID != "withfile" || !strings.HasPrefix(string(file), "{\n  \"status\": \"success\",\n") {
		t.Errorf("-o on a terminal wrote %q", file)
	}

	out, file = stream(false, "piped", "-o", filepath.Join(dir, "p.json"))
	if out != string(file) || json.Unmarshal(file, &res) != nil || res.SessionID != "piped" {
		t.Errorf("-o in a pipe: stdout %q, the file %q", out, file)
	}
	out, file = stream(true, "asjson", "--json", "-o", filepath.Join(dir, "j.json"))
	if out != string(file) || json.Unmarshal(file, &res) != nil || res.SessionID != "asjson" {
		t.Errorf("--json -o on a terminal: stdout %q, the file %q", out, file)
	}
}

// TestStreamProgressBarQuietsInfoLines: with stderr a terminal, stderr has
// the bars and no info line; with --verbose, the log lines and no bar.
func TestStreamProgressBarQuietsInfoLines(t *testing.T) {
	_, url, _ := startServer(t, nil)
	video := counterVideo(t, ".avi", 10, 320, 240)
	stream := func(extra ...string) string {
		t.Helper()
		args := append([]string{"stream", url, "--video", video, "--signal", sampleSignal}, extra...)
		var out, errw bytes.Buffer
		if code := execute(args, streams{In: strings.NewReader(""), Out: &out, Err: &errw, ErrIsTerminal: true}); code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errw.String())
		}
		return errw.String()
	}
	if errs := stream(); strings.Contains(errs, "level=") || !strings.Contains(errs, "(10/10)") || !strings.Contains(errs, "Processing: analysis") {
		t.Errorf("on a terminal, stderr:\n%s\nwant the bars and no log line", errs)
	}
	if errs := stream("--verbose"); strings.Contains(errs, "(10/10)") || !strings.Contains(errs, `level=INFO msg="Session started successfully"`) ||
		!strings.Contains(errs, `level=INFO msg="Processing complete!"`) {
		t.Errorf("on a terminal with --verbose, stderr:\n%s\nwant the log lines and no bar", errs)
	}
}

// TestStreamReportingRule: a bar only on a terminal without --verbose, and
// then only warnings and errors logged.
func TestStreamReportingRule(t *testing.T) {
	const warnings = "level=WARN msg=warning session_id=s\nlevel=ERROR msg=error session_id=s\n"
	const all = "level=DEBUG msg=debug session_id=s\nlevel=INFO msg=info session_id=s\n" + warnings
	for _, c := range []struct {
		terminal, verbose, bar bool
		want                   string
	}{
		{terminal: true, bar: true, want: warnings},
		{terminal: true, verbose: true, want: all},
		{want: all},
		{verbose: true, want: all},
	} {
		var errw, logs bytes.Buffer
		opts := streamOptions{Err: &errw, ErrIsTerminal: c.terminal, Verbose: c.verbose}
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: dropTime}))
		bar, log := streamReporting(&opts, log)
		log = log.With("session_id", "s")
		log.Debug("debug")
		log.Info("info")
		log.Warn("warning")
		log.Error("error")
		if (bar == io.Writer(&errw)) != c.bar || (bar != nil) != c.bar || logs.String() != c.want {
			t.Errorf("terminal %v, verbose %v: bar %v, logged\n%s\nwant bar %v and\n%s", c.terminal, c.verbose, bar != nil, logs.String(), c.bar, c.want)
		}
	}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

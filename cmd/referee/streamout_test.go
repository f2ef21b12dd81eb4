package main

import (
	"bytes"
	"encoding/json"
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

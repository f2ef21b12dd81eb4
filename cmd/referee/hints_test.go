package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWorkerDataDirThatCannotBeCreated: the worker library says what
// failed; the command adds the flag to check.
func TestWorkerDataDirThatCannotBeCreated(t *testing.T) {
	js := startJetStream(t)
	file := filepath.Join(t.TempDir(), "file")
	must(t, os.WriteFile(file, nil, 0o644))
	code, out, errs := run(t, "worker", "--nats", js.url(), "--data-dir", file, "--log-level", "error")
	want := "referee: create the worker's scratch directory " + filepath.Join(file, "jobs") + ": mkdir " + file +
		": not a directory (check --data-dir and its permissions)\n"
	if code != exitFailure || out != "" || errs != want {
		t.Errorf("worker --data-dir a file: exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errs, exitFailure, want)
	}
}

// TestStreamWithoutATemporaryDirectory: without a writable temporary
// directory the client cannot keep the frames for a resume; the command
// says how to do without, before anything is sent.
func TestStreamWithoutATemporaryDirectory(t *testing.T) {
	video := counterVideo(t, ".avi", 3, 64, 48)
	missing := filepath.Join(t.TempDir(), "missing")
	t.Setenv("TMPDIR", missing)
	code, out, errs := run(t, "stream", "http://127.0.0.1:1", "--video", video, "--signal", sampleSignal, "--log-level", "error")
	prefix := "referee: create the local copy of the frames for resuming: open " + missing + "/referee-frames-"
	suffix := ".journal: no such file or directory (check that the temporary directory is writable, or give --resume-tries 0)\n"
	if code != exitUsage || out != "" || !strings.HasPrefix(errs, prefix) || !strings.HasSuffix(errs, suffix) {
		t.Errorf("stream with TMPDIR %s: exit %d, stdout %q, stderr %q; want exit %d and %q...%q", missing, code, out, errs, exitUsage, prefix, suffix)
	}
}

package main

import (
	"os"
	"path/filepath"
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

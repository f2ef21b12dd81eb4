// Package external is the "external" analyzer: it hands a phrase to a
// command of the operator's choosing (a team's own pose pipeline, say) and
// takes the winner and reason from the JSON result the command writes.
//
// The command runs without a shell: its command line is split into
// arguments with the shell's quoting rules (single and double quotes,
// backslash escapes), so a program or argument with a space is written
// quoted, as in a shell, and the placeholders {video}, {signal} and {out}
// are then replaced inside each argument, so paths with spaces stay one
// argument. It must
// write {"winner": ..., "reason": ...} (and optionally "confidence", 0 to
// 1) to {out} and exit 0 within the timeout; anything else is an error
// carrying the tail of its standard error.
package external

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/shlex"

	"github.com/referee-project/referee/pipeline"
)

// Name is the analyzer's name in pipeline.Job.Analyzers and --analyzer.
const Name = "external"

// DefaultTimeout is the time a command gets when Analyzer.Timeout is 0.
const DefaultTimeout = 2 * time.Minute

// ResultFile is the name of the {out} file in the artifact directory, and
// ArtifactResult its name among the verdict's artifacts.
const (
	ResultFile     = "external_result.json"
	ArtifactResult = "external_result"
)

// stderrTail is how much of the end of the command's standard error an
// error quotes.
const stderrTail = 2048

// Winners are the winner values a command may give.
var Winners = []string{"left", "right", "none", "simultaneous", "undecided"}

// Analyzer runs an external command per phrase.
type Analyzer struct {
	args    []string
	timeout time.Duration
}

var _ pipeline.Analyzer = (*Analyzer)(nil)

// New returns the analyzer for commandLine (e.g. "python3 rw.py --video
// {video} --signal {signal} --out {out}"), run with timeout (0 means
// DefaultTimeout). It fails if the command line does not split (an
// unclosed quote), is empty, or does not use {out}, where the result must
// go.
func New(commandLine string, timeout time.Duration) (*Analyzer, error) {
	args, err := shlex.Split(commandLine)
	if err != nil {
		return nil, fmt.Errorf("external analyzer: the command line %q does not split into arguments as a shell would: %w (check its quotes)", commandLine, err)
	}
	if len(args) == 0 {
		return nil, errors.New("external analyzer: the command line is empty; set --analyzer-cmd")
	}
	if !strings.Contains(commandLine, "{out}") {
		return nil, fmt.Errorf("external analyzer: the command line %q has no {out} placeholder for the result file", commandLine)
	}
	if timeout < 0 {
		return nil, fmt.Errorf("external analyzer: timeout %v is negative", timeout)
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	return &Analyzer{args: args, timeout: timeout}, nil
}

// result is what the command writes to {out}.
type result struct {
	Winner     string   `json:"winner"`
	Reason     string   `json:"reason"`
	Confidence *float64 `json:"confidence"`
}

// Analyze implements pipeline.Analyzer: it runs the command on the
// session's video and signal file and returns its verdict, with the result
// file as the artifact ArtifactResult.
func (a *Analyzer) Analyze(ctx context.Context, in pipeline.AnalysisInput, progress func(float64, string)) (pipeline.Verdict, error) {
	if progress == nil {
		progress = func(float64, string) {}
	}
	out := filepath.Join(in.ArtifactDir, ResultFile)
	if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
		return pipeline.Verdict{}, fmt.Errorf("external analyzer: clear the old result: %w", err)
	}
	repl := strings.NewReplacer("{video}", in.VideoPath, "{signal}", in.SignalPath, "{out}", out)
	args := make([]string, len(a.args))
	for i, s := range a.args {
		args[i] = repl.Replace(s)
	}
	name := filepath.Base(args[0])
	runCtx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, args[0], args[1:]...)
	cmd.Dir = in.ArtifactDir
	var stderr tail
	cmd.Stderr = &stderr
	killGroup(cmd)
	// A grandchild holding stderr open must not keep Wait waiting once the
	// command itself is gone.
	cmd.WaitDelay = time.Second
	progress(0.05, "running "+name)
	start := time.Now()
	err := cmd.Run()
	switch {
	case runCtx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
		return pipeline.Verdict{}, fmt.Errorf("external analyzer %s timed out after %v%s", name, a.timeout, stderr.quote())
	case ctx.Err() != nil:
		return pipeline.Verdict{}, fmt.Errorf("external analyzer %s: %w", name, ctx.Err())
	case err != nil:
		return pipeline.Verdict{}, fmt.Errorf("external analyzer %s failed: %w%s", name, err, stderr.quote())
	}
	progress(0.9, fmt.Sprintf("%s finished in %.1f s", name, time.Since(start).Seconds()))
	data, err := os.ReadFile(out)
	if err != nil {
		return pipeline.Verdict{}, fmt.Errorf("external analyzer %s exited 0 but wrote no result to {out}: %w%s", name, err, stderr.quote())
	}
	var r result
	if err := json.Unmarshal(data, &r); err != nil {
		return pipeline.Verdict{}, fmt.Errorf("external analyzer %s: result %s is not a JSON object with winner and reason: %w", name, out, err)
	}
	if !slices.Contains(Winners, r.Winner) {
		return pipeline.Verdict{}, fmt.Errorf("external analyzer %s: result winner %q is not one of %s", name, r.Winner, strings.Join(Winners, ", "))
	}
	v := pipeline.Verdict{Winner: r.Winner, Reason: r.Reason, Artifacts: map[string]string{ArtifactResult: out}}
	if r.Confidence != nil {
		if !(*r.Confidence >= 0 && *r.Confidence <= 1) {
			return pipeline.Verdict{}, fmt.Errorf("external analyzer %s: result confidence %v is not between 0 and 1", name, *r.Confidence)
		}
		v.Confidence = *r.Confidence
	}
	if v.Reason == "" {
		v.Reason = "decided by " + name
	}
	return v, nil
}

// tail keeps the last stderrTail bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - stderrTail; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// quote returns "; stderr: ..." with the tail, or "" when it is empty.
func (t *tail) quote() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(strings.ToValidUTF8(string(t.buf), "?"))
	if s == "" {
		return ""
	}
	return "; stderr: " + s
}

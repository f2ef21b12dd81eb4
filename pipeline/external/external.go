// Package external is the "external" analyzer: it hands a phrase to a
// command of the operator's choosing (a team's own pose pipeline, say) and
// takes the winner and reason from the JSON result the command writes.
//
// The command runs without a shell: its command line is split on spaces
// and the placeholders {video}, {signal} and {out} are then replaced
// inside each argument, so paths with spaces stay one argument. It must
// write {"winner": ..., "reason": ...} (and optionally "confidence", 0 to
// 1) to {out} and exit 0 within the timeout; anything else is an error
// carrying the tail of its standard error. Command is that way of running
// a program, which the pose analyzer shares.
package external

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

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

// Winners are the winner values a command may give.
var Winners = []string{"left", "right", "none", "simultaneous", "undecided"}

// Analyzer runs an external command per phrase.
type Analyzer struct {
	cmd Command
}

var _ pipeline.Analyzer = (*Analyzer)(nil)

// New returns the analyzer for commandLine (e.g. "python3 rw.py --video
// {video} --signal {signal} --out {out}"), run with timeout (0 means
// DefaultTimeout). The line is split into arguments with a shell's
// quoting rules, without a shell. It fails if the command line does not
// split (an unclosed quote), is empty, or does not use {out}, where the
// result must go.
func New(commandLine string, timeout time.Duration) (*Analyzer, error) {
	cmd, err := ParseCommand("external analyzer", commandLine, "result file", timeout, DefaultTimeout)
	if err != nil {
		return nil, err
	}
	return &Analyzer{cmd: cmd}, nil
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
	name := a.cmd.Name()
	progress(0.05, "running "+name)
	start := time.Now()
	stderr, err := a.cmd.Run(ctx, in.ArtifactDir, strings.NewReplacer("{video}", in.VideoPath, "{signal}", in.SignalPath, "{out}", out))
	if err != nil {
		return pipeline.Verdict{}, err
	}
	progress(0.9, fmt.Sprintf("%s finished in %.1f s", name, time.Since(start).Seconds()))
	data, err := os.ReadFile(out)
	if err != nil {
		return pipeline.Verdict{}, fmt.Errorf("external analyzer %s exited 0 but wrote no result to {out}: %w%s", name, err, stderr)
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

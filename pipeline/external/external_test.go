package external

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/referee-project/referee/pipeline"
)

// script writes an executable shell script into dir and returns its path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func input(t *testing.T) pipeline.AnalysisInput {
	dir := t.TempDir()
	return pipeline.AnalysisInput{
		VideoPath:   filepath.Join(dir, "video.avi"),
		SignalPath:  filepath.Join(dir, "signal.txt"),
		FPS:         15,
		ArtifactDir: dir,
	}
}

func TestExternalCommandThatSucceeds(t *testing.T) {
	in := input(t)
	// The script checks it got the paths and writes its verdict to {out}.
	s := script(t, t.TempDir(), "rw.sh", `
[ "$2" = "`+in.VideoPath+`" ] || { echo "bad video $2" >&2; exit 9; }
[ "$4" = "`+in.SignalPath+`" ] || { echo "bad signal $4" >&2; exit 9; }
echo '{"winner": "right", "reason": "right parried and riposted", "confidence": 0.75}' > "$6"
`)
	a, err := New(s+" --video {video} --signal {signal} --out {out}", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var progress []float64
	v, err := a.Analyze(context.Background(), in, func(p float64, _ string) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(in.ArtifactDir, ResultFile)
	if v.Winner != "right" || v.Reason != "right parried and riposted" || v.Confidence != 0.75 || v.Artifacts[ArtifactResult] != want {
		t.Errorf("verdict %+v, want right, its reason, 0.75 and artifact %s", v, want)
	}
	if len(progress) == 0 {
		t.Error("no progress reported")
	}
}

func TestExternalCommandErrors(t *testing.T) {
	bin := t.TempDir()
	for _, c := range []struct {
		name, body string
		timeout    time.Duration
		want       []string
	}{
		{"fails", "echo 'loading model' >&2\necho 'model.pt: no such file' >&2\nexit 3\n", 0,
			[]string{"external analyzer fails.sh failed: exit status 3; stderr: loading model\nmodel.pt: no such file"}},
		{"hangs", "echo 'waiting for GPU' >&2\nsleep 60\n", 300 * time.Millisecond,
			[]string{"external analyzer hangs.sh timed out after 300ms; stderr: waiting for GPU"}},
		{"silent", "exit 0\n", 0,
			[]string{"external analyzer silent.sh exited 0 but wrote no result to {out}: ", "no such file or directory"}},
		{"badjson", "echo 'winner: left' > \"$1\"\n", 0,
			[]string{"external analyzer badjson.sh: result ", " is not a JSON object with winner and reason: "}},
		{"badwinner", "echo '{\"winner\": \"red\"}' > \"$1\"\n", 0,
			[]string{`external analyzer badwinner.sh: result winner "red" is not one of left, right, none, simultaneous, undecided`}},
		{"badconfidence", "echo '{\"winner\": \"left\", \"confidence\": 2}' > \"$1\"\n", 0,
			[]string{"external analyzer badconfidence.sh: result confidence 2 is not between 0 and 1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := New(script(t, bin, c.name+".sh", c.body)+" {out}", c.timeout)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = a.Analyze(context.Background(), input(t), nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if time.Since(start) > 20*time.Second {
				t.Errorf("took %v: the command was not stopped", time.Since(start))
			}
		})
	}
}

func TestExternalStderrTailIsBounded(t *testing.T) {
	s := script(t, t.TempDir(), "noisy.sh", "i=0\nwhile [ $i -lt 500 ]; do echo \"line $i of the log\" >&2; i=$((i+1)); done\nexit 1\n")
	a, err := New(s+" {out}", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Analyze(context.Background(), input(t), nil)
	if err == nil || !strings.HasSuffix(err.Error(), "line 499 of the log") || len(err.Error()) > stderrTail+200 {
		t.Errorf("error %q: want the last %d bytes of stderr, ending with the last line", err, stderrTail)
	}
}

func TestExternalHonoursCancel(t *testing.T) {
	s := script(t, t.TempDir(), "slow.sh", "sleep 60\n")
	a, err := New(s+" {out}", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	if _, err := a.Analyze(ctx, input(t), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestNewRejectsBadCommandLines(t *testing.T) {
	for _, c := range []struct {
		line    string
		timeout time.Duration
		want    string
	}{
		{"", 0, "external analyzer: the command line is empty"},
		{"   ", 0, "external analyzer: the command line is empty"},
		{"rw --video {video}", 0, `external analyzer: the command line "rw --video {video}" has no {out} placeholder for the result file`},
		{"rw {out}", -time.Second, "external analyzer: timeout -1s is negative"},
		{`rw "--video {video} {out}`, 0, `external analyzer: the command line "rw \"--video {video} {out}" does not split into arguments as a shell would: EOF found when expecting closing quote (check its quotes)`},
	} {
		if _, err := New(c.line, c.timeout); err == nil || err.Error() != c.want {
			t.Errorf("New(%q, %v) = %v, want %q", c.line, c.timeout, err, c.want)
		}
	}
}

// TestExternalQuotedCommandLine runs a program whose path has spaces, quoted
// as in a shell, with a quoted argument and placeholders inside quotes.
func TestExternalQuotedCommandLine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "team tools")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := script(t, dir, "rw v2.sh", `
[ "$#" = 3 ] || { echo "got $# arguments: $*" >&2; exit 9; }
[ "$1" = "two words" ] || { echo "bad label $1" >&2; exit 9; }
echo "{\"winner\": \"left\", \"reason\": \"$2\"}" > "$3"
`)
	in := input(t)
	a, err := New(`"`+s+`" 'two words' "{video}" {out}`, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	v, err := a.Analyze(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Winner != "left" || v.Reason != in.VideoPath {
		t.Errorf("verdict %+v, want left with the video path as reason", v)
	}
}

func TestExternalCommandNotInstalled(t *testing.T) {
	for _, line := range []string{filepath.Join(t.TempDir(), "rw") + " {out}", "referee-no-such-tool {out}"} {
		a, err := New(line, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.Analyze(context.Background(), input(t), nil)
		want := "external analyzer " + filepath.Base(strings.Fields(line)[0]) + " is not installed: "
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: error %v, want it to start %q", line, err, want)
		}
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// run executes the referee command line in-process and returns its exit
// status, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errw bytes.Buffer
	code := execute(args, streams{In: strings.NewReader(""), Out: &out, Err: &errw})
	return code, out.String(), errw.String()
}

func TestGenAndVerifyCounterVideo(t *testing.T) {
	for _, ext := range []string{".avi", ".mp4"} {
		t.Run(ext, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x"+ext)
			code, out, errs := run(t, "gen-test-video", path, "--pattern", "counter", "--frames", "60")
			if code != 0 || out != "Created "+path+" with 60 frames\n" {
				t.Fatalf("gen-test-video: exit %d, stdout %q, stderr %q", code, out, errs)
			}
			code, out, errs = run(t, "probe-video", path, "--verify-sequence", "--json")
			if code != 0 {
				t.Fatalf("probe-video: exit %d, stderr %q", code, errs)
			}
			var rep struct {
				Opened               bool `json:"opened"`
				DecodedFrames        int  `json:"decoded_frames"`
				SequenceOK           bool `json:"sequence_ok"`
				Frames               int  `json:"frames"`
				Width, Height, Chans int
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("probe-video --json output %q: %v", out, err)
			}
			if !rep.Opened || rep.DecodedFrames != 60 || !rep.SequenceOK || rep.Frames != 60 {
				t.Errorf("probe-video report %+v, want 60 frames in order", rep)
			}
		})
	}
}

func TestProbeVideoHumanOutputSpeaksLikeThePythonCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.mp4")
	if code, _, errs := run(t, "gen-test-video", path); code != 0 {
		t.Fatalf("gen-test-video: %s", errs)
	}
	code, out, _ := run(t, "probe-video", path)
	want := "Opened: True\nRead frame: True\nFrame shape: (480, 640, 3)\nFPS: 30.000\nFrame count (header): 10\nCodec: mp4v\n"
	if code != 0 || !strings.HasPrefix(out, want) {
		t.Errorf("probe-video: exit %d, output\n%s\nwant it to start with\n%s", code, out, want)
	}
}

func TestDiagnosticsFailWithStatus2AndOneLine(t *testing.T) {
	dir := t.TempDir()
	notVideo := filepath.Join(dir, "notes.mp4")
	empty := filepath.Join(dir, "empty.avi")
	binary := filepath.Join(dir, "frame.jpg")
	big := filepath.Join(dir, "big.txt")
	must(t, os.WriteFile(notVideo, []byte("hello\n"), 0o644))
	must(t, os.WriteFile(empty, nil, 0o644))
	must(t, os.WriteFile(binary, []byte{0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0}, 0o644))
	must(t, os.WriteFile(big, bytes.Repeat([]byte("x"), 1<<20+1), 0o644))
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"probe-video", filepath.Join(dir, "missing.mp4")}, "file does not exist"},
		{[]string{"probe-video", notVideo}, "cannot open video"},
		{[]string{"probe-video", empty}, "the file is empty"},
		{[]string{"probe-video"}, "probe-video takes 1 argument(s)"},
		{[]string{"probe-signal", filepath.Join(dir, "missing.txt")}, "no such file"},
		{[]string{"probe-signal", empty}, "signal file is empty"},
		{[]string{"probe-signal", binary}, "signal file is not text"},
		{[]string{"probe-signal", big}, "signal file is too large"},
		{[]string{"probe-signal", notVideo}, "not a scoring-box phrase log"},
		{[]string{"gen-test-video", filepath.Join(dir, "no", "such", "dir", "x.avi")}, "cannot write the file"},
		{[]string{"gen-test-video", filepath.Join(dir, "x.avi"), "--codec", "ZZZZ"}, `cannot write fourcc "ZZZZ"`},
		{[]string{"gen-test-video", filepath.Join(dir, "x.avi"), "--pattern", "stripes"}, `--pattern "stripes"`},
		{[]string{"gen-test-video", filepath.Join(dir, "x.avi"), "--pattern", "fencers", "--scenario", "nope"}, `no scenario named "nope"`},
		{[]string{"gen-test-video", "--frames", "many"}, `invalid argument "many"`},
		{[]string{"gen-test-video", filepath.Join(dir, "x.avi"), "--pattern", "counter", "--width", "32"}, "at least 48"},
		{[]string{"gen-test-video", filepath.Join(dir, "x.avi"), "--frames", "0"}, "--frames 0: want 1 to"},
	}
	for _, tc := range cases {
		code, _, errs := run(t, tc.args...)
		lines := strings.Split(strings.TrimSpace(errs), "\n")
		if code != exitUsage || len(lines) != 1 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line containing %q", tc.args, code, errs, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.avi")); err == nil {
		t.Errorf("a failed gen-test-video left x.avi behind")
	}
}

func TestProbeSignalJSONMatchesExpected(t *testing.T) {
	const name = "20251020_210329_phrase09.txt"
	code, out, errs := run(t, "probe-signal", "--json", filepath.Join("..", "..", "testdata", "signal", name))
	if code != 0 {
		t.Fatalf("probe-signal: exit %d: %s", code, errs)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	var expected map[string]map[string]any
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "testdata", "phrases", "expected.json"))
	must(t, err)
	must(t, json.Unmarshal(data, &expected))
	want := expected[name]
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s: got %v, want %v", k, got[k], v)
		}
	}
	if got["verdict"] == nil {
		t.Errorf("no verdict in %s", out)
	}
}

func TestGenTestVideoSignalMatchesScenario(t *testing.T) {
	dir := t.TempDir()
	video, log := filepath.Join(dir, "p.avi"), filepath.Join(dir, "p.txt")
	code, out, errs := run(t, "gen-test-video", video, "--pattern", "fencers", "--scenario", "single-right", "--fps", "15", "--width", "320", "--height", "240", "--signal", log)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "Created "+log) {
		t.Errorf("stdout %q does not confirm the log", out)
	}
	code, out, errs = run(t, "probe-signal", "--json", log)
	if code != 0 {
		t.Fatalf("probe-signal exit %d: %s", code, errs)
	}
	var rep struct {
		Touch   string `json:"touch"`
		Verdict struct{ Winner string }
	}
	must(t, json.Unmarshal([]byte(out), &rep))
	if rep.Touch != "right" || rep.Verdict.Winner != "right" {
		t.Errorf("single-right log reads touch %q, verdict %q", rep.Touch, rep.Verdict.Winner)
	}
}

// TestConfigPrecedence checks flag > REFEREE_* environment > config file >
// default, with the file's command section before its top level for the
// global flags.
func TestConfigPrecedence(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "referee.yaml")
	must(t, os.WriteFile(cfg, []byte("log-level: warn\nlog-format: json\nserve:\n  port: 7000\n  host: file-host\n  label: section\n  timeout: 5\n  origins: [https://a.example, https://b.example]\n  log-level: error\n"), 0o644))
	t.Setenv("REFEREE_HOST", "env-host")
	t.Setenv("REFEREE_MAX_STREAMING_SESSIONS", "4")

	var port, sessions int
	var host, label, untouched, logLevel, logFormat string
	var timeout time.Duration
	var origins []string
	root := &cobra.Command{Use: "referee"}
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "")
	root.PersistentFlags().StringVar(&logFormat, "log-format", "text", "")
	cmd := &cobra.Command{Use: "serve"}
	root.AddCommand(cmd)
	f := cmd.Flags()
	f.IntVar(&port, "port", 8080, "")
	f.StringVar(&host, "host", "0.0.0.0", "")
	f.StringVar(&label, "label", "default", "")
	f.StringVar(&untouched, "untouched", "default", "")
	f.IntVar(&sessions, "max-streaming-sessions", 10, "")
	f.DurationVar(&timeout, "timeout", time.Second, "")
	f.StringSliceVar(&origins, "origins", nil, "")
	must(t, cmd.ParseFlags([]string{"--port", "9000"}))

	if err := resolveConfig(cmd, cfg); err != nil {
		t.Fatal(err)
	}
	if port != 9000 || host != "env-host" || label != "section" || untouched != "default" || sessions != 4 || timeout != 5*time.Second {
		t.Errorf("port %d host %q label %q untouched %q sessions %d timeout %v", port, host, label, untouched, sessions, timeout)
	}
	if logLevel != "error" || logFormat != "json" {
		t.Errorf("global flags: log-level %q (want the section's error), log-format %q (want the top level's json)", logLevel, logFormat)
	}
	if !reflect.DeepEqual(origins, []string{"https://a.example", "https://b.example"}) {
		t.Errorf("origins from a YAML list: %q", origins)
	}

	t.Setenv("REFEREE_PORT", "eighty")
	var port2 int
	cmd2 := &cobra.Command{Use: "serve"}
	cmd2.Flags().IntVar(&port2, "port", 8080, "")
	err := resolveConfig(cmd2, "")
	if want := `--port from environment variable REFEREE_PORT: "eighty" is not a whole number`; exitCode(err) != exitUsage || !strings.Contains(err.Error(), want) {
		t.Errorf("bad REFEREE_PORT: %v (exit %d)", err, exitCode(err))
	}
	if err := resolveConfig(cmd2, filepath.Join(t.TempDir(), "missing.yaml")); exitCode(err) != exitUsage {
		t.Errorf("missing config file: %v", err)
	}
}

func TestLogLevelFromEnvironment(t *testing.T) {
	for _, level := range []string{"DEBUG", "debug", "Info", "WARN", "error"} {
		if _, err := newLogger(&bytes.Buffer{}, level, "text", false); err != nil {
			t.Errorf("log level %q: %v", level, err)
		}
	}
	if _, err := newLogger(&bytes.Buffer{}, "loud", "text", false); exitCode(err) != exitUsage {
		t.Errorf("log level loud: %v", err)
	}
	var buf bytes.Buffer
	l, _ := newLogger(&buf, "error", "text", true)
	l.Debug("seen")
	if !strings.Contains(buf.String(), "seen") {
		t.Errorf("--verbose did not give debug logs")
	}
}

func TestHelpReadsWell(t *testing.T) {
	for _, sub := range []string{"", "gen-test-video", "probe-video", "probe-signal", "serve", "stream"} {
		args := []string{"--help"}
		if sub != "" {
			args = []string{sub, "--help"}
		}
		code, out, _ := run(t, args...)
		if code != 0 || !strings.Contains(out, "Usage:") || len(out) < 400 {
			t.Errorf("referee %s --help: exit %d, %d bytes", sub, code, len(out))
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

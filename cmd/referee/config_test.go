package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestConfigUnknownKeysAreRefused: a typo in the file is an error naming
// the key and the nearest known one, not a silent default.
func TestConfigUnknownKeysAreRefused(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		yaml, want string
	}{
		{"serve:\n  prot: 9000\n", `unknown key "serve.prot" in CFG: serve has no flag --prot; did you mean "serve.port"?`},
		{"prot: 9000\n", `unknown key "prot" at the top level of CFG, which takes the global flags and a section per subcommand; did you mean "serve.port"?`},
		{"log-levle: debug\n", `unknown key "log-levle" at the top level of CFG, which takes the global flags and a section per subcommand; did you mean "log-level"?`},
		{"serv:\n  port: 9000\n", `unknown key "serv.port" in CFG: serv is neither a global flag nor a subcommand's section; did you mean "serve"?`},
		{"probe-signal:\n  fps: 25\n  jsn: true\n", `unknown key "probe-signal.jsn" in CFG: probe-signal has no flag --jsn; did you mean "probe-signal.json"?`},
	} {
		cfg := filepath.Join(dir, "referee.yaml")
		must(t, os.WriteFile(cfg, []byte(c.yaml), 0o644))
		code, out, errs := run(t, "--config", cfg, "probe-signal", sampleSignal)
		want := "referee: " + strings.ReplaceAll(c.want, "CFG", cfg) + "\n"
		if code != exitUsage || errs != want || out != "" {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", c.yaml, code, errs, want)
		}
	}
	// Known keys at both levels pass, and are used.
	cfg := filepath.Join(dir, "good.yaml")
	must(t, os.WriteFile(cfg, []byte("log-level: warn\nprobe-signal:\n  fps: 25\nserve:\n  port: 9000\n"), 0o644))
	code, out, errs := run(t, "--config", cfg, "probe-signal", sampleSignal)
	if code != exitOK || !strings.Contains(out, "video frame at 25 fps") {
		t.Errorf("good file: exit %d, %s %s", code, errs, out)
	}
}

// TestConfigDiscovery: --config, then REFEREE_CONFIG, then ./referee.yaml,
// then $XDG_CONFIG_HOME/referee/config.yaml; --help says which was used.
func TestConfigDiscovery(t *testing.T) {
	dir := t.TempDir()
	write := func(path string, fps int) string {
		t.Helper()
		must(t, os.MkdirAll(filepath.Dir(path), 0o755))
		must(t, os.WriteFile(path, []byte("probe-signal:\n  fps: "+strconv.Itoa(fps)+"\n"), 0o644))
		return path
	}
	sig, err := filepath.Abs(sampleSignal)
	must(t, err)
	xdg := filepath.Join(dir, "xdg")
	work := filepath.Join(dir, "work")
	must(t, os.MkdirAll(work, 0o755))
	t.Chdir(work)
	t.Setenv("XDG_CONFIG_HOME", xdg)
	t.Setenv("REFEREE_CONFIG", "")
	fpsUsed := func(args ...string) string {
		t.Helper()
		code, out, errs := run(t, append(args, "probe-signal", sig)...)
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		_, rest, _ := strings.Cut(out, "video frame at ")
		fps, _, _ := strings.Cut(rest, " fps")
		return fps
	}
	helpSays := func() string {
		t.Helper()
		_, out, _ := run(t, "probe-signal", "--help")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return lines[len(lines)-1]
	}
	search := "./referee.yaml, " + filepath.Join(xdg, "referee", "config.yaml") + ", /etc/referee/config.yaml"
	if got, want := helpSays(), "Configuration file: none (looked for "+search+")"; got != want && !strings.Contains(got, "/etc/referee/config.yaml (the first found") {
		t.Errorf("no file: help says %q, want %q", got, want)
	}

	user := write(filepath.Join(xdg, "referee", "config.yaml"), 11)
	if fps := fpsUsed(); fps != "11" {
		t.Errorf("$XDG_CONFIG_HOME/referee/config.yaml: fps %s, want 11", fps)
	}
	if got, want := helpSays(), "Configuration file: "+user+" (the first found of "+search+")"; got != want {
		t.Errorf("help says %q, want %q", got, want)
	}
	write(filepath.Join(work, "referee.yaml"), 12)
	if fps := fpsUsed(); fps != "12" {
		t.Errorf("./referee.yaml before the user's: fps %s, want 12", fps)
	}
	env := write(filepath.Join(dir, "env.yaml"), 13)
	t.Setenv("REFEREE_CONFIG", env)
	if fps := fpsUsed(); fps != "13" {
		t.Errorf("REFEREE_CONFIG: fps %s, want 13", fps)
	}
	if got, want := helpSays(), "Configuration file: "+env+" (from REFEREE_CONFIG)"; got != want {
		t.Errorf("help says %q, want %q", got, want)
	}
	flag := write(filepath.Join(dir, "flag.yaml"), 14)
	if fps := fpsUsed("--config", flag); fps != "14" {
		t.Errorf("--config before REFEREE_CONFIG: fps %s, want 14", fps)
	}
	t.Setenv("REFEREE_CONFIG", filepath.Join(dir, "missing.yaml"))
	if code, _, errs := run(t, "probe-signal", sig); code != exitUsage || !strings.Contains(errs, "missing.yaml") {
		t.Errorf("REFEREE_CONFIG naming no file: exit %d, %q", code, errs)
	}
}

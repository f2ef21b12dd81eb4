package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/shlex"
)

const deployDir = "../../examples/deploy"

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line    int
	keyword string
	args    string
}

// dockerKeywords are the instructions of the Dockerfile reference.
var dockerKeywords = []string{"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
	"LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}

// parseDockerfile reads a Dockerfile as the builder's parser does:
// comments and blank lines dropped, a trailing backslash continuing the
// line, the first word the instruction.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		more := strings.HasSuffix(line, "\\")
		cur.WriteString(strings.TrimSuffix(line, "\\"))
		if more {
			cur.WriteByte(' ')
			continue
		}
		kw, args, _ := strings.Cut(cur.String(), " ")
		if !slices.Contains(dockerKeywords, strings.ToUpper(kw)) {
			t.Fatalf("%s:%d: unknown instruction %q", path, start, kw)
		}
		if strings.TrimSpace(args) == "" {
			t.Fatalf("%s:%d: %s without arguments", path, start, kw)
		}
		out = append(out, instruction{start, strings.ToUpper(kw), strings.TrimSpace(args)})
		cur.Reset()
	}
	must(t, sc.Err())
	if cur.Len() > 0 {
		t.Fatalf("%s: ends in a continued line", path)
	}
	return out
}

// execForm reads a JSON array argument (the exec form of CMD, ENTRYPOINT
// and VOLUME).
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(in.args), &v); err != nil {
		t.Fatalf("line %d: %s %s is not a JSON array of strings: %v", in.line, in.keyword, in.args, err)
	}
	return v
}

// checkServeArgs parses args (after "referee") as the real command line
// does and returns serve's flags as resolved.
func checkServeArgs(t *testing.T, where string, args []string) map[string]string {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("%s runs %q, want referee serve", where, args)
	}
	root := newRootCmd(&app{})
	serve, rest, err := root.Find(args)
	if err != nil || serve.Name() != "serve" {
		t.Fatalf("%s: %v", where, err)
	}
	if err := serve.ParseFlags(rest); err != nil {
		t.Fatalf("%s: referee serve does not take %q: %v", where, rest, err)
	}
	if extra := serve.Flags().Args(); len(extra) > 0 {
		t.Fatalf("%s: extra arguments %q", where, extra)
	}
	flags := map[string]string{}
	for _, name := range []string{"host", "port", "data-dir", "log-format"} {
		flags[name] = serve.Flags().Lookup(name).Value.String()
	}
	return flags
}

// deploySection is the README's section on deploying.
func deploySection(t *testing.T) string {
	t.Helper()
	readme := readFile(t, "../../README.md")
	_, sec, ok := strings.Cut(readme, "\n## Deploying\n")
	if !ok {
		t.Fatal("README.md has no Deploying section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	return sec
}

// TestDeployDockerfile checks the Dockerfile without a container engine:
// it parses, its final image is Debian 12 with OpenCV, runs as a user that
// is not root, keeps the data directory in a volume, checks its health,
// starts referee serve with flags it has, and says what the README says.
func TestDeployDockerfile(t *testing.T) {
	ins := parseDockerfile(t, filepath.Join(deployDir, "Dockerfile"))
	last := 0
	for i, in := range ins {
		if in.keyword == "FROM" {
			last = i
		}
	}
	final := ins[last:]
	base := strings.Fields(final[0].args)[0]
	if base != "debian:12" && !strings.HasPrefix(base, "debian:12-") && !strings.HasPrefix(base, "debian:bookworm") {
		t.Errorf("final image FROM %s, want Debian 12", base)
	}
	var user, volume, port, health string
	var entry, cmd, runs []string
	for _, in := range final {
		switch in.keyword {
		case "USER":
			user = in.args
		case "VOLUME":
			volume = strings.Join(execForm(t, in), " ")
		case "EXPOSE":
			port = in.args
		case "HEALTHCHECK":
			health = in.args
		case "ENTRYPOINT":
			entry = execForm(t, in)
		case "CMD":
			cmd = execForm(t, in)
		case "RUN":
			runs = append(runs, in.args)
		}
	}
	run := strings.Join(runs, "\n")
	switch {
	case !strings.Contains(run, "libopencv-dev"):
		t.Errorf("the final image does not install libopencv-dev")
	case user == "" || user == "root" || user == "0":
		t.Errorf("USER %q: want an unprivileged user", user)
	case !strings.Contains(run, "useradd") || !strings.Contains(run, " "+user):
		t.Errorf("USER %s is not created in the final image", user)
	case !strings.Contains(health, "CMD ") || !strings.Contains(health, "http://127.0.0.1:"+port+"/health"):
		t.Errorf("HEALTHCHECK %q does not ask /health on port %s", health, port)
	case len(entry) != 1 || filepath.Base(entry[0]) != "referee":
		t.Errorf("ENTRYPOINT %q, want the referee binary", entry)
	}
	flags := checkServeArgs(t, "the Dockerfile's CMD", cmd)
	if flags["data-dir"] != volume || flags["port"] != port || flags["host"] != "0.0.0.0" {
		t.Errorf("serve %v, want --data-dir the volume %s, --port the exposed %s, --host 0.0.0.0", flags, volume, port)
	}
	uid := ""
	if f := strings.Fields(run); slices.Contains(f, "--uid") {
		uid = f[slices.Index(f, "--uid")+1]
	}
	readme := deploySection(t)
	for _, want := range []string{base, "libopencv-dev", "`" + user + "`", "uid " + uid, volume, "port " + port, "HEALTHCHECK", "`/health`", "`VOLUME`"} {
		if !strings.Contains(readme, want) {
			t.Errorf("the README's Deploying section does not say %q", want)
		}
	}
}

// TestDeploySystemdUnit checks the unit's hardening and command line, and
// has systemd-analyze verify it where systemd is installed.
func TestDeploySystemdUnit(t *testing.T) {
	path := filepath.Join(deployDir, "referee.service")
	unit := readFile(t, path)
	keys := map[string]string{}
	section := ""
	for n, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is not KEY=VALUE in a section", path, n+1, line)
			}
			keys[section+k] = v
		}
	}
	for k, want := range map[string]string{
		"[Service]DynamicUser":     "yes",
		"[Service]StateDirectory":  "referee",
		"[Service]ProtectSystem":   "strict",
		"[Service]NoNewPrivileges": "yes",
		"[Service]PrivateTmp":      "yes",
		"[Install]WantedBy":        "multi-user.target",
	} {
		if keys[k] != want {
			t.Errorf("%s=%q, want %q", k, keys[k], want)
		}
	}
	args, err := shlex.Split(keys["[Service]ExecStart"])
	if err != nil || len(args) == 0 {
		t.Fatalf("ExecStart %q: %v", keys["[Service]ExecStart"], err)
	}
	flags := checkServeArgs(t, "ExecStart", args[1:])
	if want := "/var/lib/" + keys["[Service]StateDirectory"]; flags["data-dir"] != want {
		t.Errorf("ExecStart --data-dir %s, want the StateDirectory %s", flags["data-dir"], want)
	}
	readme := deploySection(t)
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=referee", "ProtectSystem=strict", flags["data-dir"]} {
		if !strings.Contains(readme, want) {
			t.Errorf("the README's Deploying section does not say %q", want)
		}
	}

	t.Run("systemd-analyze verify", func(t *testing.T) {
		analyze, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("systemd-analyze is not installed here: the unit's directives are not verified by systemd")
		}
		// verify wants ExecStart's program to exist: this test binary
		// stands in for /usr/local/bin/referee.
		self, err := os.Executable()
		must(t, err)
		copyPath := filepath.Join(t.TempDir(), "referee.service")
		must(t, os.WriteFile(copyPath, []byte(strings.Replace(unit, "ExecStart="+args[0], "ExecStart="+self, 1)), 0o644))
		out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
		// Unknown or misspelt keys are only warnings: any output fails.
		if err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	})
}

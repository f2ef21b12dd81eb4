package external

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/shlex"
)

// Command is a program run the way the external analyzer runs its own, so
// that every stage that hands a phrase to another program (this analyzer,
// the pose stage) fails the same way: without a shell, its command line
// split on spaces and placeholders replaced inside each argument, in its
// own process group killed whole at the timeout, its errors quoting the
// tail of its standard error.
type Command struct {
	// What names the stage in errors, e.g. "external analyzer".
	What    string
	Args    []string
	Timeout time.Duration
	// Stdout, if not nil, receives the command's standard output, which
	// is otherwise discarded.
	Stdout io.Writer
}

// ParseCommand splits commandLine into a Command for the stage what, with
// a shell's quoting rules (a quoted path with spaces is one argument) but
// no shell. It fails if the line does not split (an unclosed quote), is
// empty, or the timeout is not positive.
func ParseCommand(what, commandLine string, timeout time.Duration) (Command, error) {
	args, err := shlex.Split(commandLine)
	if err != nil {
		return Command{}, fmt.Errorf("%s: the command line %q does not split into arguments as a shell would: %w (check its quotes)", what, commandLine, err)
	}
	if len(args) == 0 {
		return Command{}, fmt.Errorf("%s: the command line is empty", what)
	}
	if timeout <= 0 {
		return Command{}, fmt.Errorf("%s: timeout %v is not positive", what, timeout)
	}
	return Command{What: what, Args: args, Timeout: timeout}, nil
}

// CheckLine checks a stage's command line before ParseCommand, as each
// stage's New does, naming the stage who in its errors: the line must not
// be empty, must use {out} for the stage's outFile, and timeout must not
// be negative. It returns the timeout to run with, deflt for 0.
func CheckLine(who, commandLine, outFile string, timeout, deflt time.Duration) (time.Duration, error) {
	switch {
	case strings.TrimSpace(commandLine) == "":
		return 0, fmt.Errorf("%s: the command line is empty", who)
	case !strings.Contains(commandLine, "{out}"):
		return 0, fmt.Errorf("%s: the command line %q has no {out} placeholder for the %s", who, commandLine, outFile)
	case timeout < 0:
		return 0, fmt.Errorf("%s: timeout %v is negative", who, timeout)
	case timeout == 0:
		return deflt, nil
	}
	return timeout, nil
}

// Name is the program's file name, as errors and progress call it.
func (c Command) Name() string { return filepath.Base(c.Args[0]) }

// Run runs the command in dir with its placeholders replaced by repl and
// waits for it, for at most c.Timeout. On success it returns the tail of
// the command's standard error as "; stderr: ..." ("" when it wrote
// none), for errors the caller finds in what it wrote. Its error says
// whether the command failed to start or exited non-zero (wrapping the
// exec error), timed out, or was canceled with ctx (wrapping ctx.Err()),
// and quotes the stderr tail.
func (c Command) Run(ctx context.Context, dir string, repl *strings.Replacer) (string, error) {
	args := make([]string, len(c.Args))
	for i, s := range c.Args {
		args[i] = repl.Replace(s)
	}
	runCtx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, args[0], args[1:]...)
	cmd.Dir = dir
	var stderr tail
	cmd.Stderr = &stderr
	cmd.Stdout = c.Stdout
	killGroup(cmd)
	// A grandchild holding stderr open must not keep Wait waiting once the
	// command itself is gone.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	switch {
	case runCtx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
		return "", fmt.Errorf("%s %s timed out after %v%s", c.What, c.Name(), c.Timeout, stderr.quote())
	case ctx.Err() != nil:
		return "", fmt.Errorf("%s %s: %w", c.What, c.Name(), ctx.Err())
	case errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%s %s is not installed: %w", c.What, c.Name(), err)
	case err != nil:
		return "", fmt.Errorf("%s %s failed: %w%s", c.What, c.Name(), err, stderr.quote())
	}
	return stderr.quote(), nil
}

// stderrTail is how much of the end of the command's standard error an
// error quotes.
const stderrTail = 2048

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

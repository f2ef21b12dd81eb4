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
// no shell, run with timeout (deflt for 0). It fails, naming the stage,
// if the line does not split (an unclosed quote), is empty or does not use
// {out} for the stage's outFile, or if timeout is negative.
func ParseCommand(what, commandLine, outFile string, timeout, deflt time.Duration) (Command, error) {
	args, err := shlex.Split(commandLine)
	switch {
	case err != nil:
		return Command{}, fmt.Errorf("%s: the command line %q does not split into arguments as a shell would: %w (check its quotes)", what, commandLine, err)
	case len(args) == 0:
		return Command{}, fmt.Errorf("%s: the command line is empty", what)
	case !strings.Contains(commandLine, "{out}"):
		return Command{}, fmt.Errorf("%s: the command line %q has no {out} placeholder for the %s", what, commandLine, outFile)
	case timeout < 0:
		return Command{}, fmt.Errorf("%s: timeout %v is negative", what, timeout)
	case timeout == 0:
		timeout = deflt
	}
	return Command{What: what, Args: args, Timeout: timeout}, nil
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

package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// server is a "referee serve" child process.
type server struct {
	cmd     *exec.Cmd
	addr    string
	logPath string
	logDone chan struct{}
	stopped bool
}

// serverStartTimeout bounds the wait for the server's "listening" line.
const serverStartTimeout = 20 * time.Second

// startServer starts exe serve on a free loopback port with its data in
// dir/data, its log in dir/server.log, and returns once it listens.
func startServer(ctx context.Context, exe, dir string, sessions int, profile string) (*server, error) {
	args := []string{"serve", "--host", "127.0.0.1", "--port", "0",
		"--data-dir", filepath.Join(dir, "data"), "--output-dir", filepath.Join(dir, "data", "sessions"),
		"--analyzer", "signal", "--log-level", "info",
		"--max-streaming-sessions", strconv.Itoa(max(sessions, 1))}
	if profile != "" {
		args = append(args, "--cpuprofile", profile)
	}
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create the server log: %w", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout = logFile
	// A bench killed outright must not leave its server behind.
	dieWithParent(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start the server: %w", err)
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start the server %s: %w", exe, err)
	}
	s := &server{cmd: cmd, logPath: logPath, logDone: make(chan struct{})}
	listening := make(chan string, 1)
	go func() {
		defer close(s.logDone)
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if addr := listeningAddr(line); addr != "" {
				select {
				case listening <- addr:
				default:
				}
			}
		}
		// The pipe must be drained until the process exits, else it
		// blocks on a full pipe; the scanner stops at EOF or on a line
		// too long, after which the rest is copied as is.
		io.Copy(logFile, stderr)
	}()
	timer := time.NewTimer(serverStartTimeout)
	defer timer.Stop()
	select {
	case s.addr = <-listening:
		return s, nil
	case <-s.logDone:
		s.kill()
		return nil, fmt.Errorf("the server exited before listening (see %s)", logPath)
	case <-timer.C:
		s.kill()
		return nil, fmt.Errorf("the server did not log \"listening\" within %v (see %s)", serverStartTimeout, logPath)
	case <-ctx.Done():
		s.kill()
		return nil, context.Cause(ctx)
	}
}

// listeningAddr is the address of a server's "msg=listening addr=..." log
// line, or "".
func listeningAddr(line string) string {
	_, rest, ok := strings.Cut(line, " msg=listening ")
	if !ok {
		return ""
	}
	_, rest, ok = strings.Cut(rest, "addr=")
	if !ok {
		return ""
	}
	addr, _, _ := strings.Cut(rest, " ")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return ""
	}
	return addr
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stopTimeout bounds a server's graceful shutdown after stopSignal.
const stopTimeout = 30 * time.Second

// stop ends the server with stopSignal (SIGTERM, as an operator would,
// where there is one) and returns the CPU seconds it used in all.
func (s *server) stop() (float64, error) {
	s.stopped = true
	if err := s.cmd.Process.Signal(stopSignal); err != nil {
		return 0, fmt.Errorf("stop the server: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	var err error
	select {
	case err = <-done:
	case <-timer.C:
		s.cmd.Process.Kill()
		<-done
		return 0, fmt.Errorf("the server did not stop within %v of %s", stopTimeout, stopSignalName)
	}
	<-s.logDone
	ps := s.cmd.ProcessState
	cpu := (ps.UserTime() + ps.SystemTime()).Seconds()
	if err != nil && graceful {
		return cpu, fmt.Errorf("the server exited with %v after %s", err, stopSignalName)
	}
	return cpu, nil
}

// kill ends a server that was not stopped, when a run is abandoned.
func (s *server) kill() {
	if s.stopped {
		return
	}
	s.stopped = true
	s.cmd.Process.Kill()
	s.cmd.Wait()
	<-s.logDone
}

// rssSample is a process's resident memory at a time, in MB: all of it,
// and its anonymous part.
type rssSample struct {
	at        time.Time
	rss, anon float64
}

// rssSampleEvery is how often the server's RSS is sampled.
const rssSampleEvery = 100 * time.Millisecond

// rssSampler reads a process's VmRSS every rssSampleEvery until stopped.
type rssSampler struct {
	stopc   chan struct{}
	done    chan struct{}
	samples []rssSample
}

func startRSSSampler(pid int) *rssSampler {
	r := &rssSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		t := time.NewTicker(rssSampleEvery)
		defer t.Stop()
		for {
			if st, err := procStatusMB(pid); err == nil {
				r.samples = append(r.samples, rssSample{at: time.Now(), rss: st["VmRSS"], anon: st["RssAnon"]})
			}
			select {
			case <-t.C:
			case <-r.stopc:
				return
			}
		}
	}()
	return r
}

// stop ends the sampling and returns the samples.
func (r *rssSampler) stop() []rssSample {
	close(r.stopc)
	<-r.done
	return r.samples
}

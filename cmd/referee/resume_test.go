package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/referee-project/referee/server/servertest"

	"github.com/referee-project/referee/client"
	"github.com/referee-project/referee/protocol"
	"github.com/referee-project/referee/server"
)

// cut says where a cutProxy ends one connection: after upAt bytes from the
// client (-1: never), or just before the server's bytes holding downMark
// reach the client ("": never). Client bytes are masked, server bytes are
// not, so a server message can be spotted and withheld.
type cut struct {
	upAt     int64
	downMark string
}

var noCut = cut{upAt: -1}

// cutProxy relays loopback TCP connections to a target and cuts the n-th
// connection as plan(n) says, without a close frame, as a Wi-Fi link that
// drops does. It counts the connections it cut.
type cutProxy struct {
	t      *testing.T
	ln     net.Listener
	target string
	plan   func(n int) cut

	mu    sync.Mutex
	n     int
	cuts  int
	conns []net.Conn
	wg    sync.WaitGroup
}

func newCutProxy(t *testing.T, target string, plan func(n int) cut) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{t: t, ln: ln, target: target, plan: plan}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *cutProxy) cutCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			down.Close()
			continue
		}
		p.mu.Lock()
		rule := p.plan(p.n)
		p.n++
		p.conns = append(p.conns, down, up)
		p.mu.Unlock()
		var once sync.Once
		drop := func(counted bool) {
			once.Do(func() {
				if counted {
					p.mu.Lock()
					p.cuts++
					p.mu.Unlock()
				}
				down.Close()
				up.Close()
			})
		}
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			p.pipe(up, down, rule.upAt, "", drop)
		}()
		go func() {
			defer p.wg.Done()
			p.pipe(down, up, -1, rule.downMark, drop)
		}()
	}
}

// pipe copies src to dst until it ends, or until limit bytes or the mark,
// where it drops both connections.
func (p *cutProxy) pipe(dst, src net.Conn, limit int64, mark string, drop func(bool)) {
	buf := make([]byte, 32<<10)
	var total int64
	var tail []byte // the last bytes sent, for a mark split between reads
	for {
		n, err := src.Read(buf)
		data := buf[:n]
		cutHere := false
		if limit >= 0 && total+int64(n) >= limit && n > 0 {
			data, cutHere = data[:limit-total], true
		}
		if mark != "" && n > 0 {
			joined := append(append([]byte{}, tail...), data...)
			if i := bytes.Index(joined, []byte(mark)); i >= 0 {
				// Withhold the whole line from the mark's message on: a
				// few bytes of it may already have gone.
				data, cutHere = data[:max(i-len(tail), 0)], true
			}
			tail = joined[max(len(joined)-len(mark), 0):]
		}
		if len(data) > 0 {
			if _, werr := dst.Write(data); werr != nil {
				drop(false)
				return
			}
			total += int64(len(data))
		}
		if cutHere {
			drop(true)
			return
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if cw, ok := dst.(*net.TCPConn); ok {
					cw.CloseWrite()
					return
				}
			}
			drop(false)
			return
		}
	}
}

// TestChaosCutsEveryStreamAndItStillCompletes streams 20 phrases, v1 and v2
// in turn, through a proxy that cuts each one's connection at a random
// point: before session_started, mid-frames, after session_end, or once
// the server has session_end and the signal (at signal_ack, or at the
// first process_progress: during processing); some resumed connections are
// cut again during their start. Every session must complete and its
// reconstructed video hold every frame exactly once; one cut during
// processing is resumed as such, not run twice. `make soak` runs it with
// more streams and a fresh seed (REFEREE_CHAOS_STREAMS, REFEREE_CHAOS_SEED).
func TestChaosCutsEveryStreamAndItStillCompletes(t *testing.T) {
	_, url, logs := startServer(t, nil)
	target := strings.TrimPrefix(url, "http://")
	const frames = 60
	streams, seed := envInt(t, "REFEREE_CHAOS_STREAMS", 20), envInt(t, "REFEREE_CHAOS_SEED", 6)
	t.Logf("%d streams, seed %d", streams, seed)
	video := counterVideo(t, ".avi", frames, 320, 240)
	rng := rand.New(rand.NewPCG(uint64(seed), 20))
	// A stream's first connection to the server is the /health check;
	// the second is the WebSocket. The 60 frames, 320x240 counter JPEGs
	// of about 8 KB at q85, fill about 450 KB of it: cuts mid-frames fall
	// in the first 400 KB.
	kinds := []string{"before session_started", "mid-frames", "after session_end"}
	// Cuts once the server has session_end and the signal replace about
	// half of the other cuts but mid-frames ones, drawn apart so that
	// every stream keeps the rest of its draws.
	late := rand.New(rand.NewPCG(uint64(seed), 21))
	lateKinds := []string{"after signal_ack", "during processing"}
	for i := range streams {
		proto := []string{protocol.V1, protocol.V2}[i%2]
		kind := kinds[rng.IntN(len(kinds))]
		first := cut{upAt: -1}
		switch kind {
		case "before session_started":
			first.downMark = `"type":"session_started"`
		case "mid-frames":
			first.upAt = 600 + rng.Int64N(400_000)
		case "after session_end":
			first.downMark = `"type":"session_ended"`
		}
		if kind != "mid-frames" && late.IntN(2) == 0 {
			kind = lateKinds[late.IntN(len(lateKinds))]
			first = cut{upAt: -1, downMark: map[string]string{
				"after signal_ack":  `"type":"signal_ack"`,
				"during processing": `"type":"process_progress"`,
			}[kind]}
		}
		// One resume in three is cut again before it is answered.
		again := noCut
		if rng.IntN(3) == 0 {
			again = cut{upAt: -1, downMark: `"type":"session_started"`}
		}
		plan := func(n int) cut {
			switch n {
			case 1:
				return first
			case 2:
				return again
			}
			return noCut
		}
		id := fmt.Sprintf("chaos%02d", i)
		t.Run(fmt.Sprintf("%s_%s_%s", id, proto, strings.ReplaceAll(kind, " ", "_")), func(t *testing.T) {
			p := newCutProxy(t, target, plan)
			var clientLog servertest.LogBuffer
			res, err := client.Run(context.Background(), client.Options{
				Server: p.url(), Video: video, Signal: sampleSignal, SessionID: id, Protocol: proto,
				Timeout: 5 * time.Second, ResumeBackoff: 20 * time.Millisecond,
				Logger: clientLog.Logger(),
			})
			if err != nil {
				t.Fatalf("stream: %v\nclient log:\n%s\nserver log:\n%s", err, clientLog.String(), logs.String())
			}
			wantCuts := 1
			if again != noCut {
				wantCuts = 2
			}
			if got := p.cutCount(); got != wantCuts {
				t.Errorf("the proxy cut %d connections, want %d", got, wantCuts)
			}
			// A resume cut before its answer is a failed attempt: the
			// next one resumes.
			if res.Resumes != 1 || !strings.Contains(clientLog.String(), fmt.Sprintf("(attempt %d of 5)", wantCuts)) {
				t.Errorf("the session was resumed %d times, want once, at attempt %d\nclient log:\n%s", res.Resumes, wantCuts, clientLog.String())
			}
			if res.Frames != frames || res.Validation.FrameCount != frames || res.Validation.DuplicateFrames != 0 || res.Validation.MissingFrames != 0 {
				t.Errorf("sent %d frames, server's validation %+v; want %d frames, none duplicated or missing", res.Frames, res.Validation, frames)
			}
			var got e2eResult
			if err := json.Unmarshal(res.Raw, &got); err != nil {
				t.Fatal(err)
			}
			if got.Status != "success" || got.SessionID != id {
				t.Errorf("result %+v", got)
			}
			verifyVideo(t, got.Artifacts.Video, frames)
			// A cut mid-frames loses at least the frame on the wire: the
			// resume must send it again.
			resent := regexp.MustCompile(`frames_sent=(\d+) to_resend=(\d+)`).FindStringSubmatch(clientLog.String())
			if kind == "mid-frames" && (resent == nil || resent[2] == "0") {
				t.Errorf("a cut mid-frames resumed with %q, want frames to resend\nclient log:\n%s", resent, clientLog.String())
			}
			if !strings.Contains(clientLog.String(), "Connection lost; resuming the session") {
				t.Errorf("the client did not log its attempt:\n%s", clientLog.String())
			}
			// Cut once processing has begun: the server resumes the session
			// it is processing, or has processed, rather than a new one.
			if kind == "after signal_ack" || kind == "during processing" {
				resumed := regexp.MustCompile(`msg="resumed (during|after) processing[^"]*".* session_id=` + id + ` `)
				if !resumed.MatchString(logs.String()) {
					t.Errorf("a cut %s was not resumed as a session processed\nserver log:\n%s", kind, logs.String())
				}
			}
		})
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("server errors:\n%s", logs.String())
	}
}

// envInt reads a whole number from the environment, or gives def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v, ok := os.LookupEnv(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a whole number", name, v)
	}
	return n
}

// TestRestartMidStream shuts the server down while a paced "referee
// stream" runs, starts a new server on the same data directory and port,
// and checks that the client resumes the recovered session and gets a
// result whose video holds every frame once.
func TestRestartMidStream(t *testing.T) { restartMidStream(t, false) }

// TestRestartDamagedSpool is TestRestartMidStream with one frame's payload
// corrupted in the middle of the spool on disk while the server is down:
// the new server drops that record with a log line and keeps every other
// frame, and the client sends the lost one again when it resumes.
func TestRestartDamagedSpool(t *testing.T) { restartMidStream(t, true) }

// damageSpool flips a payload byte of the middle record of the spool at
// path (records: a 20-byte header whose bytes 12-16 are the payload
// length, then the payload) and returns that record's frame number.
func damageSpool(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offsets []int
	for off := 0; off+20 <= len(data); off += 20 + int(binary.LittleEndian.Uint32(data[off+12:])) {
		offsets = append(offsets, off)
	}
	if len(offsets) < 3 {
		t.Fatalf("the spool holds %d records, want a few to damage one in the middle", len(offsets))
	}
	mid := offsets[len(offsets)/2]
	data[mid+20+10] ^= 0xff
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return int(binary.LittleEndian.Uint32(data[mid+4:]))
}

func restartMidStream(t *testing.T, damage bool) {
	dataDir := t.TempDir()
	var logs1, logs2 servertest.LogBuffer
	cfg := server.Config{Host: "127.0.0.1", DataDir: dataDir, Logger: logs1.Logger()}
	srv1, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := srv1.Addr()
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)

	const frames = 90
	video := counterVideo(t, ".avi", frames, 320, 240)
	out := filepath.Join(t.TempDir(), "result.json")
	type outcome struct {
		code       int
		stdout, se string
	}
	done := make(chan outcome, 1)
	go func() {
		code, so, se := run(t, "stream", "http://"+addr, "--video", video, "--signal", sampleSignal, "--session-id", "restart",
			"--fps", "30", "--output", out, "--resume-timeout", "20", "-v")
		done <- outcome{code, so, se}
	}()
	logs1.WaitFor(t, "session_id=restart frame=0")
	// Cut in the middle: a fifth of the frames in, however loaded the
	// machine, before the last of them (3 s at 30 fps).
	node := &testNode{url: "http://" + addr}
	if !within(10*time.Second, func() bool {
		s := node.listed(t, "restart")
		f, _ := s["frames"].(float64)
		return f >= frames/5
	}) {
		t.Fatalf("the stream did not reach %d frames within 10 s: %v", frames/5, node.listed(t, "restart"))
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv1.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	logs1.WaitFor(t, "kept session on disk for recovery")
	damaged := -1
	if damage {
		damaged = damageSpool(t, filepath.Join(dataDir, "spool", "restart", "frames.spool"))
	}

	cfg.Port, cfg.Logger = port, logs2.Logger()
	srv2, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := srv2.Start(context.Background())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restart on port %d: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv2.Shutdown(ctx)
	})
	var o outcome
	select {
	case o = <-done:
	case <-time.After(40 * time.Second):
		t.Fatalf("the client did not finish within 40 s of the restart\nserver log:\n%s", logs2.String())
	}
	if o.code != exitOK {
		t.Fatalf("stream: exit %d\n%s\nserver log:\n%s", o.code, o.se, logs2.String())
	}
	for _, want := range []string{"Connection lost; resuming the session", "Session resumed", "server_had_it=true"} {
		if !strings.Contains(o.se, want) {
			t.Errorf("client log lacks %q:\n%s", want, o.se)
		}
	}
	logs2.WaitFor(t, `msg="recovered session"`)
	logs2.WaitFor(t, `msg="resumed session"`)
	if damage {
		logs2.WaitFor(t, `msg="dropped a damaged record from a recovered spool"`, "session_id=restart", "frame="+strconv.Itoa(damaged), `why="checksum mismatch"`)
		if lines := logs2.Lines("truncated a spool"); len(lines) > 0 {
			t.Errorf("the damaged spool was truncated: %s", lines[0])
		}
	}
	var res e2eResult
	data, err := os.ReadFile(out)
	if err != nil || json.Unmarshal(data, &res) != nil || res.Status != "success" {
		t.Fatalf("result file %s: %v %s", out, err, data)
	}
	if res.StreamingStats.FramesReceived != frames {
		t.Errorf("server received %d frames, want %d", res.StreamingStats.FramesReceived, frames)
	}
	verifyVideo(t, res.Artifacts.Video, frames)
}

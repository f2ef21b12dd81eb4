package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/referee-project/referee/server/servertest"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio"
	"github.com/referee-project/referee/protocol"
)

// checkDelivered asserts that the peer received exactly n counter frames,
// numbered and decoding 0..n-1 in order.
func checkDelivered(t *testing.T, rec peerRecord, n int) {
	t.Helper()
	if len(rec.frames) != n {
		t.Fatalf("peer received %d frames, want %d", len(rec.frames), n)
	}
	for i, f := range rec.frames {
		if f.number != i {
			t.Fatalf("frame %d arrived numbered %d", i, f.number)
		}
	}
	rep := synth.VerifySequence(decodeCounters(t, rec.frames))
	if !rep.SequenceOK || rep.Frames != n {
		t.Fatalf("counter sequence: %+v", rep)
	}
}

func TestRunPythonLikeServer(t *testing.T) {
	// The peer answers like the existing Python service: it ignores the
	// "protocol" field, so the client must fall back to v1, and it says
	// valid:false "No signal data received" at session_end, which must not
	// stop the run.
	p := newPeer(t, peerConfig{})
	sigPath, sigData := signalFile(t)
	var logs servertest.LogBuffer
	opts := baseOptions(p, video(t, 120, "avi"), sigPath, &logs)
	res, err := Run(testContext(t), opts)
	if err != nil {
		t.Fatalf("Run: %v\nlogs:\n%s", err, logs.String())
	}
	rec := p.snapshot()
	if len(rec.violations) > 0 {
		t.Fatalf("protocol violations seen by the peer: %q", rec.violations)
	}
	if len(rec.starts) != 1 {
		t.Fatalf("%d session_start, want 1", len(rec.starts))
	}
	st := rec.starts[0]
	if st.Protocol != protocol.V2 || st.Width != 160 || st.Height != 120 || st.FPS != 25 || st.ExpectedFrames != 120 || st.VideoFormat != protocol.DefaultVideoFormat {
		t.Errorf("session_start = %+v, want v2 asked, 160x120 at 25 fps, 120 frames, bgr24", st)
	}
	// The generated id carries the phrase number of the log (phrase 9),
	// then 64 random bits.
	if !regexp.MustCompile(`^\d{8}_\d{6}_phrase09_[0-9a-f]{16}$`).MatchString(st.SessionID) {
		t.Errorf("session id %q, want YYYYMMDD_HHMMSS_phrase09_ and 16 hex digits", st.SessionID)
	}
	checkDelivered(t, rec, 120)
	if string(rec.signal) != string(sigData) || rec.signalMsg.Filename != sampleSignal || rec.signalMsg.Size != len(sigData) {
		t.Errorf("signal: %d bytes as %q (announced %d), want the %d bytes of %s", len(rec.signal), rec.signalMsg.Filename, rec.signalMsg.Size, len(sigData), sampleSignal)
	}
	if len(rec.ends) != 1 || rec.ends[0].TotalFrames != 120 {
		t.Errorf("session_end: %+v, want one with total_frames 120", rec.ends)
	}
	if len(rec.aborts) != 0 {
		t.Errorf("a healthy run sent session_abort: %+v", rec.aborts)
	}
	if res.Protocol != protocol.V1 || res.Frames != 120 || res.SessionID != st.SessionID {
		t.Errorf("result: protocol %q, %d frames, session %q", res.Protocol, res.Frames, res.SessionID)
	}
	if res.Validation.Valid || len(res.Validation.Issues) != 1 {
		t.Errorf("validation %+v, want the peer's valid:false", res.Validation)
	}
	var got, want any
	if err := json.Unmarshal(res.Raw, &got); err != nil {
		t.Fatalf("result is not JSON: %v: %s", err, res.Raw)
	}
	json.Unmarshal([]byte(pythonResult), &want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("result %s, want the peer's object whole: %s", res.Raw, pythonResult)
	}
	out := logs.String()
	for _, line := range []string{
		`"Connected to ws://` + strings.TrimPrefix(p.url(), "http://") + `/stream"`,
		`msg="Sent session start"`,
		`falling back to v1`,
		`msg="Session started successfully"`,
		`msg="Progress: 100/120 frames (83.3%), `,
		`msg="Sent session end (120 frames)"`,
		`msg="Session ended successfully"`,
		`msg="Server validation: No signal data received"`,
		fmt.Sprintf(`msg="Sent signal data (%d bytes)"`, len(sigData)),
		`msg="Processing: video_reconstruction (100%)"`,
		`msg="Processing: analysis (0%)"`,
		`msg="Processing complete!"`,
	} {
		if !strings.Contains(out, line) {
			t.Errorf("logs lack %s\nlogs:\n%s", line, out)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(l, "session_id="+st.SessionID) {
			t.Errorf("log line without the session: %s", l)
		}
	}
}

func TestRunV2(t *testing.T) {
	for _, enc := range []string{protocol.EncodingJPEG, protocol.EncodingPNG, protocol.EncodingRaw} {
		t.Run(enc, func(t *testing.T) {
			// Acknowledging only whole windows makes the client stop at
			// every full window: it must never have more in flight.
			p := newPeer(t, peerConfig{v2: true, window: 4, ackEvery: 4})
			sigPath, _ := signalFile(t)
			var logs servertest.LogBuffer
			opts := baseOptions(p, video(t, 30, "mp4"), sigPath, &logs)
			opts.Encoding = enc
			opts.SessionID = "v2-" + enc
			res, err := Run(testContext(t), opts)
			if err != nil {
				t.Fatalf("Run: %v\nlogs:\n%s", err, logs.String())
			}
			rec := p.snapshot()
			if len(rec.violations) > 0 {
				t.Fatalf("protocol violations seen by the peer: %q", rec.violations)
			}
			checkDelivered(t, rec, 30)
			for _, f := range rec.frames {
				if f.encoding != enc {
					t.Fatalf("frame %d encoded %s, want %s", f.number, f.encoding, enc)
				}
			}
			if rec.maxInFlight != 4 {
				t.Errorf("at most %d frames in flight, want the full window of 4", rec.maxInFlight)
			}
			if res.Protocol != protocol.V2 || res.SessionID != "v2-"+enc || rec.starts[0].SessionID != "v2-"+enc {
				t.Errorf("result protocol %q session %q; peer saw session %q", res.Protocol, res.SessionID, rec.starts[0].SessionID)
			}
		})
	}
}

func TestRunProtocolV1Requested(t *testing.T) {
	p := newPeer(t, peerConfig{v2: true})
	sigPath, _ := signalFile(t)
	var logs servertest.LogBuffer
	opts := baseOptions(p, video(t, 12, "avi"), sigPath, &logs)
	opts.Protocol = protocol.V1
	res, err := Run(testContext(t), opts)
	if err != nil {
		t.Fatalf("Run: %v\nlogs:\n%s", err, logs.String())
	}
	rec := p.snapshot()
	if rec.starts[0].Protocol != "" {
		t.Errorf("a v1 session_start carried protocol %q; the existing service's clients send none", rec.starts[0].Protocol)
	}
	if res.Protocol != protocol.V1 || len(rec.violations) > 0 {
		t.Errorf("protocol %q, violations %q", res.Protocol, rec.violations)
	}
	checkDelivered(t, rec, 12)
}

func TestRunBadInputFailsBeforeSession(t *testing.T) {
	dir := t.TempDir()
	goodVideo := video(t, 5, "avi")
	goodSignal, _ := signalFile(t)
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	notVideo := write("notes.mp4", []byte("these are notes, not a video\n"))
	emptySignal := write("empty.txt", nil)
	binarySignal := write("frame.txt", []byte{0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F'})
	prose := write("prose.txt", []byte("Dear fencers,\nthe tournament starts at nine.\n"))
	missingVideo := filepath.Join(dir, "missing.avi")
	missingSignal := filepath.Join(dir, "missing.txt")
	// Text that FFmpeg's tty demuxer (files named .txt, 512 bytes or more)
	// would play as 640x400 frames of ANSI art.
	letter := write("letter.txt", []byte(strings.Repeat("Dear fencers, the tournament starts at nine.\n", 20)))
	textVideo := func(path string) string {
		return "Cannot open video " + path + ": it is text, not a video: FFmpeg reads it as ANSI art (codec ansi) (check the --video path: the phrase log goes to --signal)"
	}

	for _, tc := range []struct {
		name, video, signal string
		want                string
		is                  error
	}{
		{"missing video", missingVideo, goodSignal, "Cannot open video " + missingVideo + ": no such file", fs.ErrNotExist},
		{"text file as mp4", notVideo, goodSignal, "Cannot open video " + notVideo, nil},
		{"phrase log as video", goodSignal, goodSignal, textVideo(goodSignal), videoio.ErrCannotOpen},
		{"text file as video", letter, goodSignal, textVideo(letter), videoio.ErrCannotOpen},
		{"directory as video", dir, goodSignal, "Cannot open video " + dir + ": it is a directory", nil},
		{"missing signal", goodVideo, missingSignal, "Signal file not found: " + missingSignal, fs.ErrNotExist},
		{"empty signal", goodVideo, emptySignal, "Signal file " + emptySignal + " is empty", signal.ErrEmpty},
		{"binary signal", goodVideo, binarySignal, "Signal file " + binarySignal + " is not a text phrase log", signal.ErrBinary},
		{"prose as signal", goodVideo, prose, "Signal file " + prose + " is not a scoring-box phrase log", signal.ErrNotPhraseLog},
		{"directory as signal", goodVideo, dir, "Signal file " + dir + " is a directory", nil},
		// The video is checked first, whatever else is wrong.
		{"both bad", missingVideo, missingSignal, "Cannot open video " + missingVideo, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, peerConfig{})
			var logs servertest.LogBuffer
			_, err := Run(testContext(t), baseOptions(p, tc.video, tc.signal, &logs))
			e := errorOf(t, err)
			if e.Kind != KindInput || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %v (kind %v), want kind input starting %q", err, e.Kind, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
			if rec := p.snapshot(); rec.conns != 0 {
				t.Errorf("the client connected to the server (%d times) despite bad input", rec.conns)
			}
		})
	}
}

func TestRunCameraThatWontOpen(t *testing.T) {
	p := newPeer(t, peerConfig{})
	sigPath, _ := signalFile(t)
	var logs servertest.LogBuffer
	opts := baseOptions(p, "", sigPath, &logs)
	opts.Video, opts.Camera, opts.Duration = "", 97, time.Second
	_, err := Run(testContext(t), opts)
	if e := errorOf(t, err); e.Kind != KindInput || !strings.HasPrefix(err.Error(), "Cannot open camera 97") {
		t.Errorf("error %v (kind %v), want kind input \"Cannot open camera 97...\"", err, e.Kind)
	}
	if rec := p.snapshot(); rec.conns != 0 {
		t.Errorf("connected to the server despite no camera")
	}
}

func TestRunOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"encoding", func(o *Options) { o.Encoding = "gif" }, `encoding "gif"`},
		{"quality", func(o *Options) { o.JPEGQuality = 101 }, "JPEG quality 101"},
		{"protocol", func(o *Options) { o.Protocol = "v3" }, `protocol "v3"`},
		{"no source", func(o *Options) { o.Video = "" }, "no video"},
		{"camera without duration", func(o *Options) { o.Video, o.Camera = "", 0 }, "camera 0 needs a capture duration"},
		{"no signal", func(o *Options) { o.Signal = "" }, "no signal file"},
		{"session id", func(o *Options) { o.SessionID = "../../etc/passwd" }, `session id "../../etc/passwd"`},
		{"server", func(o *Options) { o.Server = "ftp://host" }, `scheme "ftp"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Server: "http://127.0.0.1:1", Video: "v.avi", Camera: -1, Signal: "s.txt"}
			tc.edit(&opts)
			_, err := Run(testContext(t), opts)
			if e := errorOf(t, err); e.Kind != KindInput || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v (kind %v), want kind input with %q", err, e.Kind, tc.want)
			}
		})
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestRunServerDown(t *testing.T) {
	sigPath, _ := signalFile(t)
	addr := closedPort(t)
	_, err := Run(testContext(t), Options{Server: addr, Video: video(t, 3, "avi"), Signal: sigPath, Timeout: 2 * time.Second})
	e := errorOf(t, err)
	want := "Cannot connect to http://" + addr + "/health: connection refused (check that `referee serve` is running"
	if e.Kind != KindConnection || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %v (kind %v), want kind connection starting %q", err, e.Kind, want)
	}
}

func TestRunServerSilent(t *testing.T) {
	// A listener that accepts and never answers: /health times out.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		var conns []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	defer func() {
		l.Close()
		<-accepted
	}()
	sigPath, _ := signalFile(t)
	_, err = Run(testContext(t), Options{Server: "http://" + l.Addr().String(), Video: video(t, 3, "avi"), Signal: sigPath, Timeout: 300 * time.Millisecond})
	e := errorOf(t, err)
	if e.Kind != KindConnection || !strings.HasPrefix(err.Error(), "Connection timeout: http://"+l.Addr().String()+"/health did not answer within 300ms") {
		t.Errorf("error %v (kind %v), want kind connection \"Connection timeout: ...\"", err, e.Kind)
	}
}

func TestRunSessionStartRefused(t *testing.T) {
	p := newPeer(t, peerConfig{startError: &protocol.Error{ErrorCode: protocol.CodeSessionStartFailed, ErrorMessage: "Session limit reached (10 active)"}})
	sigPath, _ := signalFile(t)
	var logs servertest.LogBuffer
	_, err := Run(testContext(t), baseOptions(p, video(t, 5, "avi"), sigPath, &logs))
	e := errorOf(t, err)
	var se *ServerError
	if e.Kind != KindServer || !errors.As(err, &se) || se.Code != protocol.CodeSessionStartFailed {
		t.Fatalf("error %v (kind %v), want kind server with code SESSION_START_FAILED", err, e.Kind)
	}
	want := "The server refused the session: SESSION_START_FAILED: Session limit reached (10 active) (check the server's session and memory limits, or give another --session-id)"
	if err.Error() != want {
		t.Errorf("error\n%s\nwant\n%s", err, want)
	}
	rec := p.snapshot()
	if len(rec.frames) != 0 || len(rec.aborts) != 0 {
		t.Errorf("after a refused start the peer got %d frames and %d aborts, want none", len(rec.frames), len(rec.aborts))
	}
}

func TestRunProcessingFailed(t *testing.T) {
	p := newPeer(t, peerConfig{processError: &protocol.Error{ErrorCode: protocol.CodeProcessingFailed, ErrorMessage: "No frames to write"}})
	sigPath, _ := signalFile(t)
	var logs servertest.LogBuffer
	opts := baseOptions(p, video(t, 5, "avi"), sigPath, &logs)
	opts.SessionID = "failing"
	_, err := Run(testContext(t), opts)
	e := errorOf(t, err)
	var se *ServerError
	if e.Kind != KindServer || !errors.As(err, &se) || se.Code != protocol.CodeProcessingFailed {
		t.Fatalf("error %v (kind %v), want kind server with code PROCESSING_FAILED", err, e.Kind)
	}
	if want := "Processing failed on the server: PROCESSING_FAILED: No frames to write (check the server's log for session failing)"; err.Error() != want {
		t.Errorf("error\n%s\nwant\n%s", err, want)
	}
	if rec := p.snapshot(); len(rec.aborts) != 0 {
		t.Errorf("the client aborted a session the server had ended: %+v", rec.aborts)
	}
}

func TestRunServerClosesMidStream(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop bool
		want string
	}{
		{"close frame", false, "Connection closed by the server (code 1011: test peer closes mid-stream)"},
		{"dropped TCP", true, "Connection lost to ws://"},
	} {
		for _, proto := range []string{protocol.V1, protocol.V2} {
			t.Run(tc.name+"/"+proto, func(t *testing.T) {
				p := newPeer(t, peerConfig{v2: true, window: 8, ackEvery: 2, closeAfter: 6, drop: tc.drop})
				sigPath, _ := signalFile(t)
				var logs servertest.LogBuffer
				opts := baseOptions(p, video(t, 60, "avi"), sigPath, &logs)
				opts.Protocol = proto
				_, err := Run(testContext(t), opts)
				e := errorOf(t, err)
				if e.Kind != KindConnection || !strings.HasPrefix(err.Error(), tc.want) {
					t.Errorf("error %v (kind %v), want kind connection starting %q", err, e.Kind, tc.want)
				}
				rec := p.snapshot()
				if len(rec.aborts) != 0 {
					t.Errorf("the client sent session_abort into a connection the server had closed: %+v", rec.aborts)
				}
				if strings.Count(logs.String(), "session abort") != 0 {
					t.Errorf("the client tried to abort over a dead connection:\n%s", logs.String())
				}
			})
		}
	}
}

func TestRunInterruptedAborts(t *testing.T) {
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	p := newPeer(t, peerConfig{v2: true, onFrame: func(n int) {
		if n == 5 {
			cancel()
		}
	}})
	sigPath, _ := signalFile(t)
	var logs servertest.LogBuffer
	_, err := Run(ctx, baseOptions(p, video(t, 300, "avi"), sigPath, &logs))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want one wrapping context.Canceled", err)
	}
	rec := p.snapshot()
	if len(rec.aborts) != 1 || rec.aborts[0].Reason != "interrupted" || rec.aborts[0].SessionID != rec.starts[0].SessionID {
		t.Fatalf("aborts %+v, want one with reason \"interrupted\" for session %s", rec.aborts, rec.starts[0].SessionID)
	}
	if len(rec.frames) >= 300 || len(rec.ends) != 0 {
		t.Errorf("after the interrupt the peer got %d frames and %d session_end", len(rec.frames), len(rec.ends))
	}
}

// failingSource is a real video reader that fails at frame failAt, as a
// file cut short or a disk error would.
type failingSource struct {
	frameSource
	n, failAt int
}

var errDisk = errors.New("input/output error")

func (s *failingSource) Read(dst *bgr.Image) error {
	s.n++ // frame 0 came from the preflight
	if s.n == s.failAt {
		return errDisk
	}
	return s.frameSource.Read(dst)
}

func TestRunReadErrorAborts(t *testing.T) {
	for _, proto := range []string{protocol.V1, protocol.V2} {
		t.Run(proto, func(t *testing.T) {
			p := newPeer(t, peerConfig{v2: true})
			sigPath, _ := signalFile(t)
			var logs servertest.LogBuffer
			opts := baseOptions(p, video(t, 20, "avi"), sigPath, &logs)
			opts.Protocol = proto
			opts.wrapSource = func(s frameSource) frameSource { return &failingSource{frameSource: s, failAt: 7} }
			_, err := Run(testContext(t), opts)
			e := errorOf(t, err)
			want := "Failed to read frame 7: input/output error (video counter20.avi); check the source with referee probe-video"
			if e.Kind != KindInput || err.Error() != want || !errors.Is(err, errDisk) {
				t.Errorf("error %v (kind %v), want kind input %q wrapping the read error", err, e.Kind, want)
			}
			rec := p.snapshot()
			if len(rec.aborts) != 1 || !strings.HasPrefix(rec.aborts[0].Reason, "Failed to read frame 7: input/output error") {
				t.Errorf("aborts %+v, want one whose reason is the read error", rec.aborts)
			}
			checkDelivered(t, rec, 7)
		})
	}
}

// replyTimeout is --timeout for the tests of a peer that stops answering.
// It also bounds /health, the handshake and session_started, which a
// loaded machine answers, but not always within a few hundred ms.
const replyTimeout = 2 * time.Second

func TestRunNoAnswerToSessionStart(t *testing.T) {
	p := newPeer(t, peerConfig{silent: true})
	sigPath, _ := signalFile(t)
	var logs servertest.LogBuffer
	opts := baseOptions(p, video(t, 5, "avi"), sigPath, &logs)
	opts.Timeout = replyTimeout
	_, err := Run(testContext(t), opts)
	e := errorOf(t, err)
	if want := "Connection timeout: no session_started from the server within 2s"; e.Kind != KindConnection || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %v (kind %v), want kind connection starting %q", err, e.Kind, want)
	}
	// The server may hold the session it never confirmed: it is told.
	if rec := p.snapshot(); len(rec.aborts) != 1 || !strings.HasPrefix(rec.aborts[0].Reason, "Connection timeout") {
		t.Errorf("aborts %+v, want one with the timeout as reason", rec.aborts)
	}
}

func TestRunNoFrameAcks(t *testing.T) {
	for _, tc := range []struct {
		proto, want string
		frames      int
	}{
		{protocol.V1, "Connection timeout: no frame_ack from the server within 2s with 1 frames unacknowledged", 1},
		{protocol.V2, "Connection timeout: no frames_ack from the server within 2s with 4 frames unacknowledged", 4},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			p := newPeer(t, peerConfig{v2: true, window: 4, noAcks: true})
			sigPath, _ := signalFile(t)
			var logs servertest.LogBuffer
			opts := baseOptions(p, video(t, 20, "avi"), sigPath, &logs)
			opts.Protocol, opts.Timeout = tc.proto, replyTimeout
			_, err := Run(testContext(t), opts)
			if e := errorOf(t, err); e.Kind != KindConnection || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %v (kind %v), want kind connection starting %q", err, e.Kind, tc.want)
			}
			rec := p.snapshot()
			if len(rec.aborts) != 1 || !strings.HasPrefix(rec.aborts[0].Reason, tc.want) {
				t.Errorf("aborts %+v, want one with the timeout as reason", rec.aborts)
			}
			if len(rec.frames) != tc.frames {
				t.Errorf("the peer received %d frames, want the window's %d", len(rec.frames), tc.frames)
			}
		})
	}
}

func TestRunServerGoesSilent(t *testing.T) {
	// The peer stops reading once processing starts, so it stops
	// answering pings: the client must notice within its keepalive,
	// although processing itself has no timeout.
	stall := make(chan struct{})
	p := newPeer(t, peerConfig{stall: stall})
	sigPath, _ := signalFile(t)
	var logs servertest.LogBuffer
	opts := baseOptions(p, video(t, 5, "avi"), sigPath, &logs)
	opts.KeepAlive = 600 * time.Millisecond
	start := time.Now()
	_, err := Run(testContext(t), opts)
	close(stall)
	e := errorOf(t, err)
	if want := "Connection lost: nothing from ws://"; e.Kind != KindConnection || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "for 600ms, not even a pong") {
		t.Errorf("error %v (kind %v), want kind connection starting %q", err, e.Kind, want)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("a silent server was noticed after %v", d)
	}
	if rec := p.snapshot(); len(rec.aborts) != 0 {
		t.Errorf("aborted over a dead connection: %+v", rec.aborts)
	}
}

func TestRunPacing(t *testing.T) {
	p := newPeer(t, peerConfig{v2: true, window: 64})
	sigPath, _ := signalFile(t)
	var logs servertest.LogBuffer
	opts := baseOptions(p, video(t, 9, "avi"), sigPath, &logs)
	opts.FPS = 40
	res, err := Run(testContext(t), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Frame 8 leaves 8/40 s after frame 0; only a lower bound is safe.
	if min := 190 * time.Millisecond; res.StreamTime < min {
		t.Errorf("9 frames at --fps 40 took %v from first to last, want at least %v", res.StreamTime, min)
	}
	// The milestones bench times sessions by: the paced frames lie
	// between session_started and session_end.
	if tm := res.Times; tm.Started.IsZero() || tm.EndSent.Sub(tm.Started) < res.StreamTime || tm.Ended.Before(tm.EndSent) || tm.Completed.Before(tm.Ended) {
		t.Errorf("times %+v, frames sent over %v: want session_started, the frames, session_end sent, session_ended, process_complete in that order", tm, res.StreamTime)
	}
	checkDelivered(t, p.snapshot(), 9)
}

func TestRunProgressBar(t *testing.T) {
	p := newPeer(t, peerConfig{v2: true})
	sigPath, _ := signalFile(t)
	var logs, bar servertest.LogBuffer
	opts := baseOptions(p, video(t, 20, "avi"), sigPath, &logs)
	opts.ProgressBar = &bar
	if _, err := Run(testContext(t), opts); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Each bar's last drawing ends its line: the streaming bar with the
	// whole stream's rate, then the processing bar at its last stage.
	var final []string
	for _, line := range strings.Split(bar.String(), "\n") {
		drawn := strings.Split(line, "\r")
		final = append(final, strings.TrimRight(drawn[len(drawn)-1], " "))
	}
	full := "|" + strings.Repeat("█", 40) + "|"
	if len(final) != 3 || !regexp.MustCompile(`^Streaming +[0-9]+\.[0-9] fps +[0-9]+\.[0-9] Mbps 100% `+regexp.QuoteMeta(full)+` \(20/20\)$`).MatchString(final[0]) ||
		final[1] != "Processing: analysis               100% "+full || final[2] != "" {
		t.Errorf("the bars' last drawings: %q", final)
	}
	if out := bar.String(); strings.Contains(out, "frames/") {
		t.Errorf("the bar shows the library's iteration rate: %q", out)
	}
	if strings.Contains(logs.String(), "Progress:") {
		t.Errorf("progress logged as lines while a bar was shown")
	}
}

func TestRunServerClosesAfterResult(t *testing.T) {
	// The result and the close frame arrive together: the result wins.
	for i := range 10 {
		p := newPeer(t, peerConfig{closeAfterResult: true})
		sigPath, _ := signalFile(t)
		var logs servertest.LogBuffer
		res, err := Run(testContext(t), baseOptions(p, video(t, 2, "avi"), sigPath, &logs))
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if string(res.Raw) != pythonResult {
			t.Fatalf("run %d: result %s", i, res.Raw)
		}
	}
}

func TestRunKeepsLargeResult(t *testing.T) {
	// The result object is kept byte for byte, however large.
	big := `{"status":"success","blob":"` + strings.Repeat("x", 200000) + `"}`
	p := newPeer(t, peerConfig{result: big})
	sigPath, _ := signalFile(t)
	var logs servertest.LogBuffer
	res, err := Run(testContext(t), baseOptions(p, video(t, 3, "avi"), sigPath, &logs))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if string(res.Raw) != big {
		t.Errorf("result of %d bytes came back as %d bytes", len(big), len(res.Raw))
	}
}

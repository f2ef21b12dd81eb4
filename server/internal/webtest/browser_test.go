package webtest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/gorilla/websocket"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/evaluate"
	"github.com/referee-project/referee/pipeline/motion"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio"
	"github.com/referee-project/referee/protocol"
	"github.com/referee-project/referee/server"
	"github.com/referee-project/referee/server/servertest"
)

// browser is the one Chromium of this test binary, started by TestMain:
// starting it costs about a second, every test opens tabs in it.
var browser context.Context

// TestMain starts Chromium once, headless, with a fresh profile and
// nothing that reaches the network, and stops it after the tests. Without
// a chromium binary the tests fail and say how to install it.
func TestMain(m *testing.M) {
	path, err := exec.LookPath("chromium")
	if err != nil {
		fmt.Fprintln(os.Stderr, "webtest: no chromium binary: install Debian's chromium (make deps does: apt-get install chromium)")
		os.Exit(1)
	}
	profile, err := os.MkdirTemp("", "referee-chromium-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "webtest:", err)
		os.Exit(1)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // as root, Chromium's sandbox does not start
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 800),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(alloc)
	code := 1
	if err := chromedp.Do(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "webtest: start chromium:", err)
	} else {
		browser = ctx
		code = m.Run()
	}
	cancelBrowser()
	cancelAlloc()
	os.RemoveAll(profile)
	os.Exit(code)
}

// tab opens a new tab for one test in a browser context of its own (its
// own cookies: the servers of two tests share 127.0.0.1, and a cookie is
// not bound to a port), closed when the test ends; every action in it
// must finish within the test's budget.
func tab(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
	})
	return ctx
}

// reviewServer is a real server on loopback with the motion analyzer
// (the timeline and the browser videos) and a token.
type reviewServer struct {
	srv   *server.Server
	cfg   server.Config
	base  string
	token string
	logs  *servertest.LogBuffer
}

func startServer(t *testing.T) *reviewServer {
	t.Helper()
	rs := launch(t, func(cfg *server.Config) { cfg.Version = "test" })
	t.Cleanup(func() {
		if err := rs.srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", rs.logs)
		}
	})
	return rs
}

// launch starts a reviewServer as edit configures it; the caller stops it.
func launch(t *testing.T, edit func(*server.Config)) *reviewServer {
	t.Helper()
	logs := &servertest.LogBuffer{}
	cfg := server.Config{
		Host:      "127.0.0.1",
		DataDir:   t.TempDir(),
		Token:     "club-secret",
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Analyzer:  "motion",
		Analyzers: map[string]pipeline.Analyzer{"motion": &motion.Analyzer{}},
	}
	edit(&cfg)
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg.OutputDir = filepath.Join(cfg.DataDir, "sessions")
	return &reviewServer{srv: srv, cfg: cfg, base: "http://" + srv.Addr(), token: cfg.Token, logs: logs}
}

// The arrow keys, as chromedp types them.
const (
	kbArrowRight = kb.ArrowRight
	kbArrowLeft  = kb.ArrowLeft
)

// phrase is a scripted phrase filmed as JPEG frames, with its log.
type phrase struct {
	sc     synth.Scenario
	fps    float64
	w, h   int
	frames [][]byte
	log    []byte
}

func film(t *testing.T, name string, fps float64, w, h int) phrase {
	t.Helper()
	sc, err := synth.ScenarioByName(name)
	if err != nil {
		t.Fatal(err)
	}
	p := phrase{sc: sc, fps: fps, w: w, h: h, log: signal.Render(sc.Signal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))}
	img := bgr.New(w, h)
	for i := range int(math.Floor(sc.Duration*fps)) + 1 {
		sc.Render(img, float64(i)/fps)
		j, err := videoio.EncodeJPEG(img, 85)
		if err != nil {
			t.Fatal(err)
		}
		p.frames = append(p.frames, j)
	}
	return p
}

// streamer is a capture client on the wire (v1), so that the test can
// stop between frames while the page watches.
type streamer struct {
	t  *testing.T
	ws *websocket.Conn
	id string
}

func (rs *reviewServer) stream(t *testing.T, id string, p phrase) *streamer {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+rs.srv.Addr()+protocol.Path, map[string][]string{"Authorization": {"Bearer " + rs.token}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	s := &streamer{t: t, ws: ws, id: id}
	s.send(protocol.SessionStart{SessionID: id, FPS: p.fps, Width: p.w, Height: p.h})
	s.expect("session_started")
	return s
}

func (s *streamer) send(m protocol.Message) {
	s.t.Helper()
	data, err := protocol.Encode(m)
	if err != nil {
		s.t.Fatal(err)
	}
	s.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := s.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		s.t.Fatal(err)
	}
}

func (s *streamer) sendBinary(b []byte) {
	s.t.Helper()
	s.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := s.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		s.t.Fatal(err)
	}
}

// expect reads messages until one of type typ, and fails on an error.
func (s *streamer) expect(typ string) []byte {
	s.t.Helper()
	for {
		s.ws.SetReadDeadline(time.Now().Add(60 * time.Second))
		_, data, err := s.ws.ReadMessage()
		if err != nil {
			s.t.Fatalf("waiting for %s: %v", typ, err)
		}
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			s.t.Fatalf("waiting for %s: %v in %s", typ, err, data)
		}
		if head.Type == "error" {
			s.t.Fatalf("waiting for %s: %s", typ, data)
		}
		if head.Type == typ {
			return data
		}
	}
}

func (s *streamer) frames(p phrase, from, to int) {
	s.t.Helper()
	for i := from; i < to; i++ {
		s.send(protocol.Frame{SessionID: s.id, FrameNumber: i, Timestamp: float64(i) / p.fps, Encoding: protocol.EncodingJPEG, Size: len(p.frames[i])})
		s.sendBinary(p.frames[i])
		s.expect("frame_ack")
	}
}

// finish ends the session and returns the result.
func (s *streamer) finish(p phrase) map[string]any {
	s.t.Helper()
	s.send(protocol.SessionEnd{SessionID: s.id, TotalFrames: len(p.frames)})
	s.expect("session_ended")
	s.send(protocol.Signal{SessionID: s.id, Filename: "phrase.txt", Size: len(p.log)})
	s.sendBinary(p.log)
	var done struct {
		Result map[string]any `json:"result"`
	}
	if err := json.Unmarshal(s.expect("process_complete"), &done); err != nil {
		s.t.Fatal(err)
	}
	return done.Result
}

// login answers the page's token form.
func login(token string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.WaitVisible(chromedp.CSS(`form.login input`)),
		chromedp.SendKeys(chromedp.CSS(`form.login input`), token),
		chromedp.Click(chromedp.CSS(`form.login button`)),
		chromedp.WaitNotPresent(chromedp.CSS(`form.login`)),
	}
}

// waitJS polls expr in the page until it is true.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))
}

// eval evaluates expr in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// do runs steps, and fails the test saying what was being done.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// text is the text of the element sel.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

// TestReviewInBrowser is the referee's path through the pages: the list
// asks for the token once; a session streamed meanwhile appears in it
// without a reload, and turns done; its page plays the replay (the time
// advances), steps one frame each way, jumps to the hit from the
// timeline's events, records an override with the referee's name and a
// note from the keyboard, and after a reload still shows it.
func TestReviewInBrowser(t *testing.T) {
	rs := startServer(t)
	p := film(t, "beat-left-attack-right-counter", 15, 640, 480)
	ctx := tab(t)

	do(t, ctx, "open the list and log in", append([]chromedp.Action[chromedp.Void]{chromedp.Navigate(rs.base + "/")}, append(login(rs.token),
		waitJS(`document.getElementById("empty") && !document.getElementById("empty").hidden`),
		// A page that reloads loses this.
		chromedp.Evaluate[chromedp.Void](`window.stillTheSamePage = true`))...)...)

	s := rs.stream(t, "bout1", p)
	s.frames(p, 0, 5)
	row := `document.querySelector('tr[data-id="bout1"]')`
	do(t, ctx, "see the streamed session appear", waitJS(row+` && `+row+`.querySelector(".status").textContent === "streaming"`))
	s.frames(p, 5, len(p.frames))
	res := s.finish(p)
	hitS := res["phrase"].(map[string]any)["first_hit_s"].(float64)
	do(t, ctx, "see the session turn done", waitJS(row+` && `+row+`.querySelector(".status").textContent === "done"`))
	if !eval[bool](t, ctx, `window.stillTheSamePage === true`) {
		t.Error("the list page was reloaded")
	}
	if winner := text(t, ctx, `tr[data-id="bout1"] td.winner`); winner != res["winner"] {
		t.Errorf("the list shows %q, the result says %v", winner, res["winner"])
	}

	// The replay plays.
	currentTime := `document.getElementById("video").currentTime`
	do(t, ctx, "open the session", chromedp.Click(chromedp.CSS(`tr[data-id="bout1"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`#verdict .winner`)),
		waitJS(`document.getElementById("video").readyState >= 2`))
	t0 := eval[float64](t, ctx, currentTime)
	do(t, ctx, "play the video", chromedp.Click(chromedp.ID("play")),
		waitJS(currentTime+` > 0.3`),
		chromedp.Click(chromedp.ID("play")),
		waitJS(`document.getElementById("video").paused`))
	if t1 := eval[float64](t, ctx, currentTime); t1 <= t0 {
		t.Errorf("currentTime went from %v to %v while playing", t0, t1)
	}
	// Space plays and pauses, also after a click on a button; a quarter
	// of the speed is a click.
	paused := `document.getElementById("video").paused`
	do(t, ctx, "play and pause with space", chromedp.Click(chromedp.CSS(`.speeds button[data-rate="0.25"]`)),
		chromedp.KeyEvent(" "), waitJS(`!`+paused), chromedp.KeyEvent(" "), waitJS(paused))
	if rate := eval[float64](t, ctx, `document.getElementById("video").playbackRate`); rate != 0.25 {
		t.Errorf("playback rate %v after 0.25x", rate)
	}
	// A frame step with the arrow key: one frame of the phrase.
	settled := waitJS(`!document.getElementById("video").seeking`)
	do(t, ctx, "step a frame", chromedp.KeyEvent(kbArrowRight), settled)
	step1 := eval[float64](t, ctx, currentTime)
	do(t, ctx, "step a frame", chromedp.KeyEvent(kbArrowRight), settled)
	step2 := eval[float64](t, ctx, currentTime)
	if d := step2 - step1; math.Abs(d-1/p.fps) > 1e-3 {
		t.Errorf("a frame step moved %.4f s, want one frame (%.4f s)", d, 1/p.fps)
	}
	wantFrame := int(math.Floor(step2*p.fps + 1e-6))
	do(t, ctx, "show the frame", waitJS(fmt.Sprintf(`document.getElementById("clock").textContent.startsWith("frame %d ")`, wantFrame)))
	do(t, ctx, "step back", chromedp.KeyEvent(kbArrowLeft), settled)
	if back := eval[float64](t, ctx, currentTime); math.Abs(back-step1) > 1e-3 {
		t.Errorf("a step back went to %.4f s, want %.4f s", back, step1)
	}

	// Jump to the hit from the timeline's events.
	hitFrame := eval[int](t, ctx, `Number(document.querySelector('#events button.hit').dataset.frame)`)
	do(t, ctx, "jump to the hit", chromedp.Click(chromedp.CSS(`#events button.hit`)), settled)
	if at, want := eval[float64](t, ctx, currentTime), (float64(hitFrame)+0.5)/p.fps; math.Abs(at-want) > 1e-3 || hitFrame != int(math.Round(hitS*p.fps)) {
		t.Errorf("after the jump the video is at %.4f s (frame %d), want the hit at %.3f s: frame %d", at, hitFrame, hitS, int(math.Round(hitS*p.fps)))
	}

	// An override from the keyboard: the referee gives the touch to the
	// other fencer with 1 or 2.
	override, key := "right", "2"
	if res["winner"] == "right" {
		override, key = "left", "1"
	}
	do(t, ctx, "record the override",
		chromedp.SendKeys(chromedp.ID("referee"), "Ann Referee"),
		chromedp.SendKeys(chromedp.ID("note"), "blade contact was a parry"),
		chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`),
		chromedp.KeyEvent(key),
		waitJS(`document.getElementById("callmsg").className === "ok"`))
	if msg := text(t, ctx, `#callmsg`); msg != "Recorded: "+override+"." {
		t.Errorf("after the override the page says %q", msg)
	}
	do(t, ctx, "reload", chromedp.Reload(), waitJS(`document.querySelector("#review .current") !== null`))
	if review := text(t, ctx, `#review`); !strings.Contains(review, override+" by Ann Referee") || !strings.Contains(review, "blade contact was a parry") {
		t.Errorf("after a reload the review reads %q", review)
	}
	var stored server.Review
	data, err := os.ReadFile(filepath.Join(rs.cfg.OutputDir, "bout1", server.ReviewFileName))
	if err != nil || json.Unmarshal(data, &stored) != nil || stored.Call != override || stored.Referee != "Ann Referee" {
		t.Errorf("review.json: %s %v", data, err)
	}
	// The review makes the phrase a labelled one for "referee eval" on
	// the server's data directory: the engine's call disagrees with it.
	phrases, err := evaluate.Load(rs.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := evaluate.Run(phrases, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(phrases) != 1 || phrases[0].Name != "bout1" || phrases[0].Referee != override || rep.Overall.Calls != 1 || rep.Overall.Agree != 0 {
		t.Errorf("eval of the data directory: %d phrases %+v, overall %+v; want bout1 called %s, 1 call, 0 agreeing", len(phrases), phrases, rep.Overall, override)
	}
}

// TestScreenshots photographs both pages at 1280x800 and 390x844 (a
// phone) with a reviewed phrase and a failed one. It writes them only
// when REFEREE_SCREENSHOTS names a directory (make screenshots), so that
// a test run never changes the committed pictures; it always checks that
// both pages lay out at both sizes without a horizontal scroll bar.
func TestScreenshots(t *testing.T) {
	rs := startServer(t)
	for i, name := range []string{"left-attack-right-pause", "beat-left-attack-right-counter"} {
		p := film(t, name, 15, 640, 480)
		s := rs.stream(t, fmt.Sprintf("20260102_0304%02d_phrase%02d", 5+i*47, i+1), p)
		s.frames(p, 0, len(p.frames))
		s.finish(p)
	}
	first := "20260102_030405_phrase01"
	body := `{"call":"left","referee":"Ann Referee","note":"clear attack"}`
	if err := postReview(rs, first, body); err != nil {
		t.Fatal(err)
	}
	out := os.Getenv("REFEREE_SCREENSHOTS")
	ctx := tab(t)
	do(t, ctx, "log in", append([]chromedp.Action[chromedp.Void]{chromedp.Navigate(rs.base + "/")}, login(rs.token)...)...)
	for _, size := range []struct {
		name string
		w, h int64
	}{{"desktop", 1280, 800}, {"phone", 390, 844}} {
		for _, page := range []struct{ name, path, ready string }{
			{"list", "/", `document.querySelectorAll("#sessions tbody tr").length === 2`},
			{"session", "/sessions/20260102_030452_phrase02", `document.getElementById("video").readyState >= 2 && document.querySelector("#events button.hit") !== null`},
		} {
			viewport := chromedp.EmulateViewport(size.w, size.h)
			if size.w < 600 {
				viewport = chromedp.EmulateViewport(size.w, size.h, chromedp.EmulateMobile)
			}
			do(t, ctx, "open the "+page.name+" page at "+size.name+" size", viewport, chromedp.Navigate(rs.base+page.path), waitJS(page.ready))
			if page.name == "session" {
				do(t, ctx, "jump to the hit", chromedp.Click(chromedp.CSS(`#events button.hit`)), waitJS(`!document.getElementById("video").seeking`),
					chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
			}
			// Nothing sticks out on the right, where a phone would hide it.
			if eval[bool](t, ctx, `[...document.querySelectorAll("body *")].some((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)`) {
				t.Errorf("the %s page scrolls sideways at %dx%d", page.name, size.w, size.h)
			}
			shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatal(err)
			}
			if out != "" {
				path := filepath.Join(out, fmt.Sprintf("review-%s-%dx%d.png", page.name, size.w, size.h))
				if err := os.WriteFile(path, shot, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("wrote %s", path)
			}
		}
	}
}

// postReview records a review through the API, with the token.
func postReview(rs *reviewServer, key, body string) error {
	req, err := newRequest("POST", rs.base+server.PathSessions+"/"+key+"/review", body, rs.token)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("review of %s: %s", key, resp.Status)
	}
	return nil
}

package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/videoio"
	"github.com/referee-project/referee/protocol"
)

// frameSource is where frames come from: a *videoio.Reader, in tests a
// reader with a fault injected. Read fills dst and returns io.EOF after the
// last frame.
type frameSource interface {
	Read(dst *bgr.Image) error
}

// source is an opened, checked video source: its first frame is already
// decoded, so a source that opens but cannot decode fails before any
// session exists.
type source struct {
	frames frameSource
	close  func() error
	// name is how messages call it: "video clip.mp4" or "camera 0".
	name     string
	first    bgr.Image
	fps      float64
	expected int // frames the file says it holds; 0 when unknown
	live     bool
}

// openSource opens the video file or camera of opts and decodes its first
// frame.
func openSource(opts *Options) (*source, error) {
	switch {
	case opts.Video == "":
		return openCamera(opts)
	case videoio.IsURL(opts.Video):
		return openURL(opts)
	}
	return openVideo(opts)
}

// openURL opens a network source: live (an IP camera's RTSP or MJPEG
// stream, which has no frame count) or a video file served over HTTP.
func openURL(opts *Options) (*source, error) {
	u := opts.Video
	r, err := videoio.OpenURL(u)
	switch {
	case errors.Is(err, videoio.ErrNoFrames):
		return nil, &Error{Kind: KindInput, Err: withCause(err, "Cannot open video %s: it answered, but no frame decodes (check that the URL is the camera's video stream, not its web page)", u)}
	case errors.Is(err, videoio.ErrCannotOpen):
		return nil, &Error{Kind: KindInput, Err: withCause(err, "Cannot open video %s: nothing answered there, or not with a video stream OpenCV reads (check the URL, that the camera is on and reachable from here, and its user and password)", u)}
	case err != nil:
		return nil, &Error{Kind: KindInput, Err: withCause(err, "Cannot open video %s: %v", u, err)}
	}
	info := r.Info()
	src := &source{frames: r, close: r.Close, name: "video " + u, live: info.FrameCount <= 0}
	if err := src.readFirst(); err != nil {
		r.Close()
		return nil, err
	}
	switch {
	case validFPS(opts.FPS):
		src.fps = opts.FPS
	case validFPS(info.FPS):
		src.fps = info.FPS
	case src.live:
		src.fps = 30
	default:
		r.Close()
		return nil, inputErrorf("Cannot stream video %s: it reports no frame rate (%v); give its rate with --fps", u, info.FPS)
	}
	if !src.live {
		src.expected = info.FrameCount
	}
	return src, nil
}

func openVideo(opts *Options) (*source, error) {
	path := opts.Video
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &Error{Kind: KindInput, Err: withCause(err, "Cannot open video %s: no such file (check the --video path)", path)}
	case err != nil:
		return nil, &Error{Kind: KindInput, Err: withCause(err, "Cannot open video %s: %v (check the file's permissions)", path, err)}
	case st.IsDir():
		return nil, inputErrorf("Cannot open video %s: it is a directory (give the video file itself)", path)
	case st.Size() == 0:
		return nil, inputErrorf("Cannot open video %s: the file is empty (0 bytes; check that the recording finished)", path)
	}
	r, err := videoio.OpenFile(path)
	var text *videoio.TextError
	switch {
	case errors.As(err, &text):
		return nil, &Error{Kind: KindInput, Err: withCause(err, "Cannot open video %s: it is %v (check the --video path: the phrase log goes to --signal)", path, text)}
	case errors.Is(err, videoio.ErrNoFrames):
		return nil, &Error{Kind: KindInput, Err: withCause(err, "Cannot open video %s: it opens but its first frame does not decode (no frames, or a truncated or corrupt file; check it with referee probe-video %s)", path, path)}
	case errors.Is(err, videoio.ErrCannotOpen):
		return nil, &Error{Kind: KindInput, Err: withCause(err, "Cannot open video %s: OpenCV cannot read it as a video (check that it is a video file in a supported codec: referee probe-video %s)", path, path)}
	case err != nil:
		return nil, &Error{Kind: KindInput, Err: withCause(err, "Cannot open video %s: %v", path, err)}
	}
	src := &source{frames: r, close: r.Close, name: "video " + filepath.Base(path)}
	info := r.Info()
	if err := src.readFirst(); err != nil {
		r.Close()
		return nil, err
	}
	src.fps = info.FPS
	if !validFPS(src.fps) {
		if !validFPS(opts.FPS) {
			r.Close()
			return nil, inputErrorf("Cannot stream video %s: it reports no frame rate (%v); give its rate with --fps", path, info.FPS)
		}
		src.fps = opts.FPS
	}
	if info.FrameCount > 0 {
		src.expected = info.FrameCount
	}
	return src, nil
}

func openCamera(opts *Options) (*source, error) {
	r, err := videoio.OpenCamera(opts.Camera)
	switch {
	case errors.Is(err, videoio.ErrCannotOpen):
		return nil, &Error{Kind: KindInput, Err: withCause(err, "Cannot open camera %d: no such camera, or it is busy or not permitted (check that it is connected, that /dev/video%d exists and is readable, and that no other program uses it)", opts.Camera, opts.Camera)}
	case err != nil:
		return nil, &Error{Kind: KindInput, Err: withCause(err, "Cannot open camera %d: %v", opts.Camera, err)}
	}
	src := &source{frames: r, close: r.Close, name: fmt.Sprintf("camera %d", opts.Camera), live: true, fps: 30}
	if validFPS(opts.FPS) {
		src.fps = opts.FPS
	}
	if err := src.readFirst(); err != nil {
		r.Close()
		return nil, err
	}
	return src, nil
}

func (s *source) readFirst() error {
	err := s.frames.Read(&s.first)
	switch {
	case errors.Is(err, io.EOF):
		return inputErrorf("Cannot open %s: it opened but holds no frame OpenCV can decode (check the file is complete and its codec is supported)", s.name)
	case err != nil:
		return &Error{Kind: KindInput, Err: withCause(err, "Cannot open %s: its first frame does not decode: %v (check the file is complete and its codec is supported)", s.name, err)}
	case !s.first.Valid():
		return inputErrorf("Cannot open %s: its first frame is empty (%dx%d)", s.name, s.first.Width, s.first.Height)
	}
	return nil
}

func validFPS(f float64) bool {
	return f > 0 && f <= 1000 && !math.IsNaN(f)
}

// readSignal reads the phrase log at path ("-": from stdin) and checks
// that it parses, so the bytes sent are exactly the bytes checked.
func readSignal(path string, stdin io.Reader) ([]byte, *signal.Phrase, error) {
	if path == StdinSignal {
		if stdin == nil {
			return nil, nil, inputErrorf("Signal from standard input: no standard input to read")
		}
		data, err := io.ReadAll(io.LimitReader(stdin, signal.MaxSize+1))
		if err != nil {
			return nil, nil, &Error{Kind: KindInput, Err: withCause(err, "Cannot read the signal from standard input: %v", err)}
		}
		return parseSignal(data, "from standard input", "check what is piped in")
	}
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, &Error{Kind: KindInput, Err: withCause(err, "Signal file not found: %s (check the --signal path)", path)}
	case err != nil:
		return nil, nil, &Error{Kind: KindInput, Err: withCause(err, "Cannot read signal file %s: %v (check its permissions)", path, err)}
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, nil, inputErrorf("Signal file %s is a directory (give the phrase log .txt itself)", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, signal.MaxSize+1))
	if err != nil {
		return nil, nil, &Error{Kind: KindInput, Err: withCause(err, "Cannot read signal file %s: %v", path, err)}
	}
	return parseSignal(data, "file "+path, "check the --signal path: referee probe-signal "+path)
}

// parseSignal checks that data, the signal from where, is a phrase log;
// check says what to check when it is another kind of text.
func parseSignal(data []byte, where, check string) ([]byte, *signal.Phrase, error) {
	p, err := signal.Parse(data)
	switch {
	case err == nil:
		return data, p, nil
	case errors.Is(err, signal.ErrEmpty):
		return nil, nil, &Error{Kind: KindInput, Err: withCause(err, "Signal %s is empty (check that the scoring box finished writing the phrase log)", where)}
	case errors.Is(err, signal.ErrBinary):
		return nil, nil, &Error{Kind: KindInput, Err: withCause(err, "Signal %s is not a text phrase log: %v (is it the video or an image?)", where, err)}
	case errors.Is(err, signal.ErrTooLarge):
		return nil, nil, &Error{Kind: KindInput, Err: withCause(err, "Signal %s is too large: %v", where, err)}
	case errors.Is(err, signal.ErrNotPhraseLog):
		return nil, nil, &Error{Kind: KindInput, Err: withCause(err, "Signal %s is not a scoring-box phrase log (%s)", where, check)}
	}
	return nil, nil, &Error{Kind: KindInput, Err: withCause(err, "Signal %s does not parse: %v", where, err)}
}

// checkHealth asks the server's /health and wants a 200 within timeout. It
// is the last check before a session is opened: a server that is down fails
// here, before anything is streamed.
func checkHealth(ctx context.Context, url string, l link, log *slog.Logger) error {
	timeout := l.timeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return inputErrorf("server URL %s: %v", url, err)
	}
	for k, v := range l.header() {
		req.Header[k] = v
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = l.tls
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return dialError(ctx, url, timeout, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return dialError(ctx, url, timeout, err)
	}
	if resp.StatusCode != http.StatusOK {
		return connErrorf("Server not ready: %s answered %s (check that it is a referee server and read its log)", url, resp.Status)
	}
	var h protocol.Health
	if json.Unmarshal(body, &h) == nil {
		log.Debug("Server is healthy", "url", url, "status", h.Status, "version", h.Version, "protocols", h.Protocols, "active_sessions", h.ActiveSessions)
	}
	return nil
}

// dialError turns a failure to reach url into one line that says what to
// check. A cancelled parent context is reported as such, not as the
// server's fault.
func dialError(ctx context.Context, url string, timeout time.Duration, err error) error {
	var dnsErr *net.DNSError
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.Is(context.Cause(ctx), context.Canceled):
		return fmt.Errorf("interrupted while connecting to %s: %w", url, context.Canceled)
	case errors.As(err, &certErr):
		return &Error{Kind: KindConnection, Err: withCause(err, "Cannot connect to %s: the server's TLS certificate is not trusted: %v (give the CA that signed it with --ca FILE)", url, certErr.Err)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &Error{Kind: KindConnection, Err: withCause(err, "Cannot connect to %s: connection refused (check that `referee serve` is running at that address and port)", url)}
	case errors.As(err, &dnsErr):
		return &Error{Kind: KindConnection, Err: withCause(err, "Cannot connect to %s: unknown host %s (check the server name)", url, dnsErr.Name)}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return &Error{Kind: KindConnection, Err: withCause(err, "Connection timeout: %s did not answer within %s (check that `referee serve` is running at that address, that no firewall blocks the port, or raise --timeout)", url, timeout)}
	}
	return &Error{Kind: KindConnection, Err: withCause(err, "Cannot connect to %s: %v (check the network and that `referee serve` is running there)", url, err)}
}

// loadCA reads a PEM bundle of CA certificates into a TLS configuration
// that trusts them alone; an empty path means the system's roots (nil).
func loadCA(path string) (*tls.Config, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Kind: KindInput, Err: withCause(err, "Cannot read the CA file %s: %v (check the --ca path)", path, err)}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, inputErrorf("CA file %s holds no PEM certificate (give the PEM bundle of the CA that signed the server's certificate)", path)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// causeError is a message written for the user that still wraps the error
// it explains, so errors.Is finds the sentinel without the message
// repeating it.
type causeError struct {
	msg   string
	cause error
}

func (e *causeError) Error() string { return e.msg }
func (e *causeError) Unwrap() error { return e.cause }

func withCause(cause error, format string, args ...any) error {
	return &causeError{msg: fmt.Sprintf(format, args...), cause: cause}
}

package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/jobs"
	"github.com/referee-project/referee/pipeline/signal"
)

// Defaults of the Config fields left zero.
const (
	DefaultDataDir           = "./referee-data"
	DefaultMaxSessions       = 10
	DefaultMaxMemoryMB       = 2048
	DefaultSessionTimeout    = 300 * time.Second
	DefaultAnalyzer          = pipeline.AnalyzerSignal
	DefaultMaxFrameBytes     = 32 << 20
	DefaultMaxSignalBytes    = signal.MaxSize
	DefaultMaxMessageBytes   = 64 << 10
	DefaultMaxUploadBytes    = 1 << 30
	DefaultWindow            = 64
	DefaultKeepaliveTimeout  = 30 * time.Second
	DefaultMaxFrames         = 100000
	DefaultMaxConnsPerAddr   = 16
	DefaultMaxSpoolBytes     = 20 << 30
	DefaultResumeGrace       = 60 * time.Second
	DefaultMaxFramePixels    = 3840 * 2160
	DefaultMaxHeldPerAddr    = 4
	DefaultMaxUploads        = 8
	DefaultMaxUploadsPerAddr = 2
	DefaultMaxQueuedUploads  = 4
	DefaultUploadTimeout     = 2 * time.Minute
	DefaultIdleConnTimeout   = 30 * time.Second
	DefaultLivePeriod        = 5 * time.Second
	DefaultClusterCacheBytes = 2 << 30
)

// maxLivePeriod bounds LivePeriod, so that the sessions of a node that
// stopped leave the lists within minutes (liveTTL is a few periods).
const maxLivePeriod = time.Minute

// maxFrameBytesLimit bounds MaxFrameBytes: a spool record holds a 32-bit
// length, and no camera frame comes near it.
const maxFrameBytesLimit = 1 << 30

// Config configures a Server. The zero value of every field but Host and
// Port means its default.
type Config struct {
	// Host is the address to listen on; "" or "0.0.0.0" is every interface.
	Host string
	// Port is the TCP port; 0 picks a free one (see Server.Addr).
	Port int
	// DataDir holds the spools of streaming sessions (DataDir/spool/<id>)
	// and, unless OutputDir is set, their artifacts. Default ./referee-data.
	DataDir string
	// OutputDir receives each session's artifacts in OutputDir/<id>.
	// Default DataDir/sessions.
	OutputDir string
	// MaxSessions is the number of live streaming sessions: attached to a
	// connection, or being processed. Sessions held for a resume are not
	// counted (see MaxHeldPerAddr). Default 10.
	MaxSessions int
	// MaxMemoryMB bounds the RAM the server holds for its clients: every
	// WebSocket connection's buffers (80 KiB) and the message it is
	// reading, every live session's spool write buffer (1 MiB), every PNG
	// frame being decoded. A connection (503), a session start
	// (SESSION_START_FAILED), a message (LIMIT_EXCEEDED) or a decode (the
	// frame refused) that would pass it is refused. GET /streaming/stats
	// reports the count as total_memory_mb. Default 2048.
	MaxMemoryMB int
	// SessionTimeout ends a streaming session that has received no message
	// for this long. Default 300 s.
	SessionTimeout time.Duration
	// ReaperInterval is how often idle sessions are looked for. Default a
	// tenth of SessionTimeout, at most 10 s.
	ReaperInterval time.Duration
	// Analyzer is pipeline.Job.Analyzer for every session: the built-in
	// pipeline.AnalyzerSignal (the default) or a key of Analyzers.
	Analyzer string
	// Analyzers are the analyzers Analyzer may name besides the built-in
	// one (pipeline.Job.Analyzers).
	Analyzers map[string]pipeline.Analyzer
	// VideoFormat is pipeline.Job.VideoFormat for every streamed session:
	// pipeline.VideoFormatMJPEG (the default) or pipeline.VideoFormatH264.
	VideoFormat string
	// MaxFrameBytes is the largest frame payload accepted. Default 32 MiB.
	MaxFrameBytes int64
	// MaxFramePixels is the largest picture accepted, in pixels (width x
	// height); no side may be over 8192 either. A session_start beyond it
	// is refused with INVALID_MESSAGE, a frame beyond it is rejected before
	// it is decoded. Default 3840x2160 (8,294,400).
	MaxFramePixels int64
	// MaxSignalBytes is the largest phrase log accepted. Default 1 MiB.
	MaxSignalBytes int64
	// MaxMessageBytes is the largest text (JSON) message accepted.
	// Default 64 KiB.
	MaxMessageBytes int64
	// MaxUploadBytes is the largest POST /analyze body. Default 1 GiB.
	MaxUploadBytes int64
	// MaxUploads is the number of POST /analyze requests the server takes
	// at once, receiving or processing; more are answered 503. Default 8.
	MaxUploads int
	// MaxUploadsPerAddr is the number of them one remote address may have;
	// more are answered 429. Default 2.
	MaxUploadsPerAddr int
	// MaxQueuedUploads is the number of received uploads that may wait for
	// a processing worker; the next is answered 503. Uploads take at most
	// all workers but one, and streamed phrases go first. Default 4.
	MaxQueuedUploads int
	// UploadTimeout bounds the reading of a POST /analyze body, so that a
	// client sending slowly (slowloris) holds nothing longer: past it the
	// request is answered 408. Default 2 min.
	UploadTimeout time.Duration
	// Window is the number of unacknowledged v2 frames a client may have in
	// flight. Default 64.
	Window int
	// ProcessingWorkers bounds how many sessions are processed at once.
	// Default GOMAXPROCS: the CPUs this process may use.
	ProcessingWorkers int
	// KeepaliveTimeout is how long a connection may stay silent (no message,
	// no pong) before the peer is taken for gone; pings go out at nine
	// tenths of it. Default 30 s.
	KeepaliveTimeout time.Duration
	// MaxFramesPerSession is the number of distinct frames one session may
	// hold; the frame beyond it ends the session with LIMIT_EXCEEDED.
	// Default 100000 (over an hour at 25 fps).
	MaxFramesPerSession int
	// MaxConnsPerAddr is the number of WebSocket connections one remote
	// address may hold open; more are answered 429 before the upgrade.
	// Default 16.
	MaxConnsPerAddr int
	// MaxSpoolBytes bounds the disk used by the spools of all sessions,
	// record headers included. A session start is refused
	// (SESSION_START_FAILED) once it is reached, and a frame that would
	// pass it ends its session with LIMIT_EXCEEDED. Default 20 GiB.
	MaxSpoolBytes int64
	// MaxHeldPerAddr is the number of sessions one remote address may have
	// held for a resume (disconnected, failed, or processed with their
	// result not collected); beyond it the oldest is ended, and logged.
	// Held sessions do not count toward MaxSessions. Default 4.
	MaxHeldPerAddr int
	// IdleConnTimeout closes a WebSocket connection that has had no
	// session for this long (never started one, or its session ended),
	// with 1008 and a reason that says so. Default 30 s.
	IdleConnTimeout time.Duration
	// ResumeGrace is how long the server keeps a session whose client
	// disconnected before session_end, or that it recovered from its spool
	// at start, so that a client can resume it. Default 60 s.
	ResumeGrace time.Duration
	// Token, when set, is the shared secret every request but GET /health
	// must carry as "Authorization: Bearer <token>"; the WebSocket endpoint
	// also takes it as the query parameter "token" for clients (browsers)
	// that cannot set headers. Others are answered 401.
	Token string
	// TLSCertFile and TLSKeyFile, PEM files, make the server speak HTTPS
	// and WSS only. Both or neither.
	TLSCertFile, TLSKeyFile string
	// AllowedOrigins are the browser origins ("https://club.example", or
	// "*" for any) that may open WebSocket connections besides pages of
	// the server itself. Requests without an Origin header (programs, not
	// browsers) are not checked.
	AllowedOrigins []string
	// Jobs, when set, is where streamed phrases are analysed: the server
	// rebuilds the video, submits it with the signal to Jobs, relays the
	// progress and takes the result back into the artifact directory; a
	// worker elsewhere runs the analyzer named by Analyzer. While
	// Jobs.Ready fails, new sessions are refused with SESSION_START_FAILED
	// and its reason, and phrases already taken wait to be submitted. Its
	// catalogue gives phrase keys and holds what the review API lists,
	// serves and records for every node. Nil (the default): phrases are
	// analysed in this process.
	Jobs jobs.Queue
	// LivePeriod is, with Jobs, how often the server tells the other
	// nodes of the sessions streaming on it (which have no phrase key
	// yet); they list them for three periods after, so those of a node
	// that stopped leave their lists then. Default 5 s, at most 1 min.
	LivePeriod time.Duration
	// ClusterCacheBytes bounds, with Jobs, the disk the node's cache of
	// the artifacts of other nodes' phrases (DataDir/.cluster-cache) uses:
	// past it the files served least recently are removed, and fetched
	// again when asked for. An artifact larger than it is served once and
	// removed. Default 2 GiB.
	ClusterCacheBytes int64
	// Logger receives the server's logs. Default: discarded.
	Logger *slog.Logger
	// Version is reported by GET /health. Default "dev".
	Version string
}

// withDefaults checks c and returns it with the zero fields set to their
// defaults. The errors name the field and what is wrong with it.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Port < 0 || c.Port > 65535 {
		bad("port %d: want 0 (any free port) to 65535", c.Port)
	}
	if c.MaxFrameBytes < 0 || c.MaxFrameBytes > maxFrameBytesLimit {
		bad("max frame bytes %d: want 1 to %d", c.MaxFrameBytes, maxFrameBytesLimit)
	}
	if c.MaxSignalBytes < 0 || c.MaxSignalBytes > signal.MaxSize {
		bad("max signal bytes %d: want 1 to %d (the phrase-log parser's limit)", c.MaxSignalBytes, signal.MaxSize)
	}
	// Counts and durations only need to be non-negative: zero means the default.
	for _, n := range []struct {
		v      int64
		format string
	}{
		{int64(c.MaxSessions), "max sessions %d: want a positive number"},
		{int64(c.MaxMemoryMB), "max memory %d MB: want a positive number"},
		{int64(c.MaxMessageBytes), "max message bytes %d: want a positive number"},
		{int64(c.MaxUploadBytes), "max upload bytes %d: want a positive number"},
		{int64(c.Window), "window %d: want a positive number of frames"},
		{int64(c.ProcessingWorkers), "processing workers %d: want a positive number"},
		{int64(c.MaxFramesPerSession), "max frames per session %d: want a positive number"},
		{int64(c.MaxConnsPerAddr), "max connections per address %d: want a positive number"},
		{int64(c.MaxSpoolBytes), "max spool bytes %d: want a positive number"},
		{c.MaxFramePixels, "max frame pixels %d: want a positive number"},
		{int64(c.MaxHeldPerAddr), "max held sessions per address %d: want a positive number"},
		{int64(c.MaxUploads), "max uploads %d: want a positive number"},
		{int64(c.MaxUploadsPerAddr), "max uploads per address %d: want a positive number"},
		{int64(c.MaxQueuedUploads), "max queued uploads %d: want a positive number"},
		{c.ClusterCacheBytes, "cluster cache bytes %d: want a positive number"},
	} {
		if n.v < 0 {
			bad(n.format, n.v)
		}
	}
	for _, d := range []struct {
		v      time.Duration
		format string
	}{
		{c.SessionTimeout, "session timeout %v: want a positive duration"},
		{c.ReaperInterval, "reaper interval %v: want a positive duration"},
		{c.KeepaliveTimeout, "keepalive timeout %v: want a positive duration"},
		{c.ResumeGrace, "resume grace %v: want a positive duration"},
		{c.IdleConnTimeout, "idle connection timeout %v: want a positive duration"},
		{c.UploadTimeout, "upload timeout %v: want a positive duration"},
		{c.LivePeriod, "live period %v: want a positive duration"},
	} {
		if d.v < 0 {
			bad(d.format, d.v)
		}
	}
	if c.LivePeriod > maxLivePeriod {
		bad("live period %v: want at most %v", c.LivePeriod, maxLivePeriod)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("TLS certificate %q and key %q: give both or neither", c.TLSCertFile, c.TLSKeyFile)
	}
	for _, o := range c.AllowedOrigins {
		if u, err := url.Parse(o); o != "*" && (err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" && u.Path != "/") {
			bad("allowed origin %q: want scheme://host[:port], e.g. https://club.example, or *", o)
		}
	}
	if _, _, err := pipeline.PickAnalyzer(c.Analyzer, c.Analyzers); err != nil {
		bad("analyzer %q: known analyzers are %s", c.Analyzer, strings.Join(pipeline.KnownAnalyzers(c.Analyzers), ", "))
	}
	switch c.VideoFormat {
	case "", pipeline.VideoFormatMJPEG, pipeline.VideoFormatH264:
	default:
		bad("video format %q: want %q or %q", c.VideoFormat, pipeline.VideoFormatMJPEG, pipeline.VideoFormatH264)
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("server configuration: %w", errors.Join(errs...))
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.OutputDir == "" {
		c.OutputDir = filepath.Join(c.DataDir, "sessions")
	}
	setDefault(&c.MaxSessions, DefaultMaxSessions)
	setDefault(&c.MaxMemoryMB, DefaultMaxMemoryMB)
	setDefault(&c.SessionTimeout, DefaultSessionTimeout)
	setDefault(&c.ResumeGrace, DefaultResumeGrace)
	setDefault(&c.ReaperInterval, min(c.SessionTimeout/10, c.ResumeGrace/4, 10*time.Second))
	setDefault(&c.Analyzer, DefaultAnalyzer)
	setDefault(&c.VideoFormat, pipeline.VideoFormatMJPEG)
	setDefault(&c.MaxFrameBytes, DefaultMaxFrameBytes)
	setDefault(&c.MaxFramePixels, DefaultMaxFramePixels)
	setDefault(&c.MaxHeldPerAddr, DefaultMaxHeldPerAddr)
	setDefault(&c.IdleConnTimeout, DefaultIdleConnTimeout)
	setDefault(&c.MaxUploads, DefaultMaxUploads)
	setDefault(&c.MaxUploadsPerAddr, DefaultMaxUploadsPerAddr)
	setDefault(&c.MaxQueuedUploads, DefaultMaxQueuedUploads)
	setDefault(&c.UploadTimeout, DefaultUploadTimeout)
	setDefault(&c.LivePeriod, DefaultLivePeriod)
	setDefault(&c.MaxSignalBytes, DefaultMaxSignalBytes)
	setDefault(&c.MaxMessageBytes, DefaultMaxMessageBytes)
	setDefault(&c.MaxUploadBytes, DefaultMaxUploadBytes)
	setDefault(&c.Window, DefaultWindow)
	setDefault(&c.ProcessingWorkers, runtime.GOMAXPROCS(0))
	setDefault(&c.KeepaliveTimeout, DefaultKeepaliveTimeout)
	setDefault(&c.MaxFramesPerSession, DefaultMaxFrames)
	setDefault(&c.MaxConnsPerAddr, DefaultMaxConnsPerAddr)
	setDefault(&c.MaxSpoolBytes, DefaultMaxSpoolBytes)
	setDefault(&c.ClusterCacheBytes, DefaultClusterCacheBytes)
	setDefault(&c.Version, "dev")
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

// maxMemoryBytes is MaxMemoryMB in bytes.
func (c Config) maxMemoryBytes() int64 { return int64(c.MaxMemoryMB) << 20 }

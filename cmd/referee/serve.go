package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/jobs"
	"github.com/referee-project/referee/pipeline/jobs/natsjobs"
	"github.com/referee-project/referee/server"
)

// serveOptions is the resolved configuration of "referee serve". The
// server's flags are bound to the fields of Server, the --nats flags to
// those of NATS.
type serveOptions struct {
	Server server.Config
	analyzerOptions
	NATS            natsjobs.Options
	ShutdownTimeout time.Duration
	// CPUProfile, when set, receives a pprof CPU profile of the whole run.
	CPUProfile string

	Version string
	Logger  *slog.Logger
}

func newServeCmd(a *app) *cobra.Command {
	var opts serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the referee service: take streamed phrases, rebuild the video, give the verdict",
		Long: `serve runs the referee service. Capture boxes stream each phrase to it
("referee stream", or any client written for the existing Python service):
the frames as they are filmed, then the scoring box's phrase log. The
server spools the frames to disk as they arrive, rebuilds the video, decides
the phrase and answers with the result, which it also keeps with the video
in the phrase's directory, OUTPUT-DIR/<key>/result.json: the key is the
session id, or <id>-2, <id>-3, ... for a later phrase with an id already
used, and never changes.

Referees review the phrases in a browser at http://HOST:PORT/: the list,
newest first and live, and each phrase's replay with the timeline of the
analysis, the verdict and buttons to confirm or override it (kept as
review.json beside the artifacts, counted by "referee eval DIR").

Endpoints:
  GET  /                  the review pages (with --token they ask for it
                          once and keep an HttpOnly cookie)
  GET  /api/sessions      the phrases; /api/sessions/{key} one phrase,
                          .../files/{name} its artifacts, POST
                          .../review the referee's call; /api/agreement
  GET  /stream            WebSocket streaming, protocol v1 (the existing
                          service's) and v2 (windowed, negotiated)
  GET  /health            200 and JSON while the server runs
  GET  /readyz            200 while it takes new sessions; 503 and the
                          reasons while draining, at the session limit
                          or at the spool disk limit
  GET  /streaming/stats   the active sessions and the limits, as JSON
  GET  /metrics           Prometheus metrics (text format)
  POST /analyze           multipart upload of a whole "video" and its
                          "signal"; answers with the same result JSON

The settings of the existing service work unchanged: REFEREE_HOST,
REFEREE_PORT, REFEREE_LOG_LEVEL, REFEREE_MAX_STREAMING_SESSIONS,
REFEREE_MAX_STREAMING_MEMORY_MB, REFEREE_STREAMING_SESSION_TIMEOUT (plain
seconds are accepted) and REFEREE_OUTPUT_DIR. Every other flag has its
REFEREE_<FLAG> variable too.

With --token (REFEREE_TOKEN) every endpoint but /health, /readyz and the
pages themselves needs the header "Authorization: Bearer <token>" (the review
API also takes the cookie of POST /api/login); /stream also takes "?token=<token>" for
browsers and old clients that cannot set headers (URLs end up in proxy logs:
prefer the header). Without it, the answer is 401 with a JSON error.

The log says where the server listens (with the real port under --port 0),
and has one line per session event, each with the session id: created,
every 100th frame received, ended, processing, and one "removed session"
line that says why the session ended.

With --nats URL the server is one node of a cluster: it takes streams as
without, rebuilds each phrase's video, and hands the analysis to the
"referee worker"s through NATS JetStream (--analyzer travels with the job;
the workers' own flags say how to run it). While JetStream is unreachable
new sessions are refused with SESSION_START_FAILED saying so, and phrases
already taken wait and are submitted when it is back.

A client that loses its connection before session_end may resume the
session within --streaming-resume-grace; sessions still streaming when the
server stops are kept on disk and recovered at the next start on the same
--data-dir, for the same grace period.

SIGINT or SIGTERM stops the server: it refuses new connections, closes the
streaming sessions with a close frame that says so (1001 "server shutting
down"), lets the sessions being processed finish within --shutdown-timeout,
and exits. A port already
in use, or a bad setting, exits with status 2.`,
		Example: `  # Serve the club's network on port 8080, data in ./referee-data
  referee serve

  # This machine only, any free port, artifacts in a separate directory
  referee serve --host 127.0.0.1 --port 0 --output-dir /srv/referee/phrases

  # The existing service's environment
  REFEREE_PORT=9000 REFEREE_MAX_STREAMING_SESSIONS=20 REFEREE_STREAMING_SESSION_TIMEOUT=600 referee serve`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Logger = a.logger
			opts.Version = version
			return runServe(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Server.Host, "host", "0.0.0.0", "address to listen on (0.0.0.0: every interface; 127.0.0.1: this machine only)")
	f.IntVar(&opts.Server.Port, "port", 8080, "TCP port to listen on (0: any free port, given in the \"listening\" log line)")
	f.StringVar(&opts.Server.DataDir, "data-dir", server.DefaultDataDir, "directory for the frame spools and, unless --output-dir is set, the artifacts")
	f.StringVar(&opts.Server.OutputDir, "output-dir", "", "directory for each session's artifacts: video, signal.txt, result.json (default DATA-DIR/sessions)")
	f.IntVar(&opts.Server.MaxSessions, "max-streaming-sessions", server.DefaultMaxSessions, "streaming sessions at once; more are refused (SESSION_START_FAILED)")
	f.IntVar(&opts.Server.MaxMemoryMB, "max-streaming-memory-mb", server.DefaultMaxMemoryMB, "MB of RAM sessions may hold for frames not yet written to disk; a session start beyond it is refused")
	f.DurationVar(&opts.Server.SessionTimeout, "streaming-session-timeout", server.DefaultSessionTimeout, "end a streaming session that sends nothing for this long (e.g. 300s, 5m)")
	addAnalyzerFlags(f, &opts.analyzerOptions)
	f.StringVar(&opts.Server.VideoFormat, "video-format", pipeline.VideoFormatMJPEG, "rebuilt video: mjpeg (AVI, JPEG frames stored as received) or h264 (MP4 that browsers play, slower)")
	f.Int64Var(&opts.Server.MaxFrameBytes, "max-frame-bytes", server.DefaultMaxFrameBytes, "largest frame accepted, in bytes")
	f.Int64Var(&opts.Server.MaxFramePixels, "max-frame-pixels", server.DefaultMaxFramePixels, "largest picture accepted, in pixels (width x height; no side over 8192): a session_start beyond it is refused, a frame beyond it rejected before it is decoded")
	f.Int64Var(&opts.Server.MaxSignalBytes, "max-signal-bytes", server.DefaultMaxSignalBytes, "largest phrase log accepted, in bytes (at most 1 MiB)")
	f.Int64Var(&opts.Server.MaxMessageBytes, "max-message-bytes", server.DefaultMaxMessageBytes, "largest JSON control message accepted, in bytes")
	f.Int64Var(&opts.Server.MaxUploadBytes, "max-upload-bytes", server.DefaultMaxUploadBytes, "largest POST /analyze upload, in bytes")
	f.IntVar(&opts.Server.MaxUploads, "max-uploads", server.DefaultMaxUploads, "POST /analyze requests taken at once, received or processed; more are answered 503")
	f.IntVar(&opts.Server.MaxUploadsPerAddr, "max-uploads-per-address", server.DefaultMaxUploadsPerAddr, "POST /analyze requests one remote address may have in progress; more are answered 429")
	f.IntVar(&opts.Server.MaxQueuedUploads, "max-queued-uploads", server.DefaultMaxQueuedUploads, "received uploads that may wait for a processing worker (streamed phrases go first); the next is answered 503")
	f.DurationVar(&opts.Server.UploadTimeout, "upload-timeout", server.DefaultUploadTimeout, "time to receive a POST /analyze body; a slower upload is answered 408")
	f.IntVar(&opts.Server.Window, "v2-window", server.DefaultWindow, "frames a protocol v2 client may send ahead of the server's acknowledgement")
	f.IntVar(&opts.Server.ProcessingWorkers, "processing-workers", 0, "sessions processed at once (0: one per CPU)")
	f.DurationVar(&opts.Server.KeepaliveTimeout, "keepalive-timeout", server.DefaultKeepaliveTimeout, "drop a connection silent this long (no message, no pong); pings go out at 9/10 of it")
	f.IntVar(&opts.Server.MaxFramesPerSession, "max-frames-per-session", server.DefaultMaxFrames, "distinct frames one session may hold; the next ends it with LIMIT_EXCEEDED")
	f.IntVar(&opts.Server.MaxConnsPerAddr, "max-connections-per-address", server.DefaultMaxConnsPerAddr, "WebSocket connections one remote address may hold open; more are answered 429")
	f.Int64Var(&opts.Server.MaxSpoolBytes, "max-spool-bytes", server.DefaultMaxSpoolBytes, "bytes of disk the frame spools of all sessions may use; beyond it starts are refused and the frame that passes it ends its session")
	f.DurationVar(&opts.Server.ResumeGrace, "streaming-resume-grace", server.DefaultResumeGrace, "keep a session whose client disconnected before session_end, or recovered from the data dir at start, this long for the client to resume it")
	f.IntVar(&opts.Server.MaxHeldPerAddr, "max-held-sessions-per-address", server.DefaultMaxHeldPerAddr, "sessions one remote address may have waiting to be resumed (they hold no --max-streaming-sessions slot); beyond it the oldest is dropped")
	f.DurationVar(&opts.Server.IdleConnTimeout, "idle-connection-timeout", server.DefaultIdleConnTimeout, "close a WebSocket connection that has had no session for this long")
	f.StringVar(&opts.Server.Token, "token", "", "shared secret clients must send as \"Authorization: Bearer <token>\" (or ?token= on /stream) to use every endpoint but /health, /readyz and the pages; empty: no token")
	f.StringVar(&opts.Server.TLSCertFile, "tls-cert", "", "PEM certificate file: serve HTTPS and WSS only (with --tls-key)")
	f.StringVar(&opts.Server.TLSKeyFile, "tls-key", "", "PEM private key file of --tls-cert")
	f.StringVar(&opts.CPUProfile, "cpuprofile", "", "write a pprof CPU profile of the server to FILE until it stops")
	f.StringSliceVar(&opts.Server.AllowedOrigins, "allowed-origins", nil, "browser origins (https://host[:port], or *) allowed to open /stream besides pages of this server")
	f.DurationVar(&opts.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long to wait for sessions and processing to stop before dropping them")
	f.Int64Var(&opts.Server.ClusterCacheBytes, "cluster-cache-bytes", server.DefaultClusterCacheBytes, "with --nats, bytes of disk the cache of other nodes' artifacts (DATA-DIR/.cluster-cache) may use; past it the least recently served are removed and fetched again when asked for")
	addNATSFlags(f, &opts.NATS, "NATS JetStream servers (nats://host:4222[,...]) to hand the analysis to \"referee worker\"s; empty: analyse in this process")
	return cmd
}

// runServe runs the server until ctx is cancelled (SIGINT or SIGTERM), then
// shuts it down. Bad settings and an address that cannot be listened on
// are usage errors (exit status 2).
func runServe(ctx context.Context, opts serveOptions) error {
	if opts.ShutdownTimeout <= 0 {
		return usageErrorf("--shutdown-timeout %v: want a positive duration", opts.ShutdownTimeout)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	analyzers, err := newAnalyzers(opts.analyzerOptions)
	if err != nil {
		return err
	}
	if opts.CPUProfile != "" {
		stop, err := startCPUProfile("cpuprofile", opts.CPUProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	var queue jobs.Queue
	if opts.NATS.URL != "" {
		conn, err := openNATS(opts.NATS, log)
		if err != nil {
			return err
		}
		defer conn.Close()
		queue = conn
	}
	cfg := opts.Server
	cfg.Analyzer, cfg.Analyzers = opts.Analyzer, analyzers
	cfg.Jobs, cfg.Logger, cfg.Version = queue, log, opts.Version
	srv, err := server.New(cfg)
	var te *server.TLSError
	switch {
	case errors.As(err, &te):
		return withExit(exitUsage, fmt.Errorf("%w (check --tls-cert and --tls-key: PEM files of a certificate and its private key)", err))
	case err != nil:
		return withExit(exitUsage, fmt.Errorf("%w (check the serve flags or their REFEREE_* variables)", err))
	}
	if err := srv.Start(ctx); err != nil {
		srv.Close()
		addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
		if errors.Is(err, syscall.EADDRINUSE) {
			return usageErrorf("cannot listen on %s: the address is already in use (another referee serve?); stop that program or choose another --port", addr)
		}
		return usageErrorf("%v (check --host and --port)", err)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down: sessions still running after --shutdown-timeout %v were dropped: %w", opts.ShutdownTimeout, err)
	}
	return nil
}

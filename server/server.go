package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/referee-project/referee/protocol"
)

// HTTP paths served besides protocol.Path.
const (
	PathHealth  = "/health"
	PathReady   = "/readyz"
	PathStats   = "/streaming/stats"
	PathAnalyze = "/analyze"
)

// Protocols lists the streaming protocol versions the server speaks.
var Protocols = []string{protocol.V1, protocol.V2}

// Server is the referee service: the streaming endpoint and its HTTP
// neighbours. Create it with New, run it with Start, stop it with Shutdown
// or Close; every goroutine it starts has returned when they do.
type Server struct {
	cfg       Config
	log       *slog.Logger
	reg       *registry
	workers   *workerPool   // the places phrases are processed in
	decoders  chan struct{} // a token per frame being decoded
	memory    *memBudget
	readLimit int64
	upgrader  websocket.Upgrader
	tls       *tls.Config // nil: plain HTTP
	metrics   *metrics
	started   time.Time
	catalog   *catalog // the phrase directories, for the review API
	reviews   reviews
	cacheMu   sync.Mutex // held while the cluster's artifact cache is pruned

	ctx    context.Context // cancelled, with errShutdown, when the server stops
	cancel context.CancelCauseFunc

	// refusals rate-limits the lines of requests refused before the
	// upgrade, which a client can make by the thousand.
	refusals logLimiter

	mu      sync.Mutex
	closing bool
	ln      net.Listener
	http    *http.Server
	conns   map[*conn]struct{}
	perAddr map[string]int // open WebSocket connections by remote host
	uploads map[string]int // POST /analyze requests in progress by remote host
	uploadN int            // POST /analyze requests in progress
	wg      sync.WaitGroup // every goroutine and handler the server tracks
	procWG  sync.WaitGroup // the goroutines processing sessions
	stopped chan struct{}  // closed when Shutdown has finished
}

// New checks cfg, fills in its defaults and creates the data, spool and
// output directories. The server does not listen until Start.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	for _, dir := range []string{cfg.DataDir, filepath.Join(cfg.DataDir, "spool"), cfg.OutputDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create directory %s: %w (check the data and output directory settings and their permissions)", dir, err)
		}
	}
	tlsConfig, err := loadTLS(cfg)
	if err != nil {
		return nil, fmt.Errorf("server configuration: %w", err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	memory := &memBudget{limit: cfg.maxMemoryBytes()}
	s := &Server{
		tls:       tlsConfig,
		cfg:       cfg,
		log:       cfg.Logger,
		reg:       newRegistry(cfg, memory),
		workers:   newWorkerPool(cfg.ProcessingWorkers, cfg.MaxQueuedUploads),
		decoders:  make(chan struct{}, cfg.ProcessingWorkers),
		memory:    memory,
		readLimit: max(cfg.MaxFrameBytes+protocol.FrameHeaderSize, cfg.MaxSignalBytes, cfg.MaxMessageBytes),
		ctx:       ctx,
		cancel:    cancel,
		conns:     make(map[*conn]struct{}),
		perAddr:   make(map[string]int),
		uploads:   make(map[string]int),
		stopped:   make(chan struct{}),
	}
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:   64 << 10,
		WriteBufferSize:  16 << 10,
		HandshakeTimeout: writeWait,
		CheckOrigin:      s.originAllowed,
	}
	s.metrics = newMetrics(s)
	s.catalog = newCatalog(cfg.OutputDir)
	s.metrics.reg.MustRegister(newAgreementCollector(s))
	s.recoverSessions()
	return s, nil
}

// Start listens on the configured address and serves in goroutines the
// server owns. ctx bounds only the start: the server runs until Shutdown or
// Close. The log line "listening" gives the real address.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return errors.New("server: Start after Shutdown")
	}
	if s.ln != nil {
		return errors.New("server: Start called twice")
	}
	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	if s.cfg.Jobs != nil {
		// The bound may have been lowered since the last run, and a fetch
		// cut short by a kill leaves its file. Pruned before anything is
		// served: later, the files being fetched are not leftovers.
		s.pruneCache(true)
	}
	s.ln = ln
	s.started = time.Now()
	s.http = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("HTTP server stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.reaper()
	}()
	if s.cfg.Jobs != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.announceLive()
		}()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.syncCluster()
		}()
	}
	s.log.Info("listening", "addr", ln.Addr().String(), "tls", s.tls != nil, "token", s.cfg.Token != "", "version", s.cfg.Version,
		"data_dir", s.cfg.DataDir, "output_dir", s.cfg.OutputDir,
		"max_sessions", s.cfg.MaxSessions, "max_memory_mb", s.cfg.MaxMemoryMB,
		"session_timeout", s.cfg.SessionTimeout, "analyzer", s.cfg.Analyzer)
	return nil
}

// Addr returns the address the server listens on (with the real port when
// Port was 0), or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops the server gracefully. It stops accepting sessions (new
// streams and uploads get 503), closes every connection whose session is
// not being processed with a close frame saying "server shutting down"
// (1001), and keeps the spools of those sessions on disk, and of the
// sessions waiting to be resumed, for the next start to recover. Sessions
// being processed may finish until ctx ends, while the server drains: it
// still listens, /health answers 200 and /readyz 503 "draining". Then it
// stops listening, processing still running is cancelled and its
// connections are closed the same way. Processed
// sessions kept for a client to collect the result are removed (the result
// stays in the artifact directory). It returns
// when every goroutine the server started has, with an error if ctx ended
// first. Later calls wait for the first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		select {
		case <-s.stopped:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.closing = true
	httpSrv := s.http
	s.mu.Unlock()
	defer close(s.stopped)

	if httpSrv != nil {
		s.log.Info("shutting down", "active_sessions", s.reg.count())
	}
	s.reg.close()

	processing := map[*conn]bool{}
	for _, sess := range s.reg.list() {
		sess.mu.Lock()
		state, c, result := sess.state, sess.conn, sess.result
		sess.mu.Unlock()
		switch state {
		case stateProcessing:
			processing[c] = true
		case stateDisconnected:
			s.suspend(sess, "server shutting down")
		case stateProcessed:
			s.finish(sess, uncollected("server shutting down", result), stateProcessed)
		}
	}
	s.mu.Lock()
	for c := range s.conns {
		if !processing[c] {
			c.closeWith(closeGoingAway, errShutdown.text)
		}
	}
	s.mu.Unlock()

	// Draining: the listener stays open while sessions are processed, so
	// that /readyz says why the server takes nothing new (and /health that
	// it lives); new streams and uploads get 503.
	var err error
	if !waitFor(&s.procWG, ctx) {
		err = fmt.Errorf("processing cancelled: still running when the shutdown deadline passed: %w", ctx.Err())
		s.log.Warn("shutdown deadline passed: cancelling the processing still running")
	}
	httpDone := make(chan error, 1)
	if httpSrv != nil {
		// Closes the listener at once, then waits for running requests.
		go func() { httpDone <- httpSrv.Shutdown(ctx) }()
	} else {
		httpDone <- nil
	}
	s.cancel(errShutdown)
	if !waitFor(&s.wg, ctx) {
		// The deadline has passed: give the connections the time of a
		// close handshake, then drop them.
		grace, cancel := context.WithTimeout(context.Background(), closeGrace+time.Second)
		if !waitFor(&s.wg, grace) {
			s.mu.Lock()
			for c := range s.conns {
				c.ws.Close()
			}
			s.mu.Unlock()
			if httpSrv != nil {
				httpSrv.Close()
			}
			s.wg.Wait()
		}
		cancel()
		if err == nil {
			err = ctx.Err()
		}
	}
	if herr := <-httpDone; herr != nil && err == nil && !errors.Is(herr, http.ErrServerClosed) {
		err = herr
	}
	s.refusals.flush()
	if httpSrv != nil {
		s.log.Info("stopped")
	}
	return err
}

// waitFor waits for wg until ctx ends and reports whether wg was done.
func waitFor(wg *sync.WaitGroup, ctx context.Context) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// Close is Shutdown with a few seconds of grace.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Shutdown(ctx)
}

// goProcessing runs f, the processing of a session, in a goroutine
// Shutdown waits for, unless the server is shutting down.
func (s *Server) goProcessing(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.wg.Add(1)
	s.procWG.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.procWG.Done()
		f()
	}()
	return true
}

// enter counts an HTTP handler that Shutdown must wait for (hijacked
// WebSocket connections are not tracked by http.Server), unless the server
// is shutting down. The caller calls s.wg.Done when it returns.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Server) reaper() {
	t := time.NewTicker(s.cfg.ReaperInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			s.reap(now)
		}
	}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathHealth, s.handleHealth)
	mux.HandleFunc("GET "+PathReady, s.handleReady)
	mux.HandleFunc("GET "+PathStats, s.withToken(s.handleStats, false))
	mux.HandleFunc("POST "+PathAnalyze, s.withToken(s.handleAnalyze, false))
	mux.HandleFunc("GET "+protocol.Path, s.withToken(s.handleStream, true))
	mux.Handle("GET "+PathMetrics, s.withToken(s.metrics.handler(s.log).ServeHTTP, false))
	s.reviewRoutes(mux)
	return mux
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, protocol.Health{
		Status:         "ok",
		Version:        s.cfg.Version,
		UptimeSeconds:  roundTo(time.Since(s.started).Seconds(), 3),
		ActiveSessions: s.reg.count(),
		Protocols:      Protocols,
	})
}

// readiness is the body of GET /readyz.
type readiness struct {
	Status string `json:"status"` // "ready" or "not ready"
	// Reasons say why the server takes no new session now.
	Reasons []string `json:"reasons,omitempty"`
}

// handleReady answers whether a new session would be taken now: 200
// "ready", or 503 with the reasons: draining (Shutdown has begun), at the
// session limit, at the spool disk limit, the analysis cluster (Jobs)
// unreachable. A load balancer sends new
// clients elsewhere meanwhile; /health stays the liveness check.
func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	var reasons []string
	if s.isClosing() {
		reasons = append(reasons, "draining: the server is shutting down, finishing the sessions being processed")
	}
	s.reg.mu.Lock()
	live := s.reg.liveLocked()
	s.reg.mu.Unlock()
	if live >= s.cfg.MaxSessions {
		reasons = append(reasons, fmt.Sprintf("at the session limit: %d of %d streaming sessions active (max streaming sessions)", live, s.cfg.MaxSessions))
	}
	if used, limit := s.reg.disk.used.Load(), s.reg.disk.limit; used >= limit {
		reasons = append(reasons, fmt.Sprintf("at the spool disk limit: the spools hold %d bytes, the limit is %d (max spool bytes)", used, limit))
	}
	if q := s.cfg.Jobs; q != nil {
		if err := q.Ready(); err != nil {
			reasons = append(reasons, fmt.Sprintf("the analysis cluster is unreachable: %v", err))
		}
	}
	if len(reasons) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, readiness{Status: "not ready", Reasons: reasons})
		return
	}
	writeJSON(w, http.StatusOK, readiness{Status: "ready"})
}

// stats returns the body of GET /streaming/stats.
func (s *Server) stats() protocol.Stats {
	now := time.Now()
	st := protocol.Stats{
		MaxSessions: s.cfg.MaxSessions,
		MaxMemoryMB: float64(s.cfg.MaxMemoryMB),
		Sessions:    map[string]protocol.SessionStats{},
	}
	for _, sess := range s.reg.list() {
		if sess.delivered.Load() {
			continue
		}
		ss := sess.stats(now)
		st.Sessions[sess.id] = ss
		st.ActiveSessions++
		st.TotalFrames += ss.FramesReceived
	}
	st.TotalMemoryMB = megabytes(s.memory.used.Load())
	return st
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.stats())
}

func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		http.Error(w, "the server is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	if !s.originAllowed(r) {
		s.refusals.log(s.log, slog.LevelWarn, "origin", "refused a connection from a browser page of another origin", "remote", r.RemoteAddr, "origin", clip(r.Header.Get("Origin")))
		s.metrics.refused.WithLabelValues("origin").Inc()
		s.writeError(w, nil, &httpError{http.StatusForbidden, protocol.CodeUnauthorized,
			fmt.Sprintf("origin %q may not open a stream: serve the page from this server or add its origin to --allowed-origins", clip(r.Header.Get("Origin")))})
		return
	}
	host := remoteHost(r.RemoteAddr)
	if n, ok := s.admitAddr(host); !ok {
		s.refusals.log(s.log, slog.LevelWarn, "per_address", "refused a connection: too many from its address", "remote", r.RemoteAddr, "open", n, "limit", s.cfg.MaxConnsPerAddr)
		s.metrics.refused.WithLabelValues("per_address").Inc()
		w.Header().Set("Retry-After", "5")
		s.writeError(w, nil, &httpError{http.StatusTooManyRequests, protocol.CodeLimitExceeded,
			fmt.Sprintf("too many connections from %s: %d open, the limit is %d (max connections per address); close one or try again later", host, n, s.cfg.MaxConnsPerAddr)})
		return
	}
	defer s.leaveAddr(host)
	if !s.memory.reserve(connBufferBytes) {
		s.refusals.log(s.log, slog.LevelWarn, "memory", "refused a connection: memory limit reached", "remote", r.RemoteAddr, "used_mb", megabytes(s.memory.used.Load()), "limit_mb", s.cfg.MaxMemoryMB)
		s.metrics.refused.WithLabelValues("memory").Inc()
		w.Header().Set("Retry-After", "5")
		s.writeError(w, nil, &httpError{http.StatusServiceUnavailable, protocol.CodeLimitExceeded,
			fmt.Sprintf("memory limit reached: the server holds %.1f MB of its %d MB for clients (max streaming memory MB); try again when sessions have ended", float64(s.memory.used.Load())/(1<<20), s.cfg.MaxMemoryMB)})
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.memory.release(connBufferBytes)
		s.log.Debug("WebSocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return // the upgrader has answered with an HTTP error
	}
	c := newConn(s, ws, r.RemoteAddr)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	closing := s.closing
	s.mu.Unlock()
	if closing {
		// Upgraded while Shutdown was closing the connections it knew.
		c.closeWith(closeGoingAway, errShutdown.text)
	}
	c.run()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// remoteHost is the host part of a request's remote address.
func remoteHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// admitAddr counts one more connection from host, unless host holds the
// most allowed; it returns the number open before.
func (s *Server) admitAddr(host string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.perAddr[host]
	if n >= s.cfg.MaxConnsPerAddr {
		return n, false
	}
	s.perAddr[host] = n + 1
	return n, true
}

// leaveAddr uncounts a connection from host.
func (s *Server) leaveAddr(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perAddr[host]--; s.perAddr[host] <= 0 {
		delete(s.perAddr, host)
	}
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "cannot encode the answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

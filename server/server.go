package server

import (
	"context"
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
	workers   chan struct{} // a token per session being processed
	readLimit int64
	upgrader  websocket.Upgrader
	started   time.Time

	ctx    context.Context // cancelled, with errShutdown, when the server stops
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	closing bool
	ln      net.Listener
	http    *http.Server
	conns   map[*conn]struct{}
	wg      sync.WaitGroup // every goroutine and handler the server tracks
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
	ctx, cancel := context.WithCancelCause(context.Background())
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		reg:       newRegistry(cfg),
		workers:   make(chan struct{}, cfg.ProcessingWorkers),
		readLimit: max(cfg.MaxFrameBytes+protocol.FrameHeaderSize, cfg.MaxSignalBytes, cfg.MaxMessageBytes),
		ctx:       ctx,
		cancel:    cancel,
		conns:     make(map[*conn]struct{}),
		stopped:   make(chan struct{}),
	}
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:   64 << 10,
		WriteBufferSize:  16 << 10,
		HandshakeTimeout: writeWait,
	}
	if leftovers, _ := os.ReadDir(filepath.Join(cfg.DataDir, "spool")); len(leftovers) > 0 {
		s.log.Warn("spools of an earlier run found; they are not recovered and a new session with the same id replaces its spool",
			"count", len(leftovers), "dir", filepath.Join(cfg.DataDir, "spool"))
	}
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
	s.log.Info("listening", "addr", ln.Addr().String(), "version", s.cfg.Version,
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

// Shutdown stops accepting connections, ends every session (the clients
// get a close frame saying the server is shutting down, and processing is
// cancelled) and waits for every goroutine the server started. If ctx ends
// first, it drops the remaining connections, waits for the goroutines to
// notice, and returns ctx's error. Later calls wait for the first.
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
	s.cancel(errShutdown)
	var err error
	if httpSrv != nil {
		err = httpSrv.Shutdown(ctx)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.ws.Close()
		}
		s.mu.Unlock()
		if httpSrv != nil {
			httpSrv.Close()
		}
		<-done
		err = ctx.Err()
	}
	if httpSrv != nil {
		s.log.Info("stopped")
	}
	return err
}

// Close is Shutdown with a few seconds of grace.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Shutdown(ctx)
}

// goTracked runs f in a goroutine Shutdown waits for, unless the server is
// shutting down.
func (s *Server) goTracked(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
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
	mux.HandleFunc("GET "+PathStats, s.handleStats)
	mux.HandleFunc("POST "+PathAnalyze, s.handleAnalyze)
	mux.HandleFunc("GET "+protocol.Path, s.handleStream)
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

// stats returns the body of GET /streaming/stats.
func (s *Server) stats() protocol.Stats {
	now := time.Now()
	st := protocol.Stats{
		MaxSessions: s.cfg.MaxSessions,
		MaxMemoryMB: float64(s.cfg.MaxMemoryMB),
		Sessions:    map[string]protocol.SessionStats{},
	}
	var memory int64
	for _, sess := range s.reg.list() {
		ss := sess.stats(now)
		st.Sessions[sess.id] = ss
		st.ActiveSessions++
		st.TotalFrames += ss.FramesReceived
		memory += int64(sess.spool.Buffered())
	}
	st.TotalMemoryMB = megabytes(memory)
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
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Debug("WebSocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return // the upgrader has answered with an HTTP error
	}
	c := newConn(s, ws, r.RemoteAddr)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.run()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
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

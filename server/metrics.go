package server

import (
	"log/slog"
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/referee-project/referee/pipeline/rightofway"
)

// PathMetrics serves the metrics in the Prometheus text format.
const PathMetrics = "/metrics"

// metrics are the server's Prometheus metrics, in a registry the server
// owns (never the global one, so that two servers in one process, as in
// the tests, count apart), besides the Go runtime's (go_*) and the
// process's (process_*: CPU, memory, open files). Names follow the
// Prometheus conventions: base units as suffixes (_seconds, _bytes),
// _total on counters, _info for the build.
type metrics struct {
	reg        *prometheus.Registry
	started    prometheus.Counter
	resumed    prometheus.Counter
	completed  prometheus.Counter
	failed     *prometheus.CounterVec // by reason: see endReason.kind
	frames     prometheus.Counter
	bytes      prometheus.Counter
	processing prometheus.Histogram
	errors     *prometheus.CounterVec // error messages sent, by code
	refused    *prometheus.CounterVec // requests refused before the upgrade, by reason
	reviews    *prometheus.CounterVec // reviews this node recorded, by call
}

func newMetrics(srv *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		started: prometheus.NewCounter(prometheus.CounterOpts{Name: "referee_sessions_started_total",
			Help: "Streaming sessions started (resumed ones are counted once, when first started)."}),
		resumed: prometheus.NewCounter(prometheus.CounterOpts{Name: "referee_sessions_resumed_total",
			Help: "Sessions resumed by a client after a lost connection or a restart."}),
		completed: prometheus.NewCounter(prometheus.CounterOpts{Name: "referee_sessions_completed_total",
			Help: "Streaming sessions processed to a result."}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "referee_sessions_failed_total",
			Help: "Streaming sessions that ended without a result, by reason."}, []string{"reason"}),
		frames: prometheus.NewCounter(prometheus.CounterOpts{Name: "referee_frames_received_total",
			Help: "Frame messages received, duplicates and refused ones included."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "referee_frames_received_bytes_total",
			Help: "Bytes of frame payloads received."}),
		processing: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "referee_processing_duration_seconds",
			Help:    "Time to reconstruct and analyse a streamed session, failed runs included.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "referee_errors_sent_total",
			Help: "Error messages sent to clients (WebSocket and HTTP), by error code."}, []string{"code"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "referee_connections_refused_total",
			Help: "Requests refused before the WebSocket upgrade, by reason."}, []string{"reason"}),
		reviews: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "referee_reviews_recorded_total",
			Help: "Reviews recorded by POST /api/sessions/{key}/review on this node, by the referee's call (a changed review counts again)."}, []string{"call"}),
	}
	// Every call is served from the start, at 0, so that a rate over the
	// first review of a call is not lost.
	for _, call := range rightofway.Calls() {
		m.reviews.WithLabelValues(call)
	}
	m.reg.MustRegister(m.started, m.resumed, m.completed, m.failed, m.frames, m.bytes, m.processing, m.errors, m.refused, m.reviews,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "referee_sessions_active",
			Help: "Streaming sessions held: streaming, processing or disconnected and waiting to be resumed."},
			func() float64 { return float64(srv.reg.count()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "referee_spool_bytes",
			Help: "Bytes of disk used by the frame spools."},
			func() float64 { return float64(srv.reg.disk.used.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "referee_spool_limit_bytes",
			Help: "The limit of referee_spool_bytes (max spool bytes)."},
			func() float64 { return float64(srv.reg.disk.limit) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "referee_build_info",
			Help:        "Always 1: the release of referee and the Go release it was built with, as labels.",
			ConstLabels: prometheus.Labels{"version": srv.cfg.Version, "goversion": runtime.Version()}},
			func() float64 { return 1 }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Registry: m.reg,
	})
}

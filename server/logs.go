package server

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// A client can make the server log on every message it sends (an unknown
// type, a refused frame): a connection logs the first logBurst lines of a
// kind, then one line every logEvery with the count of those it left out,
// and one more with the rest when it ends. The metrics count every one.
const (
	logBurst = 5
	logEvery = 10 * time.Second
)

// logLimiter counts log lines by kind for one connection (or, for the
// refusals before an upgrade, for the server). Safe for concurrent use.
type logLimiter struct {
	mu    sync.Mutex
	kinds map[string]*logKind
}

type logKind struct {
	logged     int
	suppressed int
	since      time.Time    // the first line left out since the last count
	log        *slog.Logger // the logger of the last line left out
	level      slog.Level
}

// log logs msg with args at level to log, unless kind has had its burst:
// then it only counts it, and logs the count of those left out once
// logEvery has passed since the first of them.
func (l *logLimiter) log(log *slog.Logger, level slog.Level, kind, msg string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	if l.kinds == nil {
		l.kinds = make(map[string]*logKind)
	}
	k := l.kinds[kind]
	if k == nil {
		k = &logKind{}
		l.kinds[kind] = k
	}
	if k.logged < logBurst {
		k.logged++
		l.mu.Unlock()
		log.Log(context.Background(), level, msg, args...)
		return
	}
	if k.suppressed == 0 {
		k.since = now
	}
	k.suppressed++
	k.log, k.level = log, level
	var report int
	if now.Sub(k.since) >= logEvery {
		report, k.suppressed = k.suppressed, 0
	}
	l.mu.Unlock()
	if report > 0 {
		log.Log(context.Background(), level, "log lines left out", "kind", kind, "count", report, "over", formatDuration(now.Sub(k.since)), "last", msg)
	}
}

// flush logs the counts of the lines left out and not yet reported, each
// with the logger and level of the last of them.
func (l *logLimiter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for kind, k := range l.kinds {
		if k.suppressed > 0 {
			k.log.Log(context.Background(), k.level, "log lines left out", "kind", kind, "count", k.suppressed, "over", formatDuration(time.Since(k.since)))
			k.suppressed = 0
		}
	}
}

package server

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// In a cluster, a session has no phrase key, hence no record in the
// catalogue, until its processing begins (claim). So that every node
// lists the sessions streaming on every node, each node tells the others
// of its own (Catalog.SetLive) every LivePeriod, and within a fifth of it
// when one starts or stops streaming; they list each for liveTTLPeriods
// periods after, so that a node that dies leaves their lists then.

// liveTTLPeriods is how many periods the other nodes list a session for
// after its node last set it: a beat or two may be late or lost.
const liveTTLPeriods = 3

// liveClearTimeout bounds the last SetLive of a server shutting down,
// which removes its sessions from the other nodes' lists at once.
const liveClearTimeout = 2 * time.Second

// announceLive tells the cluster of the sessions streaming on this node
// until the server's context ends, then clears them. A cluster that
// cannot be told is tried again at every check.
func (s *Server) announceLive() {
	q, period := s.cfg.Jobs, s.cfg.LivePeriod
	t := time.NewTicker(period / 5)
	defer t.Stop()
	var sent []string // the session ids set last, sorted
	var sentAt time.Time
	var failing error
	for {
		select {
		case <-s.ctx.Done():
			if len(sent) > 0 || failing != nil {
				ctx, cancel := context.WithTimeout(context.Background(), liveClearTimeout)
				if err := q.SetLive(ctx, nil, 0); err != nil {
					s.log.Warn("cannot remove this node's sessions from the cluster's list of sessions streaming: the other nodes list them until they expire", "err", err, "expire_after", liveTTLPeriods*period)
				}
				cancel()
			}
			return
		case <-t.C:
		}
		live := s.streamingSummaries()
		ids := slices.Sorted(maps.Keys(live))
		if failing == nil && slices.Equal(ids, sent) && (len(ids) == 0 || time.Since(sentAt) < period) {
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, period)
		err := q.SetLive(ctx, live, liveTTLPeriods*period)
		cancel()
		switch {
		case err != nil && failing == nil:
			s.log.Warn("cannot tell the cluster of the sessions streaming here: the other nodes do not list them until it can", "sessions", len(ids), "err", err)
		case err == nil && failing != nil:
			s.log.Info("the cluster is told of the sessions streaming here again", "sessions", len(ids))
		}
		failing = err
		if err == nil {
			sent, sentAt = ids, time.Now()
		}
	}
}

// streamingSummaries returns what the review API lists of the sessions
// on this node that have no phrase key yet, encoded, by session id: those
// streaming, and those whose processing has not claimed its key yet; none
// once the server is shutting down.
func (s *Server) streamingSummaries() map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	if s.isClosing() {
		// Its streams are cut, and no client may resume them here until
		// it starts again: the others stop listing them now, not when the
		// processing being drained ends.
		return out
	}
	for _, sess := range s.reg.list() {
		sum, key, ok := s.liveSummary(sess)
		if !ok || key != "" {
			continue
		}
		data, err := json.Marshal(sum)
		if err != nil {
			s.log.Warn("cannot encode a streaming session's summary for the cluster", "session_id", sess.id, "err", err)
			continue
		}
		out[sess.id] = data
	}
	return out
}

package natsjobs

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/referee-project/referee/pipeline/jobs"
)

// The sessions the serve nodes stream (Catalog.SetLive) live in a bucket
// of their own, LiveBucket, one value per node and session: they change
// every few seconds and carry no phrase key, so the phrases' records
// stay as they are. A value is listed for the ttl its node gave it,
// counted from when JetStream stored it; the bucket's own limit,
// jobs.MaxLiveTTL, removes what nobody set again.

// LiveBucket is the key-value bucket of the sessions being streamed.
const LiveBucket = "referee-live"

// liveBucketBytes bounds LiveBucket: a value is a few hundred bytes.
const liveBucketBytes = 16 << 20

// liveBucketTTL is LiveBucket's limit: no value is listed longer.
const liveBucketTTL = jobs.MaxLiveTTL

// liveValue is a value of LiveBucket.
type liveValue struct {
	Node      string          `json:"node"`
	SessionID string          `json:"session_id"`
	TTL       time.Duration   `json:"ttl"`
	Summary   json.RawMessage `json:"summary"`
}

// liveKey is the key of a session of node in LiveBucket. The node's name
// is encoded, as it may hold characters a key may not.
func liveKey(node, sessionID string) string {
	return "n" + base64.RawURLEncoding.EncodeToString([]byte(node)) + "." + sessionID
}

// SetLive implements jobs.Catalog: it puts the value of every session of
// live, and deletes those of the sessions set before that live no longer
// holds. A session whose value could not be put or deleted is tried again
// at the next call.
func (c *Conn) SetLive(ctx context.Context, live map[string]json.RawMessage, ttl time.Duration) error {
	if err := c.reachable(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.OpTimeout)
	defer cancel()
	h, err := c.handles(ctx)
	if err != nil {
		return err
	}
	ttl = min(ttl, jobs.MaxLiveTTL)
	c.liveMu.Lock()
	defer c.liveMu.Unlock()
	keys := make(map[string]bool, len(live))
	var errs []error
	for id, summary := range live {
		key := liveKey(c.opts.Name, id)
		keys[key] = true
		value, err := json.Marshal(liveValue{Node: c.opts.Name, SessionID: id, TTL: ttl, Summary: summary})
		if err == nil {
			_, err = h.live.Put(ctx, key, value)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("session %s: %w", id, err))
		}
	}
	for key := range c.liveKeys {
		if keys[key] {
			continue
		}
		if err := h.live.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			errs = append(errs, fmt.Errorf("remove %s: %w", key, err))
			keys[key] = true
		}
	}
	c.liveKeys = keys
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tell the cluster of the sessions streaming on %s (bucket %s): %w", c.opts.Name, LiveBucket, err)
	}
	return nil
}

// Live implements jobs.Catalog: one pass of a watcher over LiveBucket,
// less the values older than their ttl.
func (c *Conn) Live(ctx context.Context) ([]jobs.Live, error) {
	if err := c.reachable(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.OpTimeout)
	defer cancel()
	h, err := c.handles(ctx)
	if err != nil {
		return nil, err
	}
	var out []jobs.Live
	err = scan(ctx, h.live, func(e jetstream.KeyValueEntry) {
		var v liveValue
		if err := json.Unmarshal(e.Value(), &v); err == nil && time.Since(e.Created()) <= v.TTL {
			out = append(out, jobs.Live{Node: v.Node, SessionID: v.SessionID, Summary: v.Summary})
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list the sessions streaming (bucket %s): %w", LiveBucket, err)
	}
	slices.SortFunc(out, func(a, b jobs.Live) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.SessionID, b.SessionID))
	})
	return out, nil
}

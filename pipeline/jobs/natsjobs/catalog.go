package natsjobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/referee-project/referee/pipeline/jobs"
)

// The catalogue (jobs.Catalog) lives in the phrases' records: a serve node
// publishes into the record of a key it reserved, reviews are
// compare-and-set on the record's revision, and a list is one pass of a
// watcher over the bucket.

// Publish implements jobs.Catalog.
func (c *Conn) Publish(ctx context.Context, key string, summary json.RawMessage, files map[string][]byte) error {
	if err := c.reachable(); err != nil {
		return fmt.Errorf("publish phrase %s in %s: %w", key, StateBucket, err)
	}
	if _, err := c.update(ctx, key, func(r *Record) bool {
		r.Summary, r.NodeFiles = summary, files
		return true
	}); err != nil {
		return fmt.Errorf("publish phrase %s in %s: %w", key, StateBucket, limitHint(err))
	}
	return nil
}

// reachable returns why the cluster cannot be asked now, or nil: a
// connection known to be down fails at once rather than at a deadline.
func (c *Conn) reachable() error {
	if !c.nc.IsConnected() {
		return fmt.Errorf("NATS at %s is unreachable (status %s)", c.opts.URL, c.nc.Status())
	}
	return nil
}

// Entries implements jobs.Catalog. Records without a summary (phrases
// submitted without Reserve, or whose node could not publish) are left
// out.
func (c *Conn) Entries(ctx context.Context) (map[string]jobs.Entry, error) {
	if err := c.reachable(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.OpTimeout)
	defer cancel()
	h, err := c.handles(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]jobs.Entry{}
	err = scan(ctx, h.kv, func(e jetstream.KeyValueEntry) {
		var rec Record
		if err := json.Unmarshal(e.Value(), &rec); err == nil && rec.Summary != nil {
			out[e.Key()] = entry(e.Key(), rec)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list the phrases of %s: %w", StateBucket, err)
	}
	return out, nil
}

// scan calls each with every value kv holds now, by one pass of a
// watcher: the nil entry that ends the values stored until now ends it.
func scan(ctx context.Context, kv jetstream.KeyValue, each func(jetstream.KeyValueEntry)) error {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("the watcher stopped")
			}
			if e == nil {
				return nil
			}
			each(e)
		}
	}
}

// Entry implements jobs.Catalog.
func (c *Conn) Entry(ctx context.Context, key string) (jobs.Entry, error) {
	if err := c.reachable(); err != nil {
		return jobs.Entry{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.OpTimeout)
	defer cancel()
	if !jobs.ValidKey(key) {
		return jobs.Entry{}, jobs.ErrUnknown
	}
	rec, _, err := c.Record(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || err == nil && rec.Summary == nil {
		return jobs.Entry{}, jobs.ErrUnknown
	}
	if err != nil {
		return jobs.Entry{}, err
	}
	return entry(key, rec), nil
}

// entry is the catalogue's view of a record.
func entry(key string, rec Record) jobs.Entry {
	e := jobs.Entry{Key: key, Node: rec.Node, Summary: rec.Summary, Files: rec.NodeFiles, Artifacts: rec.Objects, Review: rec.Review, Submitted: rec.State != StateReserved}
	switch rec.State {
	case StateDone:
		e.Analysed = rec.Result
	case StateFailed:
		e.Failed = rec.Reason
	}
	return e
}

// SetReview implements jobs.Catalog through update, a compare-and-set on
// the record's revision. A change that gives the review back as it was
// writes nothing.
func (c *Conn) SetReview(ctx context.Context, key, node string, change func(current []byte) ([]byte, error)) ([]byte, error) {
	if err := c.reachable(); err != nil {
		return nil, err
	}
	if !jobs.ValidKey(key) {
		return nil, jobs.ErrUnknown
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.OpTimeout)
	defer cancel()
	var review []byte
	var changeErr error
	_, err := c.update(ctx, key, func(r *Record) bool {
		if r.Summary == nil || r.Node != node {
			changeErr = jobs.ErrUnknown
			return false
		}
		review, changeErr = change(r.Review)
		if changeErr != nil || bytes.Equal(review, r.Review) {
			return false
		}
		r.Review = review
		return true
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, jobs.ErrUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("store the review of phrase %s in %s: %w", key, StateBucket, limitHint(err))
	}
	if changeErr != nil {
		return nil, changeErr
	}
	return review, nil
}

// Forget implements jobs.Catalog: the record is deleted, so that a job
// still queued is dropped by the worker that takes it (take) and Reserve
// may give the key again.
func (c *Conn) Forget(ctx context.Context, key string) error {
	if err := c.reachable(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.OpTimeout)
	defer cancel()
	h, err := c.handles(ctx)
	if err == nil {
		err = h.kv.Delete(ctx, key)
	}
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("remove phrase %s from %s: %w", key, StateBucket, err)
	}
	return nil
}

// FetchArtifact implements jobs.Catalog.
func (c *Conn) FetchArtifact(ctx context.Context, key, name, dst string) error {
	if err := c.reachable(); err != nil {
		return err
	}
	if !jobs.ValidKey(key) {
		return jobs.ErrUnknown
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.FileTimeout)
	defer cancel()
	rec, _, err := c.Record(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return jobs.ErrUnknown
	}
	if err != nil {
		return err
	}
	found := false
	for _, o := range rec.Objects {
		found = found || o.Name == name
	}
	if !found {
		return fmt.Errorf("phrase %s has no artifact %q: %w", key, name, jobs.ErrUnknown)
	}
	h, err := c.handles(ctx)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("fetch the artifact %s of phrase %s: %w", name, key, err)
	}
	if err := h.files.GetFile(ctx, rec.Prefix+name, dst); err != nil {
		return fmt.Errorf("fetch the artifact %s of phrase %s from %s: %w", name, key, FilesBucket, err)
	}
	return nil
}

// Hold implements jobs.Catalog: a key without a record gets one in state
// held, of this node, with no summary (so that no list shows it), which
// Reserve on any node passes over as it does every record it did not
// create.
func (c *Conn) Hold(ctx context.Context, keys []string) ([]string, error) {
	if err := c.reachable(); err != nil {
		return nil, fmt.Errorf("hold this node's phrase keys in %s: %w", StateBucket, err)
	}
	value, err := json.Marshal(Record{State: StateHeld, Node: c.opts.Name, Submitted: time.Now().UTC()})
	if err != nil {
		return nil, fmt.Errorf("encode the record of a held phrase key: %w", err)
	}
	var held []string
	for _, key := range keys {
		if !jobs.ValidKey(key) {
			continue
		}
		err := func() error {
			ctx, cancel := context.WithTimeout(ctx, c.opts.OpTimeout)
			defer cancel()
			h, err := c.handles(ctx)
			if err != nil {
				return err
			}
			_, err = h.kv.Create(ctx, key, value)
			return err
		}()
		switch {
		case err == nil:
			held = append(held, key)
		case !errors.Is(err, jetstream.ErrKeyExists):
			return held, fmt.Errorf("hold the phrase key %s in %s: %w", key, StateBucket, limitHint(err))
		}
	}
	return held, nil
}

package natsjobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/referee-project/referee/pipeline/jobs"
)

// fetchWait is how long one pull request waits for a job, so that Next
// notices its context ending within it.
const fetchWait = time.Second

// Next implements jobs.Source. It pulls jobs from the shared consumer one
// at a time; a job whose record says done or failed is acknowledged and
// skipped (a redelivery after its result was stored), and a job handed out
// more than MaxAttempts times goes to the dead letters.
func (c *Conn) Next(ctx context.Context) (jobs.Delivery, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := c.handles(ctx)
		if err != nil {
			c.pause(ctx)
			continue
		}
		batch, err := h.cons.Fetch(1, jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			c.log.Debug("cannot pull a job; trying again", "err", err)
			c.pause(ctx)
			continue
		}
		for msg := range batch.Messages() {
			if d := c.take(ctx, msg); d != nil {
				// A batch of one: nothing else to drain.
				return d, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			c.log.Debug("pulling a job failed; trying again", "err", err)
			c.pause(ctx)
		}
	}
}

// pause waits a reconnect's time, or until ctx ends.
func (c *Conn) pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(c.opts.ReconnectWait):
	}
}

// take turns a pulled message into a delivery, or settles it and returns
// nil when there is nothing to analyse.
func (c *Conn) take(ctx context.Context, msg jetstream.Msg) *delivery {
	meta, err := msg.Metadata()
	if err != nil {
		c.log.Warn("a job message without JetStream metadata; leaving it", "err", err)
		return nil
	}
	var spec jobs.Spec
	if err := json.Unmarshal(msg.Data(), &spec); err != nil || !jobs.ValidKey(spec.Key) {
		c.log.Error("a job that is not a referee job; removing it from the queue", "subject", msg.Subject(), "err", err)
		msg.TermWithReason("not a referee job")
		return nil
	}
	log := c.log.With("session_id", spec.SessionID, "phrase", spec.Key)
	attempt := int(meta.NumDelivered)
	rec, _, err := c.Record(ctx, spec.Key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		// Expired (--nats-retention) or removed: nobody waits for it.
		log.Warn("a job without a record; removing it from the queue", "err", err)
		msg.TermWithReason("no record")
		return nil
	}
	if err != nil {
		log.Warn("cannot read the record of a job; giving it back", "err", err)
		msg.Nak()
		return nil
	}
	switch {
	case rec.State == StateDone || rec.State == StateFailed:
		log.Info("job already ended; acknowledging its redelivery", "state", rec.State, "attempt", attempt)
		msg.Ack()
		return nil
	case attempt > c.opts.MaxAttempts:
		reason := rec.Reason
		if reason == "" {
			reason = fmt.Sprintf("no worker finished it in %d tries (each worker stopped or was lost mid-analysis)", attempt-1)
		}
		d := c.newDelivery(msg, spec, attempt-1)
		d.deadLetter(ctx, reason)
		return nil
	}
	if _, err := c.update(ctx, spec.Key, func(r *Record) bool {
		if r.State == StateDone || r.State == StateFailed {
			return false
		}
		r.State, r.Worker, r.Attempts = StateRunning, c.opts.Name, attempt
		return true
	}); err != nil {
		log.Warn("cannot mark a job as running; analysing it anyway", "err", err)
	}
	log.Info("job taken", "attempt", attempt, "analyzer", spec.Analyzer)
	d := c.newDelivery(msg, spec, attempt)
	d.heartbeat()
	return d
}

// delivery is one try of a job: jobs.Delivery.
type delivery struct {
	c       *Conn
	msg     jetstream.Msg
	spec    jobs.Spec
	attempt int

	stop context.CancelFunc // stops the heartbeat
	wg   sync.WaitGroup
	once sync.Once
}

func (c *Conn) newDelivery(msg jetstream.Msg, spec jobs.Spec, attempt int) *delivery {
	return &delivery{c: c, msg: msg, spec: spec, attempt: attempt, stop: func() {}}
}

// heartbeat tells JetStream every third of the ack wait that the job is
// being worked on, so that a long analysis is not handed to another worker
// while this one lives.
func (d *delivery) heartbeat() {
	ctx, cancel := context.WithCancel(d.c.ctx)
	d.stop = cancel
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		t := time.NewTicker(d.c.opts.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := d.msg.InProgress(); err != nil {
					d.c.log.Debug("cannot tell JetStream the job is in progress", "phrase", d.spec.Key, "err", err)
				}
			}
		}
	}()
}

// end stops the heartbeat; it returns false when the delivery had ended.
func (d *delivery) end() bool {
	ended := true
	d.once.Do(func() { ended = false })
	d.stop()
	d.wg.Wait()
	return !ended
}

// Spec implements jobs.Delivery.
func (d *delivery) Spec() jobs.Spec { return d.spec }

// Attempt implements jobs.Delivery.
func (d *delivery) Attempt() int { return d.attempt }

// Fetch implements jobs.Delivery.
func (d *delivery) Fetch(ctx context.Context, dir string) (map[string]string, error) {
	rec, _, err := d.c.Record(ctx, d.spec.Key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the job directory %s: %w (check --data-dir)", dir, err)
	}
	paths := map[string]string{}
	for _, name := range rec.Inputs {
		dst := filepath.Join(dir, filepath.Base(name))
		err := d.c.retry(ctx, d.c.opts.FileTimeout, nil, func(ctx context.Context) error {
			h, err := d.c.handles(ctx)
			if err != nil {
				return err
			}
			return h.files.GetFile(ctx, d.spec.Key+"/in/"+name, dst)
		})
		if err != nil {
			return nil, fmt.Errorf("fetch the input %s of phrase %s from %s: %w", name, d.spec.Key, FilesBucket, err)
		}
		paths[name] = dst
	}
	return paths, nil
}

// Progress implements jobs.Delivery.
func (d *delivery) Progress(stage string, progress float64, message string) {
	body, err := json.Marshal(progressMsg{Stage: stage, Progress: progress, Message: message})
	if err == nil {
		err = d.c.nc.Publish(progressSubject(d.spec.Key), body)
	}
	if err != nil {
		d.c.log.Debug("cannot publish a job's progress", "phrase", d.spec.Key, "err", err)
	}
}

// Complete implements jobs.Delivery: the artifacts go under
// <key>/out/<try>/, then the record becomes done with the result, unless
// another try made it done first; then this try's artifacts are removed
// and its result dropped.
func (d *delivery) Complete(ctx context.Context, result []byte, dir string) error {
	if !d.end() {
		return errors.New("the delivery has already ended")
	}
	c, key := d.c, d.spec.Key
	prefix := key + "/out/" + strconv.Itoa(d.attempt) + "/"
	var names []string
	var objects []jobs.Artifact
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if err := c.retry(ctx, c.opts.FileTimeout, nil, func(ctx context.Context) error {
			info, err := c.putFile(ctx, prefix+name, path)
			if err == nil {
				objects = append(objects, jobs.Artifact{Name: name, Size: int64(info.Size), Digest: info.Digest})
			}
			return err
		}); err != nil {
			return fmt.Errorf("store the artifact %s: %w", name, limitHint(err))
		}
		names = append(names, name)
		return nil
	})
	if err != nil {
		d.msg.Nak()
		return fmt.Errorf("complete phrase %s: %w", key, err)
	}
	won := false
	rec, err := c.update(ctx, key, func(r *Record) bool {
		if r.State == StateDone || r.State == StateFailed {
			return false
		}
		r.State, r.Attempts, r.Worker, r.Result, r.Prefix, r.Files, r.Objects, r.Reason, r.Finished = StateDone, d.attempt, c.opts.Name, result, prefix, names, objects, "", time.Now().UTC()
		won = true
		return true
	})
	if err != nil {
		d.msg.Nak()
		return fmt.Errorf("store the result of phrase %s in %s: %w", key, StateBucket, limitHint(err))
	}
	if !won {
		c.log.Info("another try ended the job first; dropping this try's result", "session_id", d.spec.SessionID, "phrase", key, "state", rec.State, "attempt", d.attempt)
		for _, name := range names {
			c.files(ctx, func(ctx context.Context, files jetstream.ObjectStore) error { return files.Delete(ctx, prefix+name) })
		}
	}
	c.nc.Publish(doneSubject(key), nil)
	d.ack(ctx)
	return nil
}

// files runs f on the object store with a request timeout, logging a
// failure: for clean-ups the bucket's retention also does.
func (c *Conn) files(ctx context.Context, f func(ctx context.Context, files jetstream.ObjectStore) error) {
	rctx, cancel := context.WithTimeout(ctx, c.opts.OpTimeout)
	defer cancel()
	h, err := c.handles(rctx)
	if err == nil {
		err = f(rctx, h.files)
	}
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		c.log.Debug("object store clean-up failed; the bucket's retention will do it", "err", err)
	}
}

// ack acknowledges the message; when that fails (JetStream away), the
// job comes back later and take sees its record ended.
func (d *delivery) ack(ctx context.Context) {
	actx, cancel := context.WithTimeout(ctx, d.c.opts.OpTimeout)
	defer cancel()
	if err := d.msg.DoubleAck(actx); err != nil {
		d.c.log.Debug("cannot acknowledge a job; its redelivery will be skipped", "phrase", d.spec.Key, "err", err)
	}
}

// Fail implements jobs.Delivery.
func (d *delivery) Fail(ctx context.Context, cause error) error {
	if !d.end() {
		return errors.New("the delivery has already ended")
	}
	reason := cause.Error()
	if d.attempt >= d.c.opts.MaxAttempts {
		d.deadLetter(ctx, reason)
		return nil
	}
	if _, err := d.c.update(ctx, d.spec.Key, func(r *Record) bool {
		if r.State == StateDone || r.State == StateFailed {
			return false
		}
		r.Reason = reason
		return true
	}); err != nil {
		d.c.log.Warn("cannot record why a try failed", "phrase", d.spec.Key, "err", err)
	}
	d.c.log.Warn("job failed; giving it back for another try", "session_id", d.spec.SessionID, "phrase", d.spec.Key, "attempt", d.attempt, "max_attempts", d.c.opts.MaxAttempts, "err", reason)
	if err := d.msg.Nak(); err != nil {
		return fmt.Errorf("give phrase %s back to the queue: %w (it comes back after the ack wait)", d.spec.Key, err)
	}
	return nil
}

// Release implements jobs.Delivery.
func (d *delivery) Release() {
	if !d.end() {
		return
	}
	if err := d.msg.Nak(); err != nil {
		d.c.log.Debug("cannot give a job back; it comes back after the ack wait", "phrase", d.spec.Key, "err", err)
	}
}

// deadLetter publishes the job with reason on its dead-letter subject,
// fails its record for good and removes it from the queue.
func (d *delivery) deadLetter(ctx context.Context, reason string) {
	c, key := d.c, d.spec.Key
	log := c.log.With("session_id", d.spec.SessionID, "phrase", key)
	body, err := json.Marshal(DeadLetter{Spec: d.spec, Attempts: d.attempt, Reason: reason, Worker: c.opts.Name, At: time.Now().UTC()})
	if err == nil {
		err = c.retry(ctx, c.opts.OpTimeout, nil, func(ctx context.Context) error {
			_, err := c.js.Publish(ctx, DeadSubjectBase+key, body, jetstream.WithMsgID("dead-"+key))
			return err
		})
	}
	if err != nil {
		log.Error("cannot publish a dead letter; the job comes back after the ack wait", "err", err)
		return
	}
	if _, err := c.update(ctx, key, func(r *Record) bool {
		if r.State == StateDone || r.State == StateFailed {
			return false
		}
		r.State, r.Reason, r.Attempts, r.Finished = StateFailed, reason, d.attempt, time.Now().UTC()
		return true
	}); err != nil {
		log.Error("cannot fail the record of a dead job; the job comes back after the ack wait", "err", err)
		return
	}
	c.nc.Publish(doneSubject(key), nil)
	log.Error("job failed on every try; sent to the dead letters", "attempts", d.attempt, "subject", DeadSubjectBase+key, "reason", reason)
	if err := d.msg.TermWithReason("dead letter"); err != nil {
		log.Debug("cannot remove a dead job from the queue; its redelivery will be skipped", "err", err)
	}
}

// DeadLetter is what a dead-letter subject carries.
type DeadLetter struct {
	Spec     jobs.Spec `json:"spec"`
	Attempts int       `json:"attempts"`
	Reason   string    `json:"reason"`
	Worker   string    `json:"worker"`
	At       time.Time `json:"at"`
}

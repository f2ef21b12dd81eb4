package natsjobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/referee-project/referee/pipeline/jobs"
)

// maxKeySuffix bounds the search for a free phrase key: "<id>-2" to
// "<id>-<maxKeySuffix>".
const maxKeySuffix = 100000

// Submit implements jobs.Queue: it takes spec.Key, reserved by Reserve,
// or reserves the first free phrase key of spec.SessionID ("<id>", then
// "<id>-2", ...) by creating its record; puts the inputs in the object
// store under <key>/in/; and publishes the job with the key and the
// submission as its message id, so that a publish repeated after a lost
// answer queues it once.
func (c *Conn) Submit(ctx context.Context, spec jobs.Spec, inputs map[string]string, waiting func(string)) (string, error) {
	spec.Node = c.opts.Name
	spec.Submitted = time.Now().UTC()
	names := make([]string, 0, len(inputs))
	for name := range inputs {
		names = append(names, name)
	}
	submission := nuid.Next()
	key := spec.Key
	if key == "" {
		rec := Record{State: StateQueued, SessionID: spec.SessionID, Node: spec.Node, Submission: submission, Submitted: spec.Submitted, Inputs: names}
		var err error
		if key, err = c.reserve(ctx, rec, nil, waiting); err != nil {
			return "", err
		}
	} else if err := c.resubmit(ctx, key, spec, submission, names); err != nil {
		return key, err
	}
	spec.Key = key
	for name, path := range inputs {
		err := c.retry(ctx, c.opts.FileTimeout, waiting, func(ctx context.Context) error {
			_, err := c.putFile(ctx, key+"/in/"+name, path)
			return err
		})
		if err != nil {
			return key, fmt.Errorf("store the input %s of phrase %s: %w", name, key, limitHint(err))
		}
	}
	body, err := json.Marshal(spec)
	if err != nil {
		return key, fmt.Errorf("encode the job of phrase %s: %w", key, err)
	}
	err = c.retry(ctx, c.opts.OpTimeout, waiting, func(ctx context.Context) error {
		_, err := c.js.Publish(ctx, JobsSubject, body, jetstream.WithMsgID(key+"/"+submission))
		if err != nil && !transient(err) {
			// The stream holds MaxJobs already: wait for room like for
			// an unreachable JetStream, the queue drains by itself.
			if waiting != nil {
				waiting(fmt.Sprintf("JetStream refuses the job (%v; the queue holds at most %d jobs, --nats-max-jobs): waiting for room", err, c.opts.MaxJobs))
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("the job queue is full: %w", err)
			case <-time.After(c.opts.PollInterval):
			}
			return errQueueFull
		}
		return err
	})
	if err != nil {
		return key, fmt.Errorf("queue the job of phrase %s on %s: %w", key, JobsSubject, err)
	}
	c.log.Info("job submitted", "session_id", spec.SessionID, "phrase", key, "analyzer", spec.Analyzer)
	return key, nil
}

// resubmit makes the record of key, reserved by this node, a new job's:
// queued, with no try, result nor artifacts yet. What the nodes published
// of the phrase and its review stay.
func (c *Conn) resubmit(ctx context.Context, key string, spec jobs.Spec, submission string, inputs []string) error {
	_, err := c.update(ctx, key, func(r *Record) bool {
		if r.Submission == submission {
			return false // done by a try whose answer was lost
		}
		*r = Record{State: StateQueued, SessionID: spec.SessionID, Node: spec.Node, Submission: submission, Submitted: spec.Submitted, Inputs: inputs,
			Summary: r.Summary, NodeFiles: r.NodeFiles, Review: r.Review}
		return true
	})
	if err != nil {
		return fmt.Errorf("submit phrase %s: %w", key, limitHint(err))
	}
	return nil
}

// errQueueFull is retried by retry, as transient: the queue drains.
var errQueueFull = errors.New("the job queue is full")

// Reserve implements jobs.Catalog: the record it creates is in state
// reserved until Submit queues the job.
func (c *Conn) Reserve(ctx context.Context, sessionID string, taken func(string) bool, waiting func(string)) (string, error) {
	rec := Record{State: StateReserved, SessionID: sessionID, Node: c.opts.Name, Submission: nuid.Next(), Submitted: time.Now().UTC()}
	return c.reserve(ctx, rec, taken, waiting)
}

// reserve creates rec as the record of the first free phrase key of its
// session id that taken, if not nil, does not report taken, and returns
// the key.
func (c *Conn) reserve(ctx context.Context, rec Record, taken func(string) bool, waiting func(string)) (string, error) {
	value, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("encode the record of session %s: %w", rec.SessionID, err)
	}
	for n := 1; n <= maxKeySuffix; n++ {
		key := rec.SessionID
		if n > 1 {
			key += "-" + strconv.Itoa(n)
		}
		if taken != nil && taken(key) {
			continue
		}
		other := false
		err := c.retry(ctx, c.opts.OpTimeout, waiting, func(ctx context.Context) error {
			h, err := c.handles(ctx)
			if err != nil {
				return err
			}
			_, err = h.kv.Create(ctx, key, value)
			if errors.Is(err, jetstream.ErrKeyExists) {
				// Ours if an earlier try created it and its answer was lost.
				have, _, gerr := c.Record(ctx, key)
				if gerr != nil {
					return gerr
				}
				other = have.Submission != rec.Submission
				return nil
			}
			return err
		})
		if err != nil {
			return "", fmt.Errorf("reserve a phrase key for session %s in %s: %w", rec.SessionID, StateBucket, limitHint(err))
		}
		if !other {
			return key, nil
		}
	}
	return "", fmt.Errorf("session %s has %d phrases in %s already: no phrase key is free (use new session ids, or a shorter --nats-retention)", rec.SessionID, maxKeySuffix, StateBucket)
}

// putFile stores the file at path as the object name.
func (c *Conn) putFile(ctx context.Context, name, path string) (*jetstream.ObjectInfo, error) {
	h, err := c.handles(ctx)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &fileError{err}
	}
	defer f.Close()
	return h.files.Put(ctx, jetstream.ObjectMeta{Name: name}, f)
}

// fileError is a local file that cannot be read or written: retrying
// does not help.
type fileError struct{ err error }

func (e *fileError) Error() string { return e.err.Error() }
func (e *fileError) Unwrap() error { return e.err }

// limitHint adds what to check to an error JetStream gave because a
// bucket is full.
func limitHint(err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.Code < 500 || apiErr.ErrorCode == errCodeStoreFailed) {
		return fmt.Errorf("%w (a bucket may be full: check --nats-max-bytes and --nats-max-state-bytes, or free space on the NATS servers)", err)
	}
	return err
}

// Wait implements jobs.Queue. It relays the job's progress subject, and
// reads the record at every done notification and every PollInterval, so
// that a lost notification or a JetStream restart costs a poll at most.
func (c *Conn) Wait(ctx context.Context, key, dir string, progress jobs.ProgressFunc) (jobs.Outcome, error) {
	msgs := make(chan *nats.Msg, 64)
	sub, err := c.nc.ChanSubscribe(jobSubjects(key), msgs)
	if err != nil {
		return jobs.Outcome{}, fmt.Errorf("subscribe to the progress of phrase %s: %w", key, err)
	}
	defer sub.Unsubscribe()
	t := time.NewTicker(c.opts.PollInterval)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, c.opts.OpTimeout)
		rec, _, err := c.Record(rctx, key)
		cancel()
		switch {
		case err != nil && errors.Is(err, jetstream.ErrKeyNotFound):
			return jobs.Outcome{}, fmt.Errorf("phrase %s has no record in %s: it expired (--nats-retention) or was removed", key, StateBucket)
		case err != nil:
			c.log.Debug("cannot read a job's record; trying again", "phrase", key, "err", err)
		case rec.State == StateDone:
			return c.collect(ctx, key, rec, dir)
		case rec.State == StateFailed:
			return jobs.Outcome{}, &jobs.FailedError{Key: key, Attempts: rec.Attempts, Reason: rec.Reason}
		}
		if err := c.relay(ctx, key, msgs, t.C, progress); err != nil {
			return jobs.Outcome{}, err
		}
	}
}

// relay passes the progress messages of key on until the record is to be
// read again: a done notification or a tick. It returns an error once ctx
// ends.
func (c *Conn) relay(ctx context.Context, key string, msgs <-chan *nats.Msg, tick <-chan time.Time, progress jobs.ProgressFunc) error {
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting for the analysis of phrase %s: %w", key, context.Cause(ctx))
		case <-tick:
			return nil
		case m := <-msgs:
			if m.Subject != progressSubject(key) {
				return nil // done: read the record
			}
			var p progressMsg
			if json.Unmarshal(m.Data, &p) == nil && progress != nil {
				progress(p.Stage, p.Progress, p.Message)
			}
		}
	}
}

// collect puts the artifacts of a done job in dir (result.json aside: the
// serve node writes its own) and removes the job's inputs.
func (c *Conn) collect(ctx context.Context, key string, rec Record, dir string) (jobs.Outcome, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return jobs.Outcome{}, fmt.Errorf("create the artifact directory %s: %w", dir, err)
	}
	var files []string
	for _, name := range rec.Files {
		if name == "result.json" {
			continue
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if !filepath.IsLocal(filepath.FromSlash(name)) {
			return jobs.Outcome{}, fmt.Errorf("phrase %s: artifact name %q leaves the artifact directory", key, name)
		}
		err := c.retry(ctx, c.opts.FileTimeout, nil, func(ctx context.Context) error {
			h, err := c.handles(ctx)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return &fileError{err}
			}
			return h.files.GetFile(ctx, rec.Prefix+name, dst)
		})
		if err != nil {
			return jobs.Outcome{}, fmt.Errorf("fetch the artifact %s of phrase %s: %w", name, key, err)
		}
		files = append(files, name)
	}
	c.removeInputs(ctx, key, rec.Inputs)
	return jobs.Outcome{Result: rec.Result, Files: files, Worker: rec.Worker}, nil
}

// removeInputs deletes the inputs of a job that has ended. The bucket's
// retention removes what a failure here leaves.
func (c *Conn) removeInputs(ctx context.Context, key string, inputs []string) {
	for _, name := range inputs {
		rctx, cancel := context.WithTimeout(ctx, c.opts.OpTimeout)
		h, err := c.handles(rctx)
		if err == nil {
			err = h.files.Delete(rctx, key+"/in/"+name)
		}
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			c.log.Debug("cannot remove a job's input; the bucket's retention will", "phrase", key, "input", name, "err", err)
		}
	}
}

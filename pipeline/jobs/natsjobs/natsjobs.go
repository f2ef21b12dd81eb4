// Package natsjobs backs jobs.Queue and jobs.Source with NATS JetStream. It
// is the only package of referee that speaks NATS.
//
// What lives in JetStream:
//   - the stream REFEREE_JOBS (subject referee.jobs, work-queue retention):
//     one message per job, deduplicated by phrase key, taken by the durable
//     pull consumer "workers" that every worker shares;
//   - the stream REFEREE_DEAD (subjects referee.dead.<key>): the jobs whose
//     tries ran out, with the reason, kept for Retention;
//   - the key-value bucket referee-phrases: one record per phrase key, its
//     state (reserved, queued, running, done, failed) and, once done, its
//     result; what the serve node holding the phrase lists of it, and its
//     review (the catalogue: jobs.Catalog);
//   - the key-value bucket referee-live: the sessions each serve node is
//     streaming, which have no phrase key yet, set again by their node
//     every few seconds and listed for a ttl it gives (jobs.Catalog.SetLive);
//   - the object store referee-files: a job's inputs (<key>/in/<name>)
//     until its serve node has the result, and its artifacts
//     (<key>/out/<try>/<name>) for Retention.
//
// Progress travels on plain NATS subjects (referee.job.<key>.progress,
// and referee.job.<key>.done when the record changes); losing one costs a
// progress bar step, never a result, which the serve node also polls for.
package natsjobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/referee-project/referee/pipeline/jobs"
)

// Names of what the package keeps in JetStream.
const (
	JobsStream      = "REFEREE_JOBS"
	JobsSubject     = "referee.jobs"
	DeadStream      = "REFEREE_DEAD"
	DeadSubjectBase = "referee.dead."
	Consumer        = "workers"
	StateBucket     = "referee-phrases"
	FilesBucket     = "referee-files"
)

// Defaults of the Options fields left zero.
const (
	DefaultMaxJobs       = 1000
	DefaultMaxInFlight   = 64
	DefaultMaxBytes      = 10 << 30
	DefaultMaxStateBytes = 256 << 20
	DefaultRetention     = 7 * 24 * time.Hour
	DefaultAckWait       = 30 * time.Second
	DefaultMaxAttempts   = 3
	DefaultReconnectWait = time.Second
	DefaultOpTimeout     = 10 * time.Second
	DefaultFileTimeout   = 2 * time.Minute
	DefaultPollInterval  = time.Second
)

// Options configure a connection to the cluster. The zero value of every
// field but URL means its default.
type Options struct {
	// URL lists the NATS servers, comma-separated (nats://host:4222,...).
	URL string
	// Name names this node in the records and in the NATS server's
	// connection list. Default the host name.
	Name string
	// CredsFile is a NATS credentials file (JWT and NKey seed).
	CredsFile string
	// TLSCA, TLSCert and TLSKey are PEM files: the CA that signed the NATS
	// servers' certificates, and this node's client certificate and key.
	TLSCA, TLSCert, TLSKey string
	// MaxJobs bounds the jobs queued or being analysed in the whole
	// cluster; a submission beyond it waits. Default 1000.
	MaxJobs int
	// MaxInFlight bounds the jobs being analysed at once in the whole
	// cluster, whatever the number of workers. Default 64.
	MaxInFlight int
	// MaxBytes bounds the object store (videos, signals, artifacts); a
	// put beyond it fails the phrase with a clear error. Default 10 GiB.
	MaxBytes int64
	// MaxStateBytes bounds the key-value bucket of the phrases' records
	// and results. Default 256 MiB.
	MaxStateBytes int64
	// Retention is how long artifacts, records and dead letters are kept.
	// Default 7 days.
	Retention time.Duration
	// AckWait is how long a job may go without news from its worker
	// before another worker is given it; a live worker says it is alive
	// every third of it. Default 30 s.
	AckWait time.Duration
	// MaxAttempts is the number of tries a job gets before it goes to the
	// dead letters and its phrase fails. Default 3.
	MaxAttempts int
	// Replicas is the number of copies of each stream and bucket: 1, or 3
	// on a 3-node cluster so that losing a server loses nothing.
	// Default 1.
	Replicas int
	// ReconnectWait is the pause between two tries to reach NATS again.
	// Default 1 s.
	ReconnectWait time.Duration
	// OpTimeout bounds every request to JetStream but file transfers.
	// Default 10 s.
	OpTimeout time.Duration
	// FileTimeout bounds the transfer of one file. Default 2 min.
	FileTimeout time.Duration
	// PollInterval is how often a serve node reads a job's record while
	// it waits, besides the notifications. Default 1 s.
	PollInterval time.Duration
	// Logger receives the log. Default: discarded.
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.URL == "" {
		return o, errors.New("no NATS URL given")
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.MaxJobs, DefaultMaxJobs)
	def(&o.MaxInFlight, DefaultMaxInFlight)
	def(&o.MaxAttempts, DefaultMaxAttempts)
	def(&o.Replicas, 1)
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defDur(&o.Retention, DefaultRetention)
	defDur(&o.AckWait, DefaultAckWait)
	defDur(&o.ReconnectWait, DefaultReconnectWait)
	defDur(&o.OpTimeout, DefaultOpTimeout)
	defDur(&o.FileTimeout, DefaultFileTimeout)
	defDur(&o.PollInterval, DefaultPollInterval)
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxStateBytes == 0 {
		o.MaxStateBytes = DefaultMaxStateBytes
	}
	var errs []error
	if o.MaxJobs < 0 || o.MaxInFlight < 0 || o.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("max jobs %d, max jobs in flight %d, max attempts %d: want 1 or more", o.MaxJobs, o.MaxInFlight, o.MaxAttempts))
	}
	if o.Replicas < 1 || o.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas %d: want 1 to 5", o.Replicas))
	}
	if o.MaxBytes < 0 || o.MaxStateBytes < 0 {
		errs = append(errs, fmt.Errorf("max bytes %d, max state bytes %d: want 1 or more", o.MaxBytes, o.MaxStateBytes))
	}
	if o.AckWait < 0 || o.Retention < 0 || o.ReconnectWait < 0 || o.OpTimeout < 0 || o.FileTimeout < 0 || o.PollInterval < 0 {
		errs = append(errs, errors.New("ack wait, retention and the timeouts must be positive durations"))
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		errs = append(errs, errors.New("NATS TLS client certificate and key: give both or neither"))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, errors.Join(errs...)
}

// Conn is a node's connection to the cluster: a serve node's jobs.Queue
// and a worker's jobs.Source. Open it with Open, stop it with Close.
type Conn struct {
	opts Options
	log  *slog.Logger
	nc   *nats.Conn
	js   jetstream.JetStream

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	h        *handles // nil until the streams and buckets are set up
	notReady error    // why jobs cannot be submitted; nil when they can

	liveMu   sync.Mutex
	liveKeys map[string]bool // the keys of LiveBucket SetLive has set
}

// handles are the streams and buckets, once set up.
type handles struct {
	kv    jetstream.KeyValue
	live  jetstream.KeyValue
	files jetstream.ObjectStore
	cons  jetstream.Consumer
}

// Open connects to NATS and sets up (or binds to) the streams, the
// consumer and the buckets. NATS need not be reachable: Open returns after
// one try (bounded by OpTimeout), and the connection keeps trying; Ready
// says how it goes. Bad
// options, or credential and TLS files that cannot be read, are errors.
func Open(opts Options) (*Conn, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("NATS settings: %w", err)
	}
	c := &Conn{opts: opts, log: opts.Logger.With("nats", opts.URL), notReady: fmt.Errorf("connecting to NATS at %s", opts.URL)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	nopts := []nats.Option{
		nats.Name(opts.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(opts.ReconnectWait),
		nats.RetryOnFailedConnect(true),
		nats.Timeout(opts.OpTimeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			c.setNotReady(fmt.Errorf("disconnected from NATS at %s: %v", opts.URL, err))
			c.log.Warn("disconnected from NATS; new sessions are refused until it is back", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted())
		}),
	}
	if opts.CredsFile != "" {
		nopts = append(nopts, nats.UserCredentials(opts.CredsFile))
	}
	if opts.TLSCA != "" {
		nopts = append(nopts, nats.RootCAs(opts.TLSCA))
	}
	if opts.TLSCert != "" {
		nopts = append(nopts, nats.ClientCert(opts.TLSCert, opts.TLSKey))
	}
	nc, err := nats.Connect(opts.URL, nopts...)
	if err != nil {
		c.cancel()
		return nil, fmt.Errorf("connect to NATS at %s: %w", opts.URL, err)
	}
	c.nc = nc
	c.js, err = jetstream.New(nc)
	if err != nil {
		nc.Close()
		c.cancel()
		return nil, fmt.Errorf("JetStream on %s: %w", opts.URL, err)
	}
	// A first check now, so that a node that reaches JetStream is ready
	// when Open returns.
	c.setNotReady(c.check())
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.watch()
	}()
	return c, nil
}

// Close stops the connection's goroutines and closes it. Jobs submitted
// go on in the cluster.
func (c *Conn) Close() {
	c.cancel()
	c.wg.Wait()
	c.nc.Close()
}

// Name is this node's name.
func (c *Conn) Name() string { return c.opts.Name }

// Ready implements jobs.Queue.
func (c *Conn) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.notReady
}

func (c *Conn) setNotReady(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notReady = err
}

// watch sets up the streams and buckets once NATS answers, then checks
// every second that JetStream still does, keeping Ready's answer.
func (c *Conn) watch() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		err := c.check()
		c.mu.Lock()
		was := c.notReady
		c.notReady = err
		c.mu.Unlock()
		switch {
		case err == nil && was != nil:
			c.log.Info("NATS JetStream ready", "server", c.nc.ConnectedUrlRedacted())
		case err != nil && was == nil:
			c.log.Warn("NATS JetStream unreachable; new sessions are refused until it is back", "err", err)
		}
	}
}

// check returns why the cluster cannot take jobs now, or nil.
func (c *Conn) check() error {
	if !c.nc.IsConnected() {
		return fmt.Errorf("NATS at %s is unreachable (status %s): check that the NATS servers run and --nats", c.opts.URL, c.nc.Status())
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.OpTimeout)
	defer cancel()
	if _, err := c.handles(ctx); err != nil {
		return err
	}
	if _, err := c.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("JetStream on %s does not answer: %w (check that the NATS servers run with JetStream enabled)", c.opts.URL, err)
	}
	return nil
}

// handles returns the streams and buckets, setting them up first if that
// has not been done yet.
func (c *Conn) handles(ctx context.Context) (*handles, error) {
	c.mu.Lock()
	h := c.h
	c.mu.Unlock()
	if h != nil {
		return h, nil
	}
	h, err := c.setup(ctx)
	if err != nil {
		return nil, fmt.Errorf("set up the JetStream streams and buckets on %s: %w", c.opts.URL, err)
	}
	c.mu.Lock()
	c.h = h
	c.mu.Unlock()
	return h, nil
}

// setup creates the streams, the consumer and the buckets, or binds to
// them when another node did: the first node to start sets their limits.
func (c *Conn) setup(ctx context.Context) (*handles, error) {
	o := c.opts
	jobs := jetstream.StreamConfig{
		Name:       JobsStream,
		Subjects:   []string{JobsSubject},
		Retention:  jetstream.WorkQueuePolicy,
		MaxMsgs:    int64(o.MaxJobs),
		Discard:    jetstream.DiscardNew,
		Duplicates: 2 * time.Minute,
		Replicas:   o.Replicas,
		Storage:    jetstream.FileStorage,
	}
	stream, err := c.js.CreateStream(ctx, jobs)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		stream, err = c.js.Stream(ctx, JobsStream)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", JobsStream, err)
	}
	dead := jetstream.StreamConfig{
		Name:     DeadStream,
		Subjects: []string{DeadSubjectBase + ">"},
		MaxAge:   o.Retention,
		Replicas: o.Replicas,
		Storage:  jetstream.FileStorage,
	}
	if _, err := c.js.CreateStream(ctx, dead); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil, fmt.Errorf("stream %s: %w", DeadStream, err)
	}
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       Consumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    -1, // the worker counts the tries, to dead-letter with the reason
		MaxAckPending: o.MaxInFlight,
		Replicas:      o.Replicas,
	})
	if errors.Is(err, jetstream.ErrConsumerExists) {
		cons, err = stream.Consumer(ctx, Consumer)
	}
	if err != nil {
		return nil, fmt.Errorf("consumer %s of %s: %w", Consumer, JobsStream, err)
	}
	kv, err := c.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   StateBucket,
		MaxBytes: o.MaxStateBytes,
		TTL:      o.Retention,
		Replicas: o.Replicas,
		Storage:  jetstream.FileStorage,
	})
	if err != nil {
		if kv, err = c.js.KeyValue(ctx, StateBucket); err != nil {
			return nil, fmt.Errorf("key-value bucket %s: %w", StateBucket, err)
		}
	}
	live, err := c.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   LiveBucket,
		MaxBytes: liveBucketBytes,
		TTL:      liveBucketTTL,
		Replicas: o.Replicas,
		Storage:  jetstream.FileStorage,
	})
	if err != nil {
		if live, err = c.js.KeyValue(ctx, LiveBucket); err != nil {
			return nil, fmt.Errorf("key-value bucket %s: %w", LiveBucket, err)
		}
	}
	files, err := c.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:   FilesBucket,
		MaxBytes: o.MaxBytes,
		TTL:      o.Retention,
		Replicas: o.Replicas,
		Storage:  jetstream.FileStorage,
	})
	if err != nil {
		if files, err = c.js.ObjectStore(ctx, FilesBucket); err != nil {
			return nil, fmt.Errorf("object store %s: %w", FilesBucket, err)
		}
	}
	return &handles{kv: kv, live: live, files: files, cons: cons}, nil
}

// transient reports whether err may go away by itself: NATS or JetStream
// unreachable, or a request that timed out. Errors JetStream gives as
// answers (limits reached, bad requests), missing keys and objects, and
// local files that cannot be read or written are not.
func transient(err error) bool {
	var fe *fileError
	if errors.As(err, &fe) || errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrObjectNotFound) {
		return false
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return (apiErr.Code == 503 || apiErr.Code == 408) && apiErr.ErrorCode != errCodeStoreFailed
	}
	return true
}

// errCodeStoreFailed is JetStream's answer when a stream refuses a message
// for its limits (maximum bytes or messages exceeded), given with status
// 503 although waiting does not help unless something is removed.
const errCodeStoreFailed = 10077

// retry runs f with a request timeout until it succeeds, fails with an
// error that is not transient, or ctx ends; waiting hears why it waits,
// once for every new reason.
func (c *Conn) retry(ctx context.Context, timeout time.Duration, waiting func(string), f func(ctx context.Context) error) error {
	pause := 50 * time.Millisecond
	last := ""
	for {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		err := f(rctx)
		cancel()
		if err == nil || !transient(err) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (gave up waiting for NATS JetStream: %w)", err, context.Cause(ctx))
		}
		if waiting != nil && err.Error() != last {
			last = err.Error()
			waiting(fmt.Sprintf("NATS JetStream unreachable, waiting for it: %v", err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		pause = min(2*pause, 2*time.Second)
	}
}

// States of a Record.
const (
	// StateReserved is a phrase key a serve node reserved (Reserve) for a
	// phrase it has not submitted yet.
	StateReserved = "reserved"
	// StateHeld is a phrase key a serve node holds a directory of without
	// a job (Hold): a phrase from before it joined the cluster, an
	// upload, or one whose record passed the retention.
	StateHeld    = "held"
	StateQueued  = "queued"
	StateRunning = "running"
	StateDone    = "done"
	StateFailed  = "failed"
)

// Record is what the key-value bucket holds for a phrase key.
type Record struct {
	State     string `json:"state"`
	SessionID string `json:"session_id"`
	// Node is the serve node that submitted the job; Submission tells its
	// submissions apart.
	Node       string    `json:"node"`
	Submission string    `json:"submission"`
	Submitted  time.Time `json:"submitted"`
	// Inputs are the names of the job's inputs, under <key>/in/.
	Inputs []string `json:"inputs,omitempty"`
	// Attempts is the number of tries so far; Worker the last worker.
	Attempts int    `json:"attempts,omitempty"`
	Worker   string `json:"worker,omitempty"`
	// Result is result.json as the worker wrote it, once done.
	Result json.RawMessage `json:"result,omitempty"`
	// Prefix and Files are where the artifacts are in the object store:
	// Prefix + name for every name of Files; Objects adds their sizes and
	// digests.
	Prefix  string          `json:"prefix,omitempty"`
	Files   []string        `json:"files,omitempty"`
	Objects []jobs.Artifact `json:"objects,omitempty"`
	// Reason is why the job failed: for good when State is failed, on
	// the last try otherwise.
	Reason   string    `json:"reason,omitempty"`
	Finished time.Time `json:"finished,omitzero"`
	// Summary and NodeFiles are what the node holding the phrase's
	// directory published of it (Publish); Review is its review
	// (SetReview). All three are the server's, kept verbatim.
	Summary   json.RawMessage   `json:"summary,omitempty"`
	NodeFiles map[string][]byte `json:"node_files,omitempty"`
	Review    []byte            `json:"review,omitempty"`
}

// Record returns the record of a phrase key, with its revision.
func (c *Conn) Record(ctx context.Context, key string) (Record, uint64, error) {
	var rec Record
	h, err := c.handles(ctx)
	if err != nil {
		return rec, 0, err
	}
	e, err := h.kv.Get(ctx, key)
	if err != nil {
		return rec, 0, fmt.Errorf("read the record of phrase %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return rec, 0, fmt.Errorf("record of phrase %s in %s is not JSON: %w", key, StateBucket, err)
	}
	return rec, e.Revision(), nil
}

// update changes the record of key with change, retried while another
// node changes it at the same time; change returns false to leave it.
// It returns the record as it stands after.
func (c *Conn) update(ctx context.Context, key string, change func(*Record) bool) (Record, error) {
	var out Record
	err := c.retry(ctx, c.opts.OpTimeout, nil, func(ctx context.Context) error {
		for {
			rec, rev, err := c.Record(ctx, key)
			if err != nil {
				return err
			}
			if !change(&rec) {
				out = rec
				return nil
			}
			value, err := json.Marshal(rec)
			if err != nil {
				return fmt.Errorf("encode the record of phrase %s: %w", key, err)
			}
			h, err := c.handles(ctx)
			if err != nil {
				return err
			}
			_, err = h.kv.Update(ctx, key, value, rev)
			if err == nil {
				out = rec
				return nil
			}
			if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
				return fmt.Errorf("update the record of phrase %s: %w", key, err)
			}
		}
	})
	return out, err
}

func progressSubject(key string) string { return "referee.job." + key + ".progress" }
func doneSubject(key string) string     { return "referee.job." + key + ".done" }
func jobSubjects(key string) string     { return "referee.job." + key + ".*" }

// progressMsg is a job's progress on its progress subject.
type progressMsg struct {
	Stage    string  `json:"stage"`
	Progress float64 `json:"progress"`
	Message  string  `json:"message"`
}

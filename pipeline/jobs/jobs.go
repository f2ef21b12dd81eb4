// Package jobs is the seam between the node that takes a phrase and the
// place that analyses it, when they are not one process: a serve node
// submits a job (Queue) and a worker takes it (Source). The server and the
// worker depend on these interfaces only; package natsjobs backs them with
// NATS JetStream (a work-queue stream, a key-value bucket and an object
// store), and is the only package that speaks NATS.
//
// A job is known by its phrase key: the session id for the first phrase
// of that id, then "<id>-2", "<id>-3"... Capture boxes reuse one session id
// for every phrase, so the key, not the id, is what makes a job unique: a
// job delivered twice never produces two results. The key is reserved in
// the cluster's catalogue of phrases (Catalog), which also holds what the
// review pages of every node list, serve and record.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/referee-project/referee/protocol"
)

// ValidKey reports whether key can be a phrase key: a session id
// (protocol.ValidSessionID), alone or followed by "-<n>", n a decimal
// number of 64 bits at most, as later phrases of the id are numbered. A
// key names a phrase directory, a worker's scratch directory and
// objects, so nothing else (a path above all) is taken.
func ValidKey(key string) bool {
	if protocol.ValidSessionID(key) {
		return true
	}
	i := strings.LastIndexByte(key, '-')
	if i < 0 {
		return false
	}
	_, err := strconv.ParseUint(key[i+1:], 10, 64)
	return err == nil && protocol.ValidSessionID(key[:i])
}

// Names of the inputs a job carries besides its video.
const (
	// SignalFile is the phrase log, as received.
	SignalFile = "signal.txt"
)

// Spec describes an analysis job as it travels from the serve node to the
// worker.
type Spec struct {
	// Key is the phrase key, unique in the cluster; Queue.Submit sets it.
	Key string `json:"key"`
	// SessionID is the session the phrase was streamed in.
	SessionID string `json:"session_id"`
	// Node names the serve node that submitted the job.
	Node string `json:"node"`
	// Analyzer is the analyzer the serve node chose (pipeline.Job.Analyzer);
	// the worker's own settings say how to run it on its machine.
	Analyzer string `json:"analyzer"`
	// Video is the file name of the video among the inputs.
	Video string `json:"video"`
	// Extra is merged into the verdict's Extra, e.g. the session's
	// "validation", so that the result reads as if analysed in place.
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
	// StreamingStats is the result's streaming_stats, verbatim.
	StreamingStats json.RawMessage `json:"streaming_stats,omitempty"`
	// Submitted is when the serve node submitted the job.
	Submitted time.Time `json:"submitted"`
}

// ProgressFunc receives a job's progress as pipeline.ProgressFunc does.
type ProgressFunc func(stage string, progress float64, message string)

// Outcome is a job's end as the serve node sees it.
type Outcome struct {
	// Result is the worker's result.json, with the worker's paths.
	Result json.RawMessage
	// Files are the names of the artifacts Wait put in the directory it
	// was given, result.json excluded.
	Files []string
	// Worker names the worker that analysed the phrase.
	Worker string
}

// FailedError is a job that failed for good: its tries ran out, and it
// went to the dead letters with Reason.
type FailedError struct {
	Key      string
	Attempts int
	Reason   string
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("the analysis of phrase %s failed on every one of its %d tries, and went to the dead letters: %s", e.Key, e.Attempts, e.Reason)
}

// Queue is the serve node's side: it submits jobs and waits for their end,
// and keeps the cluster's catalogue of phrases.
type Queue interface {
	Catalog
	// Ready returns nil while jobs can be submitted, else an error that
	// says why not and what to check. It does not block.
	Ready() error
	// Submit stores the inputs (file names to local paths; jobs.SignalFile
	// and spec.Video among them) and queues the job under spec.Key, which
	// Catalog.Reserve reserved; a key submitted before (a retry of a
	// failed phrase) starts over. With spec.Key empty it reserves the
	// first free key of spec.SessionID itself. While the queue is
	// unreachable it waits, calling waiting with why, until ctx ends. It
	// returns the key.
	Submit(ctx context.Context, spec Spec, inputs map[string]string, waiting func(reason string)) (string, error)
	// Wait relays the job's progress until it ends, then puts its
	// artifacts in dir and returns the outcome; a job that failed for good
	// is a *FailedError. Ending ctx stops the waiting, not the job.
	Wait(ctx context.Context, key, dir string, progress ProgressFunc) (Outcome, error)
}

// Source is the worker's side: it hands out jobs one at a time.
type Source interface {
	// Next blocks until a job is there for this worker, or ctx ends. Jobs
	// already done, and jobs whose tries have run out, never come out.
	Next(ctx context.Context) (Delivery, error)
}

// Delivery is one try of a job by one worker. While it is held, the job
// is not handed to another worker; once the worker is gone (no Complete,
// Fail nor Release before the queue's ack wait) it is handed out again.
// Exactly one of Complete, Fail and Release ends it.
type Delivery interface {
	// Spec is the job.
	Spec() Spec
	// Attempt is this try's number, from 1.
	Attempt() int
	// Fetch puts the job's inputs in dir and returns their paths by name.
	Fetch(ctx context.Context, dir string) (map[string]string, error)
	// Progress tells the serve node how the analysis goes.
	Progress(stage string, progress float64, message string)
	// Complete stores the artifacts of dir and the result, unless another
	// try has already; either way the job is done.
	Complete(ctx context.Context, result []byte, dir string) error
	// Fail gives the job back to be tried again, or, on its last try,
	// sends it to the dead letters and fails it for good with err.
	Fail(ctx context.Context, err error) error
	// Release gives the job back at once, untried: the worker stops.
	Release()
}

// ErrUnknown is a phrase key the catalogue does not hold.
var ErrUnknown = errors.New("no such phrase in the cluster")

// Catalog is the cluster's list of phrases: every serve node publishes
// the phrases it holds there, so that any node lists them all, serves
// their files and takes their reviews. The catalogue stores what the
// nodes give it verbatim: it reads none of it.
type Catalog interface {
	// Name is this node's name, as entries give it.
	Name() string
	// Reserve reserves for this node the first free phrase key of
	// sessionID ("<id>", then "<id>-2", ...) that taken (this node's own
	// directories) does not report taken either; no other node gets it.
	// While the cluster is unreachable it waits, calling waiting with
	// why, until ctx ends.
	Reserve(ctx context.Context, sessionID string, taken func(key string) bool, waiting func(reason string)) (string, error)
	// Publish stores what this node lists of the phrase key (summary)
	// and the files it wrote itself for it (by name, verbatim), replacing
	// those published before.
	Publish(ctx context.Context, key string, summary json.RawMessage, files map[string][]byte) error
	// Entries returns every phrase published, by key. It fails at once
	// when the cluster is known to be unreachable.
	Entries(ctx context.Context) (map[string]Entry, error)
	// Entry returns the phrase key, or ErrUnknown.
	Entry(ctx context.Context, key string) (Entry, error)
	// SetReview replaces the review of the phrase key, published by the
	// node named node, by what change makes of the current one (nil when
	// there is none), as a compare-and-set: when another node changes it
	// meanwhile, or a try's answer is lost, change is called again with
	// the one stored then, so it must give that one back when it already
	// holds the change. It returns the review stored, or ErrUnknown when
	// the catalogue has no phrase key published by node.
	SetReview(ctx context.Context, key, node string, change func(current []byte) ([]byte, error)) ([]byte, error)
	// Hold records the keys of phrase directories this node holds that
	// the catalogue has no record of (its phrases from before it joined
	// the cluster, its uploads, those whose record passed the
	// retention), so that Reserve on no node gives them; no node lists
	// them. A key another record holds is left to it. It returns the
	// keys it recorded.
	Hold(ctx context.Context, keys []string) ([]string, error)
	// Forget removes the phrase key, whose phrase this node dropped
	// before its end (a shutdown cancelled its processing): no node lists
	// it, its job if queued is dropped, and the key is free again.
	Forget(ctx context.Context, key string) error
	// FetchArtifact writes the artifact name of the phrase key, as its
	// worker stored it, to the file dst.
	FetchArtifact(ctx context.Context, key, name, dst string) error
	// SetLive replaces what this node tells the others of the sessions it
	// is streaming now, which have no phrase key yet: live holds what it
	// lists of each (verbatim) by session id. Each is listed for ttl
	// after it is set (at most MaxLiveTTL): a node sets its sessions again
	// well within ttl, so that those of a node that stopped drop out of
	// every list once ttl has passed.
	SetLive(ctx context.Context, live map[string]json.RawMessage, ttl time.Duration) error
	// Live returns the sessions every node (this one too) streams now, as
	// they set them within their ttl. It fails at once when the cluster
	// is known to be unreachable.
	Live(ctx context.Context) ([]Live, error)
}

// MaxLiveTTL bounds the ttl of Catalog.SetLive.
const MaxLiveTTL = 5 * time.Minute

// Live is a session a node is streaming, as Catalog.Live gives it.
type Live struct {
	// Node is the serve node the session streams to.
	Node      string
	SessionID string
	// Summary is what Node lists of the session, as it set it.
	Summary json.RawMessage
}

// Entry is a phrase as the catalogue holds it.
type Entry struct {
	Key string
	// Node is the serve node that holds the phrase's directory.
	Node string
	// Summary is what Node lists of the phrase, as it published it.
	Summary json.RawMessage
	// Files are the files Node wrote itself, by name, verbatim.
	Files map[string][]byte
	// Artifacts are the files the worker stored.
	Artifacts []Artifact
	// Review is the phrase's review, verbatim; nil when there is none.
	Review []byte
	// Analysed is the worker's result.json once the job is done, and
	// Failed why it failed for good: what the job says, whether or not
	// Node has published the phrase's end since (it may have stopped).
	Analysed json.RawMessage
	Failed   string
	// Submitted says whether Node queued a job for the phrase: false
	// while the key is only reserved.
	Submitted bool
}

// Artifact is one file a worker stored for a phrase.
type Artifact struct {
	// Name is its path in the artifact directory, with slashes.
	Name string `json:"name"`
	Size int64  `json:"size"`
	// Digest identifies its content ("SHA-256=...").
	Digest string `json:"digest"`
}

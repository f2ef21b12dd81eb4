package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/jobs"
	"github.com/referee-project/referee/protocol"
)

// Statuses of a phrase in the review API.
const (
	StatusStreaming  = "streaming"
	StatusProcessing = "processing"
	StatusDone       = "done"
	StatusFailed     = "failed"
)

// PhraseSummary is one phrase of GET /api/sessions.
type PhraseSummary struct {
	// SessionID is the phrase's key: its directory's name.
	SessionID string `json:"session_id"`
	// StartedAt is when the session started (RFC 3339), "" if unknown.
	StartedAt  string   `json:"started_at"`
	Frames     int      `json:"frames"`
	Status     string   `json:"status"`
	Winner     string   `json:"winner"`
	Confidence float64  `json:"confidence"`
	Reason     string   `json:"reason"`
	Failure    *Failure `json:"failure,omitempty"`
	Review     *Review  `json:"review"`
	// Node is the serve node that holds the phrase's directory, in a
	// cluster (serve --nats); absent otherwise.
	Node string `json:"node,omitempty"`
}

// catalog reads the phrase directories of the output directory for the
// review API. What it reads of a directory is kept and read again only
// when one of its files changes (size or modification time), so that the
// list page's polling costs a directory listing and a few stats.
type catalog struct {
	dir string

	mu    sync.Mutex
	cache map[string]cachedPhrase
}

// cachedPhrase is a phrase's summary and the state of the files it was
// read from.
type cachedPhrase struct {
	stamp   string
	summary PhraseSummary
}

func newCatalog(dir string) *catalog {
	return &catalog{dir: dir, cache: make(map[string]cachedPhrase)}
}

// stamp describes the state of the files a summary is read from.
func stamp(dir string) string {
	var b strings.Builder
	for _, name := range []string{pipeline.ResultFileName, FailureFileName, ReviewFileName} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil {
			fmt.Fprintf(&b, "%s:%d:%d;", name, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return b.String()
}

// summaries returns the phrases on disk by key. A directory that is
// neither done nor failed is a phrase being processed (or an upload being
// received) when busy says so, and otherwise one whose processing never
// finished: a server stopped during it.
func (c *catalog) summaries(busy func(key string) bool) (map[string]PhraseSummary, error) {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("list the output directory %s: %w", c.dir, err)
	}
	out := make(map[string]PhraseSummary, len(entries))
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		key := e.Name()
		if !e.IsDir() || !jobs.ValidKey(key) {
			continue
		}
		seen[key] = true
		dir := filepath.Join(c.dir, key)
		st := stamp(dir)
		if cached, ok := c.cache[key]; ok && cached.stamp == st && st != "" {
			out[key] = cached.summary
			continue
		}
		sum := readSummary(dir, key)
		if sum.Status == "" {
			sum.Status = StatusFailed
			sum.Failure = &Failure{Stage: "unknown", Reason: "processing did not finish: the server stopped during it"}
			if busy(key) {
				sum.Status, sum.Failure = StatusProcessing, nil
			}
		} else {
			c.cache[key] = cachedPhrase{st, sum}
		}
		out[key] = sum
	}
	for key := range c.cache {
		if !seen[key] {
			delete(c.cache, key)
		}
	}
	return out, nil
}

// readSummary reads what the list shows of the phrase in dir; Status is
// "" for a directory without result.json or failure.json.
func readSummary(dir, key string) PhraseSummary {
	sum := PhraseSummary{SessionID: key}
	if data, err := os.ReadFile(filepath.Join(dir, pipeline.ResultFileName)); err == nil {
		sum.fromResult(data)
	} else if data, err := os.ReadFile(filepath.Join(dir, FailureFileName)); err == nil {
		var f Failure
		if err := json.Unmarshal(data, &f); err != nil {
			f = Failure{Stage: "unknown", Reason: fmt.Sprintf("%s cannot be read: %v", FailureFileName, err)}
		}
		sum.Status, sum.Failure, sum.Reason = StatusFailed, &f, f.Reason
	}
	if sum.StartedAt == "" {
		// A phrase from before started_at was written, or a failed one:
		// the directory was made when its processing began.
		if fi, err := os.Stat(dir); err == nil {
			sum.StartedAt = fi.ModTime().UTC().Format(time.RFC3339Nano)
		}
	}
	if r, err := readReview(dir); err == nil {
		sum.Review = r
	}
	return sum
}

// fromResult fills in what the list shows of a result.json: done with
// its verdict, or failed when it cannot be read.
func (sum *PhraseSummary) fromResult(data []byte) {
	var res struct {
		Winner     string  `json:"winner"`
		Confidence float64 `json:"confidence"`
		Reason     string  `json:"reason"`
		StartedAt  string  `json:"started_at"`
		Video      struct {
			Frames int `json:"frames"`
		} `json:"video"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		sum.Status, sum.Failure = StatusFailed, &Failure{Stage: "result", Reason: fmt.Sprintf("%s cannot be read: %v", pipeline.ResultFileName, err)}
		return
	}
	sum.Status, sum.Winner, sum.Confidence, sum.Reason, sum.Frames = StatusDone, res.Winner, res.Confidence, res.Reason, res.Video.Frames
	if res.StartedAt != "" {
		sum.StartedAt = res.StartedAt
	}
}

// readReview reads dir's review.json; no review is (nil, nil).
func readReview(dir string) (*Review, error) {
	data, err := os.ReadFile(filepath.Join(dir, ReviewFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, ReviewFileName), err)
	}
	var r Review
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("read %s: %w (the file is not a review: move it away)", filepath.Join(dir, ReviewFileName), err)
	}
	return &r, nil
}

// liveSummary is what the review API lists of sess while it streams
// (disconnected and awaiting resume counts) or is being processed, with
// the key its processing claimed ("" until then); ok is false for a
// session whose directory says more (processed, failed).
func (s *Server) liveSummary(sess *session) (sum PhraseSummary, key string, ok bool) {
	if sess.delivered.Load() {
		return sum, "", false
	}
	sess.mu.Lock()
	state, key, failed, created := sess.state, sess.key, sess.failed, sess.created
	sess.mu.Unlock()
	switch {
	case state == stateStreaming, state == stateDisconnected && failed == "":
		sum.Status, key = StatusStreaming, ""
	case state == stateProcessing:
		sum.Status = StatusProcessing
	default:
		return sum, "", false
	}
	sum.StartedAt, sum.Frames, sum.Node = created.UTC().Format(time.RFC3339Nano), sess.spool.Count(), s.nodeName()
	return sum, key, true
}

// streamingPhrase is a session streaming on some node of the cluster (or
// on this server), or whose processing has not claimed its key yet: it
// has no key until then.
type streamingPhrase struct {
	sessionID string
	summary   PhraseSummary
}

// livePhrases returns the sessions being processed here by key, and
// those without a key yet: here, and with a cluster those the other nodes
// set (others, from Catalog.Live), less those whose record, in entries,
// has taken over.
func (s *Server) livePhrases(others []jobs.Live, entries map[string]jobs.Entry) (map[string]PhraseSummary, []streamingPhrase) {
	processing := map[string]PhraseSummary{}
	var streaming []streamingPhrase
	for _, sess := range s.reg.list() {
		sum, key, ok := s.liveSummary(sess)
		switch {
		case !ok:
		case key != "":
			sum.SessionID = key
			processing[key] = sum
		default:
			streaming = append(streaming, streamingPhrase{sess.id, sum})
		}
	}
	if len(others) == 0 {
		return processing, streaming
	}
	// A phrase whose processing began has its record, published at once;
	// its node stops setting it within a beat, meanwhile both may be read.
	recorded := map[string]bool{}
	for _, e := range entries {
		var sum struct {
			StartedAt string `json:"started_at"`
		}
		if json.Unmarshal(e.Summary, &sum) == nil {
			recorded[e.Node+"\x00"+parseTime(sum.StartedAt).Format(time.RFC3339Nano)] = true
		}
	}
	for _, o := range others {
		var sum PhraseSummary
		if o.Node == s.nodeName() || json.Unmarshal(o.Summary, &sum) != nil {
			continue
		}
		if recorded[o.Node+"\x00"+parseTime(sum.StartedAt).Format(time.RFC3339Nano)] {
			continue
		}
		if sum.Status != StatusStreaming && sum.Status != StatusProcessing {
			continue
		}
		sum.Node, sum.Review = o.Node, nil
		streaming = append(streaming, streamingPhrase{o.SessionID, sum})
	}
	return processing, streaming
}

// streamingKeys gives each phrase of streaming the key it would take now:
// the first of its session id that no phrase of the cluster (entries), of
// this node (its directories, processing) nor one streaming before it
// has. Nodes with the same list give the same keys unless one holds a
// directory the cluster lists no phrase of (a held key, see syncCluster):
// the key is a forecast, the record's takes over.
func (s *Server) streamingKeys(streaming []streamingPhrase, processing map[string]PhraseSummary, entries map[string]jobs.Entry) {
	slices.SortFunc(streaming, func(a, b streamingPhrase) int {
		if c := parseTime(a.summary.StartedAt).Compare(parseTime(b.summary.StartedAt)); c != 0 {
			return c
		}
		return strings.Compare(a.summary.Node+"\x00"+a.sessionID, b.summary.Node+"\x00"+b.sessionID)
	})
	given := map[string]bool{}
	taken := func(key string) bool {
		_, recorded := entries[key]
		_, busy := processing[key]
		return recorded || busy || given[key]
	}
	for i := range streaming {
		key := nextFreeKey(s.cfg.OutputDir, streaming[i].sessionID, taken)
		given[key] = true
		streaming[i].summary.SessionID = key
	}
}

// phraseList is every phrase the review API knows.
type phraseList struct {
	// all are the phrases, newest first.
	all []PhraseSummary
	// remote are the cluster's entries of the phrases of all that this
	// node holds no directory of, by key.
	remote map[string]jobs.Entry
	// partial, when not "", says why all holds only this node's phrases:
	// the cluster's list could not be read.
	partial string
	// noStreaming, when not "", says why all lacks the sessions the other
	// nodes are streaming: their list could not be read.
	noStreaming string
}

// incomplete says why the list lacks phrases of the cluster, or "".
func (l phraseList) incomplete() string { return cmp.Or(l.partial, l.noStreaming) }

// listTimeout bounds the reading of the cluster's list, so that a page's
// poll falls back to this node's phrases rather than hang.
const listTimeout = 3 * time.Second

// diskPhrases returns the phrases in this node's directories by key
// (catalog.summaries); one without an end is processing when it is in
// processing (from livePhrases) or an upload being received.
func (s *Server) diskPhrases(processing map[string]PhraseSummary) (map[string]PhraseSummary, error) {
	return s.catalog.summaries(func(key string) bool {
		_, ok := processing[key]
		return ok || s.reg.isUpload(key)
	})
}

// readList calls list with ctx bounded by listTimeout.
func readList[T any](ctx context.Context, list func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	return list(ctx)
}

// phrases returns every phrase: those on disk, the sessions streaming or
// being processed, and with a cluster (Config.Jobs) the phrases the other
// nodes published and the sessions they stream, with the reviews of all
// from the cluster.
func (s *Server) phrases(ctx context.Context) (phraseList, error) {
	var l phraseList
	var entries map[string]jobs.Entry
	var others []jobs.Live
	if q := s.cfg.Jobs; q != nil {
		var err error
		if entries, err = readList(ctx, q.Entries); err != nil {
			l.partial = fmt.Sprintf("only this node's phrases are listed: the cluster's list cannot be read (%v)", err)
			s.log.Debug("cannot read the cluster's list of phrases; listing this node's", "err", err)
		} else if others, err = readList(ctx, q.Live); err != nil {
			l.noStreaming = fmt.Sprintf("the sessions the other nodes are streaming are not listed: the cluster's list of them cannot be read (%v)", err)
			s.log.Debug("cannot read the cluster's list of sessions streaming; listing this node's", "err", err)
		}
	}
	processing, streaming := s.livePhrases(others, entries)
	s.streamingKeys(streaming, processing, entries)
	disk, err := s.diskPhrases(processing)
	if err != nil {
		return l, err
	}
	l.all = make([]PhraseSummary, 0, len(disk)+len(processing)+len(streaming)+len(entries))
	for key, sum := range disk {
		if _, ok := processing[key]; ok {
			continue
		}
		sum.Node = s.nodeName()
		// Only this node's record is this phrase's: another node's with
		// the same key is a different phrase (see syncCluster), which
		// this node does not list over its own.
		if e, ok := entries[key]; ok && e.Node == sum.Node && e.Review != nil {
			if r, newer, _ := clusterReview(sum.Review, e.Review); newer {
				sum.Review = r
			}
		}
		l.all = append(l.all, sum)
	}
	for _, sum := range processing {
		l.all = append(l.all, sum)
	}
	for _, p := range streaming {
		l.all = append(l.all, p.summary)
	}
	for key, e := range entries {
		if _, ok := disk[key]; ok {
			continue
		}
		if _, ok := processing[key]; ok {
			continue
		}
		var sum PhraseSummary
		if err := json.Unmarshal(e.Summary, &sum); err != nil {
			s.log.Warn("a phrase of the cluster's list cannot be read; leaving it out", "phrase", key, "node", e.Node, "err", err)
			continue
		}
		sum.SessionID, sum.Node, sum.Review = key, e.Node, nil
		if sum.Status == StatusProcessing {
			// Its node has not said the phrase ended, but the job did:
			// the node stopped meanwhile, or is about to say so.
			switch {
			case e.Analysed != nil:
				sum.fromResult(e.Analysed)
			case e.Failed != "":
				sum.Status, sum.Reason, sum.Failure = StatusFailed, e.Failed, &Failure{Stage: protocol.StageAnalysis, Reason: e.Failed}
			}
		}
		if e.Review != nil {
			var r Review
			if err := json.Unmarshal(e.Review, &r); err == nil {
				sum.Review = &r
			}
		}
		if l.remote == nil {
			l.remote = map[string]jobs.Entry{}
		}
		l.remote[key] = e
		l.all = append(l.all, sum)
	}
	slices.SortFunc(l.all, func(a, b PhraseSummary) int {
		if c := parseTime(b.StartedAt).Compare(parseTime(a.StartedAt)); c != 0 {
			return c
		}
		return strings.Compare(b.SessionID, a.SessionID)
	})
	return l, nil
}

// parseTime reads an RFC 3339 time; anything else is the zero time, which
// sorts last.
func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// isUpload reports whether id is the id of an upload in progress.
func (r *registry) isUpload(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.uploads[id]
	return ok
}

package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/jobs"
	"github.com/referee-project/referee/protocol"
)

// In a cluster (Config.Jobs), a phrase has one key everywhere: the node
// that processes it reserves the key in the cluster's catalogue first and
// names its directory after it. The node publishes the phrase's summary
// and the files it writes itself (result.json, failure.json) when they
// change; reviews are stored in the catalogue. Any node then lists every
// phrase and answers for one it holds no directory of from the catalogue
// and the workers' artifacts.

// publishTimeout bounds publishing a phrase to the catalogue: a node that
// cannot leaves the other nodes' view as it was, and goes on.
const publishTimeout = 10 * time.Second

// nodeName is the node's name in the cluster, or "" without one.
func (s *Server) nodeName() string {
	if s.cfg.Jobs == nil {
		return ""
	}
	return s.cfg.Jobs.Name()
}

// claim returns the artifact directory of the phrase of s, claiming its
// key (claimArtifactDir). In a cluster the key is reserved in the
// catalogue first, passing over the keys of this node's directories; a
// session submitted before a restart takes the key of its job again.
func (srv *Server) claim(ctx context.Context, s *session, fwd *progressForwarder) (string, error) {
	q := srv.cfg.Jobs
	if q == nil {
		_, dir, err := claimArtifactDir(srv.cfg.OutputDir, s)
		return dir, err
	}
	s.mu.Lock()
	key := s.key
	s.mu.Unlock()
	if key == "" {
		key = srv.submittedKey(s)
	}
	reserved := key == ""
	if reserved {
		taken := func(key string) bool {
			_, err := os.Lstat(filepath.Join(srv.cfg.OutputDir, key))
			return !errors.Is(err, fs.ErrNotExist)
		}
		var err error
		key, err = q.Reserve(ctx, s.id, taken, func(reason string) {
			s.log.Warn("waiting to submit the phrase", "step", "reserve its key", "reason", reason)
			fwd.report(protocol.StageVideoReconstruction, 0, reason)
		})
		if err != nil {
			return "", fmt.Errorf("reserve the phrase's key in the analysis cluster: %w", err)
		}
		if key != s.id {
			s.log.Info("an earlier phrase has this session id: this one's key is the next free one", "key", key)
		}
	}
	s.mu.Lock()
	s.key = key
	s.mu.Unlock()
	_, dir, err := claimArtifactDir(srv.cfg.OutputDir, s)
	if err != nil {
		if reserved {
			// No directory, no phrase: the key is free again, and a retry
			// reserves one anew.
			srv.forget(s, key)
			s.mu.Lock()
			s.key = ""
			s.mu.Unlock()
		}
		return "", err
	}
	srv.publish(ctx, s, dir)
	return dir, nil
}

// publish tells the catalogue what this node lists of the phrase in dir
// (processing until it has a result or a failure) and gives it the files
// the node wrote itself. Without a cluster it does nothing.
func (srv *Server) publish(ctx context.Context, s *session, dir string) {
	q := srv.cfg.Jobs
	if q == nil {
		return
	}
	key := filepath.Base(dir)
	sum := readSummary(dir, key)
	if sum.Status == "" {
		sum.Status, sum.StartedAt, sum.Frames = StatusProcessing, s.created.UTC().Format(time.RFC3339Nano), s.spool.Count()
	}
	// Reviews travel apart, through SetReview.
	sum.Review, sum.Node = nil, q.Name()
	summary, err := json.Marshal(sum)
	if err != nil {
		s.log.Warn("cannot encode the phrase's summary for the cluster", "phrase", key, "err", err)
		return
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := q.Publish(pctx, key, summary, nodeFiles(dir)); err != nil {
		s.log.Warn("cannot publish the phrase to the cluster: the other nodes list it as it was before", "phrase", key, "status", sum.Status, "err", err)
	}
}

// nodeFiles returns the files of the phrase in dir that the node writes
// itself, by name, for the catalogue.
func nodeFiles(dir string) map[string][]byte {
	files := map[string][]byte{}
	for _, name := range []string{pipeline.ResultFileName, FailureFileName} {
		if data, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			files[name] = data
		}
	}
	return files
}

// forget removes from the catalogue the phrase key of s, whose run a
// shutdown cancelled (as its directory is: the phrase did not fail), or
// which has no directory: its key is free again. Without a cluster it
// does nothing.
func (srv *Server) forget(s *session, key string) {
	q := srv.cfg.Jobs
	if q == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := q.Forget(ctx, key); err != nil {
		s.log.Warn("cannot remove a dropped phrase from the cluster: its key stays taken, and the other nodes may list it as processing, until --nats-retention", "phrase", key, "err", err)
	}
}

// catchUp publishes again the phrase of e, a record this node published,
// whose directory it lists as sum (not processing: clusterSync.pass leaves
// those), when the cluster still has it as this node published it last
// but the directory has moved on since: the node could not publish the
// phrase's end (the cluster unreachable then), or it stopped between
// claiming the key and submitting the job (a crash, a kill), which
// nothing else would ever report. A phrase whose job was queued and whose
// directory has no end yet is left: the job's end is in the cluster, and
// the node's restart awaits it.
func (s *Server) catchUp(ctx context.Context, e jobs.Entry, sum PhraseSummary) {
	var published struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(e.Summary, &published) != nil || published.Status == sum.Status {
		return
	}
	dir := filepath.Join(s.cfg.OutputDir, e.Key)
	files := nodeFiles(dir)
	if _, recorded := files[FailureFileName]; sum.Status == StatusFailed && !recorded && e.Submitted {
		return
	}
	sum.Review = nil
	summary, err := json.Marshal(sum)
	if err != nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	if err := s.cfg.Jobs.Publish(pctx, e.Key, summary, files); err != nil {
		s.log.Warn("cannot bring the cluster's view of a phrase up to its directory: the other nodes list it as before", "phrase", e.Key, "listed", published.Status, "status", sum.Status, "err", err)
		return
	}
	s.log.Info("the cluster's view of a phrase was behind its directory: brought up to it", "phrase", e.Key, "listed", published.Status, "status", sum.Status)
}

// clusterReview returns the cluster's review (stored) of a phrase this
// node holds with the review local (nil if none), and whether it is newer
// than local: recorded on another node, or here while the copy into the
// directory failed.
func clusterReview(local *Review, stored []byte) (*Review, bool, error) {
	var r Review
	if err := json.Unmarshal(stored, &r); err != nil {
		return local, false, err
	}
	// A review recorded here since the cluster's list was read is newer:
	// the next list brings the cluster's up to it.
	if local != nil && (local.ReviewEntry == r.ReviewEntry && len(local.History) == len(r.History) || parseTime(local.At).After(parseTime(r.At))) {
		return local, false, nil
	}
	return &r, true, nil
}

// syncReview writes the cluster's review of the phrase key, held here
// with the review local (nil if none), to the phrase's review.json when
// it is newer, so that the directory (and `referee eval` over it) has the
// review recorded on another node.
func (s *Server) syncReview(key string, local *Review, stored []byte) {
	_, newer, err := clusterReview(local, stored)
	if err != nil {
		s.log.Warn("the cluster's review of a phrase cannot be read; keeping this node's", "phrase", key, "err", err)
		return
	}
	if !newer {
		return
	}
	s.reviews.mu.Lock()
	defer s.reviews.mu.Unlock()
	if err := writeFileAtomic(filepath.Join(s.cfg.OutputDir, key, ReviewFileName), stored); err != nil {
		s.log.Warn("cannot copy the cluster's review of a phrase into its directory", "phrase", key, "err", err)
	}
}

// holdRefresh is how often syncCluster holds every key of this node's
// directories again, not only the new ones: a held record lasts
// --nats-retention after it was written.
const holdRefresh = time.Hour

// syncPassTimeout bounds a pass of syncCluster whose period is shorter.
const syncPassTimeout = 10 * time.Second

// syncCluster brings the cluster and this node's directories in step once
// every LivePeriod, from the start until the server's context ends, off
// the request path (the review API only reads): see clusterSync.pass.
func (s *Server) syncCluster() {
	t := time.NewTicker(s.cfg.LivePeriod)
	defer t.Stop()
	cs := clusterSync{held: map[string]bool{}, foreign: map[string]bool{}}
	for {
		cs.pass(s)
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// clusterSync is what syncCluster remembers between passes.
type clusterSync struct {
	// held are the keys of this node's directories known to have a
	// record; heldAll is when all were last held.
	held    map[string]bool
	heldAll time.Time
	// foreign are the keys of this node's directories whose record is
	// another node's phrase, logged once.
	foreign map[string]bool
}

// pass holds in the catalogue the keys of this node's directories it has
// no record of (Catalog.Hold), so that no node reserves them; copies the
// cluster's newer reviews of this node's phrases into their review.json
// (syncReview); and publishes again those whose record is behind their
// directory (catchUp). A directory whose key another node's record holds
// (the record came first) is a different phrase: it is left alone, and
// this node lists its own under that key. The pass ends within
// max(LivePeriod, syncPassTimeout).
func (cs *clusterSync) pass(s *Server) {
	q := s.cfg.Jobs
	ctx, cancel := context.WithTimeout(s.ctx, max(s.cfg.LivePeriod, syncPassTimeout))
	defer cancel()
	entries, err := q.Entries(ctx)
	if err != nil {
		s.log.Debug("cannot read the cluster's list of phrases; its view of this node's catches up later", "err", err)
		return
	}
	processing, _ := s.livePhrases(nil, nil)
	disk, err := s.diskPhrases(processing)
	if err != nil {
		s.log.Warn("cannot list this node's phrases for the cluster", "err", err)
		return
	}
	refresh := time.Since(cs.heldAll) >= holdRefresh
	var hold []string
	for key, sum := range disk {
		if _, ok := processing[key]; ok || sum.Status == StatusProcessing {
			continue
		}
		e, ok := entries[key]
		switch {
		case !ok:
			if refresh || !cs.held[key] {
				hold = append(hold, key)
			}
		case e.Node != q.Name():
			if !cs.foreign[key] {
				cs.foreign[key] = true
				s.log.Warn("a phrase of another node has the key of a phrase of this node's, which it took before this node held it: each node lists and reviews its own under that key", "phrase", key, "other_node", e.Node)
			}
		default:
			cs.held[key] = true
			if e.Review != nil {
				s.syncReview(key, sum.Review, e.Review)
			}
			sum.Node = q.Name()
			s.catchUp(ctx, e, sum)
		}
	}
	if len(hold) == 0 {
		return
	}
	slices.Sort(hold)
	recorded, err := q.Hold(ctx, hold)
	if len(recorded) > 0 {
		s.log.Info("this node's phrases without a record in the cluster are held there: no node gives their keys", "phrases", len(recorded))
	}
	if err != nil {
		s.log.Warn("cannot hold this node's phrase keys in the cluster: another node may give one of them to a new phrase", "err", err)
		return
	}
	for _, key := range hold {
		cs.held[key] = true
	}
	if refresh {
		cs.heldAll = time.Now()
	}
}

// remoteDetail is GET /api/sessions/{id} of a phrase another node holds:
// its files are those the node wrote, the worker's artifacts and the
// review, as that node lists them.
func remoteDetail(d *phraseDetail, e jobs.Entry) {
	data, ok := e.Files[pipeline.ResultFileName]
	if !ok {
		data = e.Analysed // the worker's, its node having not published its own
	}
	if (d.Status == StatusDone || d.Status == StatusFailed) && json.Valid(data) {
		d.Result = data
	}
	sizes := map[string]int64{}
	for _, a := range e.Artifacts {
		if servable(a.Name) {
			sizes[a.Name] = a.Size
		}
	}
	for name, data := range e.Files {
		sizes[name] = int64(len(data))
	}
	if e.Review != nil {
		sizes[ReviewFileName] = int64(len(e.Review))
	}
	for name, size := range sizes {
		if servable(name) {
			d.Files = append(d.Files, FileInfo{name, size, contentType(name)})
		}
	}
	slices.SortFunc(d.Files, func(a, b FileInfo) int { return strings.Compare(a.Name, b.Name) })
}

// serveRemoteFile is GET /api/sessions/{id}/files/{name} of a phrase this
// node holds no directory of: from the catalogue, or the worker's
// artifact fetched once into the node's cache. A phrase or file the
// cluster does not have is notFound; a cluster that cannot be asked is
// 503.
func (s *Server) serveRemoteFile(w http.ResponseWriter, r *http.Request, key, name string, notFound *httpError) {
	q := s.cfg.Jobs
	ctx, cancel := context.WithTimeout(r.Context(), listTimeout)
	e, err := q.Entry(ctx, key)
	cancel()
	if errors.Is(err, jobs.ErrUnknown) {
		s.writeError(w, nil, notFound)
		return
	}
	if err != nil {
		s.writeError(w, nil, clusterUnreachable(fmt.Sprintf("session %s is held by another node", key), err))
		return
	}
	data, ok := e.Files[name]
	if name == ReviewFileName && e.Review != nil {
		data, ok = e.Review, true
	}
	if ok {
		sum := sha256.Sum256(data)
		serveFileHeaders(w, name, `"`+hex.EncodeToString(sum[:16])+`"`, int64(len(data)))
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
		return
	}
	i := slices.IndexFunc(e.Artifacts, func(a jobs.Artifact) bool { return a.Name == name })
	if i < 0 {
		s.writeError(w, nil, notFound)
		return
	}
	a := e.Artifacts[i]
	f, err := s.cachedArtifact(r.Context(), key, a)
	if errors.Is(err, jobs.ErrUnknown) {
		s.writeError(w, nil, notFound)
		return
	}
	if err != nil {
		s.log.Warn("cannot fetch a phrase's artifact from the cluster", "phrase", key, "file", name, "err", err)
		s.writeError(w, nil, clusterUnreachable(fmt.Sprintf("file %s of session %s is held by the cluster", name, key), err))
		return
	}
	defer f.Close()
	digest := sha256.Sum256([]byte(a.Digest))
	serveFileHeaders(w, name, `"`+hex.EncodeToString(digest[:16])+`"`, a.Size)
	http.ServeContent(w, r, name, time.Time{}, f)
}

// clusterUnreachable is the answer when the cluster cannot be asked.
func clusterUnreachable(what string, err error) *httpError {
	return &httpError{http.StatusServiceUnavailable, protocol.CodeInternalError, fmt.Sprintf("%s, and the cluster cannot be asked: %v; try again when NATS JetStream is back", what, err)}
}

// cacheDir is where a node keeps the artifacts it fetched from the
// cluster, named by their digests: a file is fetched once, and never
// stale. Removing it at any time is safe. Its name is no phrase key, so
// that an output directory set to the data directory never lists it.
func (s *Server) cacheDir() string { return filepath.Join(s.cfg.DataDir, ".cluster-cache") }

// cachedArtifact opens a's copy in the cache, fetching it first when the
// cache has none, and marks it used now (its modification time, which
// pruneCache evicts the oldest of). The file is open before any eviction
// can remove it: on Linux an open file stays readable after it is
// unlinked, so that a response never loses its file to the bound.
func (s *Server) cachedArtifact(ctx context.Context, key string, a jobs.Artifact) (*os.File, error) {
	sum := sha256.Sum256([]byte(a.Digest))
	path := filepath.Join(s.cacheDir(), hex.EncodeToString(sum[:]))
	if f, err := os.Open(path); err == nil {
		if fi, err := f.Stat(); err == nil && fi.Size() == a.Size {
			markUsed(path)
			return f, nil
		}
		f.Close()
	}
	if err := os.MkdirAll(s.cacheDir(), 0o755); err != nil {
		return nil, fmt.Errorf("create the cache %s: %w (check --data-dir)", s.cacheDir(), err)
	}
	tmp, err := os.CreateTemp(s.cacheDir(), cacheTempPattern)
	if err != nil {
		return nil, fmt.Errorf("create a file in the cache %s: %w (check --data-dir)", s.cacheDir(), err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := s.cfg.Jobs.FetchArtifact(ctx, key, a.Name, tmp.Name()); err != nil {
		return nil, err
	}
	markUsed(tmp.Name())
	f, err := os.Open(tmp.Name())
	if err != nil {
		return nil, fmt.Errorf("open the fetched artifact in the cache: %w (check --data-dir)", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		f.Close()
		return nil, fmt.Errorf("keep the fetched artifact in the cache: %w", err)
	}
	s.pruneCache(false)
	return f, nil
}

// markUsed sets the modification time of the cache's file at path, which
// pruneCache evicts the oldest of, to now. A fetched file is marked too:
// the kernel stamps a write with a clock that ticks every few milliseconds
// and lags time.Now() by up to a tick, so that a file fetched just after
// another was served would look older than it and be evicted first. A
// failed mark only makes the file look older than it is.
func markUsed(path string) {
	now := time.Now()
	_ = os.Chtimes(path, now, now)
}

// cacheTempPattern names the cache's files being fetched.
const cacheTempPattern = ".fetch-*"

// pruneCache removes the least recently served files of the cache until
// the others hold at most ClusterCacheBytes; with leftovers, also the
// files of fetches a stopped server left. An artifact larger than the
// bound is thus removed right after its fetch, once its response has it
// open: it is served, from the open file, and fetched again the next
// time. Files being fetched are not counted; files removed while served
// hold their space until their responses end.
func (s *Server) pruneCache(leftovers bool) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	entries, err := os.ReadDir(s.cacheDir())
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("cannot list the cache of the cluster's artifacts: it is not pruned", "dir", s.cacheDir(), "err", err)
		}
		return
	}
	type cached struct {
		name string
		size int64
		used time.Time
	}
	var files []cached
	var total int64
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if strings.HasPrefix(e.Name(), ".") {
			if leftovers {
				os.Remove(filepath.Join(s.cacheDir(), e.Name()))
			}
			continue
		}
		files = append(files, cached{e.Name(), fi.Size(), fi.ModTime()})
		total += fi.Size()
	}
	slices.SortFunc(files, func(a, b cached) int { return a.used.Compare(b.used) })
	for _, f := range files {
		if total <= s.cfg.ClusterCacheBytes {
			return
		}
		if err := os.Remove(filepath.Join(s.cacheDir(), f.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("cannot evict a file from the cache of the cluster's artifacts", "file", f.name, "err", err)
			continue
		}
		total -= f.size
	}
}

// serveFileHeaders sets the headers handleFile gives a file, and a write
// deadline that grows with its size.
func serveFileHeaders(w http.ResponseWriter, name, etag string, size int64) {
	w.Header().Set("Content-Type", contentType(name))
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "private, no-cache")
	// A video is large: the deadline grows with it, at 1 MB/s at least.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeWait + time.Duration(size/(1<<20))*time.Second))
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/referee-project/referee/client"
	"github.com/referee-project/referee/pipeline/jobs/natsjobs"
	"github.com/referee-project/referee/protocol"
	"github.com/referee-project/referee/server"
)

// call sends a request to a serve node and returns the status, the
// headers and the body.
func call(t *testing.T, method, url, body string, header http.Header) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

// nodeList is a node's GET /api/sessions.
type nodeList struct {
	Sessions []map[string]any `json:"sessions"`
	Partial  string           `json:"partial"`
}

func (n *testNode) list(t *testing.T) nodeList {
	t.Helper()
	status, _, body := call(t, "GET", n.url+server.PathSessions, "", nil)
	var l nodeList
	if status != http.StatusOK || json.Unmarshal(body, &l) != nil {
		t.Fatalf("GET %s on %s: %d %s", server.PathSessions, n.url, status, body)
	}
	return l
}

// listed returns the phrase key of a node's list, or nil.
func (n *testNode) listed(t *testing.T, key string) map[string]any {
	t.Helper()
	for _, s := range n.list(t).Sessions {
		if s["session_id"] == key {
			return s
		}
	}
	return nil
}

// phraseKey is the key a streamed phrase got: its artifact directory's name.
func phraseKey(t *testing.T, res []byte) string {
	t.Helper()
	var r struct {
		ArtifactDir string `json:"artifact_dir"`
	}
	if err := json.Unmarshal(res, &r); err != nil || r.ArtifactDir == "" {
		t.Fatalf("result without an artifact directory: %s", res)
	}
	return filepath.Base(r.ArtifactDir)
}

// within calls ok every 50 ms until it says yes, for up to d, and
// returns its last answer.
func within(d time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// refused checks an error answer: its status and message.
func refused(t *testing.T, what string, status int, body []byte, wantStatus int, want string) {
	t.Helper()
	var e protocol.Error
	if status != wantStatus || json.Unmarshal(body, &e) != nil || !strings.Contains(e.ErrorMessage, want) {
		t.Errorf("%s: %d %s, want %d and a message with %q", what, status, body, wantStatus, want)
	}
}

// streamInBackground streams a phrase through n and returns where its raw
// result comes, or nil if the stream failed (reported).
func (n *testNode) streamInBackground(t *testing.T, id string, frames int, fps float64) chan []byte {
	done := make(chan []byte, 1)
	go func() {
		res, err := streamPhrase(t, n.url, id, frames, fps)
		if err != nil {
			t.Errorf("stream %s through %s: %v\nlog:\n%s", id, n.name, err, n.logs.String())
			done <- nil
			return
		}
		done <- res.Raw
	}()
	return done
}

// TestClusterCatalog streams through one serve node and asks the other:
// the same list, the same phrase and byte-identical files, reviews seen
// on both, one key per phrase everywhere (the node's directory is named
// after it), the bad inputs of the review API on the node without the
// files, and a JetStream gone: the list falls back to the node's own
// phrases and says so, a review is refused and nothing is lost.
func TestClusterCatalog(t *testing.T) {
	tc := newTestCluster(t, 700*time.Millisecond, nil)
	tc.livePeriod = 300 * time.Millisecond
	a, b := tc.node("serve-1"), tc.node("serve-2")
	tc.worker("worker-1")

	// A phrase being analysed is listed as processing by the other node,
	// which refuses its review.
	done := a.streamInBackground(t, "strip1", 8, 0)
	tc.began()
	if s := b.listed(t, "strip1"); s == nil || s["status"] != server.StatusProcessing || s["node"] != "serve-1" {
		t.Errorf("serve-2 lists strip1 being analysed as %v, want processing on serve-1", s)
	}
	status, _, body := call(t, "POST", b.url+server.PathSessions+"/strip1/review", `{"call":"left","referee":"Ann"}`, nil)
	refused(t, "review while processing", status, body, http.StatusConflict, "session strip1 is still processing: review it once it is processed")
	raw := recv(t, done)
	if raw == nil {
		return
	}
	if key := phraseKey(t, raw); key != "strip1" {
		t.Fatalf("the first phrase of strip1 has the key %s", key)
	}

	// The same list on both nodes, at once: the node published it before
	// its client had the result.
	onA, onB := a.listed(t, "strip1"), b.listed(t, "strip1")
	if onB == nil || onB["status"] != server.StatusDone || onB["winner"] != "right" || onB["node"] != "serve-1" || onB["frames"] != float64(8) {
		t.Errorf("serve-2 lists strip1 as %v", onB)
	}
	if !reflect.DeepEqual(onA, onB) {
		t.Errorf("the nodes list strip1 differently:\nserve-1 %v\nserve-2 %v", onA, onB)
	}

	// The same phrase, and its files byte for byte, from serve-2, which
	// has them from the cluster.
	detail := func(n *testNode) map[string]any {
		status, _, body := call(t, "GET", n.url+server.PathSessions+"/strip1", "", nil)
		var d map[string]any
		if status != http.StatusOK || json.Unmarshal(body, &d) != nil {
			t.Fatalf("GET strip1 on %s: %d %s", n.url, status, body)
		}
		return d
	}
	dA, dB := detail(a), detail(b)
	if !reflect.DeepEqual(dA, dB) {
		t.Errorf("the nodes give strip1 differently:\nserve-1 %v\nserve-2 %v", dA, dB)
	}
	files, _ := dA["files"].([]any)
	var names []string
	for _, f := range files {
		names = append(names, f.(map[string]any)["name"].(string))
	}
	for _, want := range []string{"result.json", "signal.txt", "video.avi"} {
		if !slices.Contains(names, want) {
			t.Errorf("strip1's files %q lack %s", names, want)
		}
	}
	for _, name := range names {
		path := server.PathSessions + "/strip1/files/" + name
		sa, ha, fa := call(t, "GET", a.url+path, "", nil)
		sb, hb, fb := call(t, "GET", b.url+path, "", nil)
		if sa != http.StatusOK || sb != http.StatusOK || !bytes.Equal(fa, fb) || len(fa) == 0 || ha.Get("Content-Type") != hb.Get("Content-Type") {
			t.Errorf("%s: serve-1 %d (%d bytes, %s), serve-2 %d (%d bytes, %s); want the same file", name, sa, len(fa), ha.Get("Content-Type"), sb, len(fb), hb.Get("Content-Type"))
		}
	}
	_, _, video := call(t, "GET", a.url+server.PathSessions+"/strip1/files/video.avi", "", nil)
	status, h, part := call(t, "GET", b.url+server.PathSessions+"/strip1/files/video.avi", "", http.Header{"Range": {"bytes=100-199"}})
	if status != http.StatusPartialContent || !bytes.Equal(part, video[100:200]) || h.Get("Content-Range") != "bytes 100-199/"+strconv.Itoa(len(video)) {
		t.Errorf("a range of the video from serve-2: %d %q, %d bytes", status, h.Get("Content-Range"), len(part))
	}

	// Bad input on the node without the files: unknown phrase, unknown
	// file, traversals, all 404 and nothing read.
	status, _, body = call(t, "GET", b.url+server.PathSessions+"/nosuch", "", nil)
	refused(t, "unknown session on serve-2", status, body, http.StatusNotFound, `no session "nosuch": see GET /api/sessions for the sessions this server holds`)
	for _, p := range []string{
		"/strip1/files/nosuch.txt", "/strip1/files/..%2F..%2Fserve-1", "/strip1/files/%2E%2E", "/strip1/files/.result.json.tmp",
		"/..%2Fstrip1/files/result.json", "/strip1/files/..%5Cresult.json", "/nosuch/files/video.avi", "/strip1-9/files/result.json",
	} {
		status, _, body := call(t, "GET", b.url+server.PathSessions+p, "", nil)
		refused(t, "GET "+p+" on serve-2", status, body, http.StatusNotFound, "has no file")
	}

	// A review on serve-2 shows on serve-1, in its list and in the
	// phrase's directory; a second on serve-1 keeps the first in its
	// history on both.
	status, _, body = call(t, "POST", b.url+server.PathSessions+"/strip1/review", `{"call":"left","referee":"Ann"}`, nil)
	if status != http.StatusOK {
		t.Fatalf("review on serve-2: %d %s", status, body)
	}
	review := func(n *testNode) map[string]any {
		s := n.listed(t, "strip1")
		r, _ := s["review"].(map[string]any)
		return r
	}
	if r := review(a); r == nil || r["call"] != "left" || r["referee"] != "Ann" {
		t.Errorf("serve-1 lists strip1's review as %v", r)
	}
	// serve-1 copies the review into its directory at its next pass.
	var fileA, fileB []byte
	within(10*time.Second, func() bool {
		_, _, fileA = call(t, "GET", a.url+server.PathSessions+"/strip1/files/review.json", "", nil)
		_, _, fileB = call(t, "GET", b.url+server.PathSessions+"/strip1/files/review.json", "", nil)
		return bytes.Equal(fileA, fileB)
	})
	if !bytes.Equal(fileA, fileB) || !bytes.Contains(fileA, []byte(`"referee": "Ann"`)) {
		t.Errorf("review.json: serve-1 %s, serve-2 %s", fileA, fileB)
	}
	status, _, body = call(t, "POST", a.url+server.PathSessions+"/strip1/review", `{"call":"right","referee":"Bob"}`, nil)
	if status != http.StatusOK {
		t.Fatalf("review on serve-1: %d %s", status, body)
	}
	if r := review(b); r == nil || r["call"] != "right" || len(r["history"].([]any)) != 1 {
		t.Errorf("serve-2 lists strip1's review as %v, want Bob's with Ann's in its history", r)
	}
	if dA, dB := detail(a), detail(b); !reflect.DeepEqual(dA, dB) {
		t.Errorf("after the reviews the nodes give strip1 differently:\nserve-1 %v\nserve-2 %v", dA, dB)
	}

	// The same session id through both nodes at once: two keys, each the
	// directory's name on its node.
	var wg sync.WaitGroup
	keys := make([]string, 2)
	for i, n := range []*testNode{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := streamPhrase(t, n.url, "strip2", 8, 0)
			if err != nil {
				t.Errorf("stream strip2 through %s: %v", n.url, err)
				return
			}
			keys[i] = phraseKey(t, res.Raw)
		}()
	}
	wg.Wait()
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"strip2", "strip2-2"}) {
		t.Errorf("two phrases of strip2 got the keys %q, want strip2 and strip2-2", keys)
	}
	for _, n := range []*testNode{a, b} {
		for _, key := range keys {
			if s := n.listed(t, key); s == nil || s["status"] != server.StatusDone {
				t.Errorf("%s lists %s as %v", n.url, key, s)
			}
		}
	}

	// The agreement counts strip1's review on both nodes.
	for _, n := range []*testNode{a, b} {
		status, _, body := call(t, "GET", n.url+server.PathAgreement, "", nil)
		var agreement server.Agreement
		if status != http.StatusOK || json.Unmarshal(body, &agreement) != nil || agreement.Reviewed != 1 || agreement.Partial != "" {
			t.Errorf("%s's agreement: %d %s, want strip1's review counted", n.url, status, body)
		}
	}

	// JetStream gone: each node lists its own phrases at once and says
	// why, as its agreement does; a review is refused, and nothing of it
	// is kept.
	tc.js.stop()
	began := time.Now()
	l := b.list(t)
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("the list took %s with JetStream gone", took)
	}
	if !strings.Contains(l.Partial, "only this node's phrases are listed: the cluster's list cannot be read") || len(l.Sessions) != 1 || l.Sessions[0]["node"] != "serve-2" {
		t.Errorf("serve-2's list with JetStream gone: %+v", l)
	}
	status, _, body = call(t, "GET", b.url+server.PathAgreement, "", nil)
	var agreement server.Agreement
	if status != http.StatusOK || json.Unmarshal(body, &agreement) != nil || agreement.Reviewed != 0 || !strings.Contains(agreement.Partial, "only this node's phrases are listed") {
		t.Errorf("serve-2's agreement with JetStream gone: %d %s, want serve-2's own (none reviewed), saying why", status, body)
	}
	status, _, body = call(t, "POST", b.url+server.PathSessions+"/strip1/review", `{"call":"abstain","referee":"Cy"}`, nil)
	refused(t, "review with JetStream gone", status, body, http.StatusServiceUnavailable, "the cluster cannot be asked")
	status, _, body = call(t, "GET", b.url+server.PathSessions+"/strip1/files/result.json", "", nil)
	refused(t, "a file of serve-1's with JetStream gone", status, body, http.StatusServiceUnavailable, "the cluster cannot be asked")
	tc.js.start()
	deadline := time.Now().Add(20 * time.Second)
	for b.list(t).Partial != "" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if r := review(b); r == nil || r["call"] != "right" || r["referee"] != "Bob" {
		t.Errorf("after JetStream's return serve-2 lists strip1's review as %v, want Bob's", r)
	}
	if l := b.list(t); l.Partial != "" || len(l.Sessions) != 3 {
		t.Errorf("after JetStream's return serve-2 lists %d phrases (partial %q), want 3", len(l.Sessions), l.Partial)
	}
}

// TestClusterStreaming: a session streaming through one node is listed by
// the other as streaming on it, from when it starts, with the fields its
// own node lists; once processed, both list it once, done; a node that
// dies mid-stream (its NATS connection gone, then the node) leaves the
// other's list within the few periods its sessions are listed for.
func TestClusterStreaming(t *testing.T) {
	tc := newTestCluster(t, 0, nil)
	tc.livePeriod = 300 * time.Millisecond
	a, b := tc.node("serve-1"), tc.node("serve-2")
	tc.worker("worker-1")

	// waitListed polls n's list for up to 10 s until ok says yes of the
	// phrase key (nil when not listed).
	waitListed := func(n *testNode, key string, ok func(map[string]any) bool) map[string]any {
		t.Helper()
		var s map[string]any
		within(10*time.Second, func() bool {
			s = n.listed(t, key)
			return ok(s)
		})
		return s
	}
	streaming := func(node string) func(map[string]any) bool {
		return func(s map[string]any) bool {
			return s != nil && s["status"] == server.StatusStreaming && s["node"] == node
		}
	}

	// 40 frames at 10 frames/s: 4 s streaming through serve-1.
	done := a.streamInBackground(t, "strip3", 40, 10)
	onB := waitListed(b, "strip3", streaming("serve-1"))
	onA := a.listed(t, "strip3")
	if !streaming("serve-1")(onB) || !streaming("serve-1")(onA) || onB["started_at"] != onA["started_at"] || onA["started_at"] == "" {
		t.Fatalf("strip3 streaming through serve-1 is listed by serve-1 as %v and by serve-2 as %v", onA, onB)
	}
	if _, ok := onB["frames"].(float64); !ok {
		t.Errorf("serve-2 lists strip3 without its frames: %v", onB)
	}
	// Its frames grow on serve-2 too, a beat behind.
	grown := waitListed(b, "strip3", func(s map[string]any) bool {
		f, _ := s["frames"].(float64)
		return streaming("serve-1")(s) && f > onB["frames"].(float64)
	})
	if f, _ := grown["frames"].(float64); f <= onB["frames"].(float64) {
		t.Errorf("strip3's frames on serve-2 stay at %v while it streams: %v", onB["frames"], grown)
	}
	status, _, body := call(t, "GET", b.url+server.PathSessions+"/strip3", "", nil)
	var d map[string]any
	if status != http.StatusOK || json.Unmarshal(body, &d) != nil || d["status"] != server.StatusStreaming {
		t.Errorf("GET strip3 on serve-2 while it streams: %d %s", status, body)
	}
	status, _, body = call(t, "POST", b.url+server.PathSessions+"/strip3/review", `{"call":"left","referee":"Ann"}`, nil)
	refused(t, "review on serve-2 while streaming", status, body, http.StatusConflict, "session strip3 is still streaming")

	raw := recv(t, done)
	if raw == nil {
		return
	}
	if key := phraseKey(t, raw); key != "strip3" {
		t.Fatalf("strip3's phrase has the key %s", key)
	}
	for _, n := range []*testNode{a, b} {
		l := n.list(t)
		var strip3 []map[string]any
		for _, s := range l.Sessions {
			if strings.HasPrefix(s["session_id"].(string), "strip3") || s["status"] == server.StatusStreaming {
				strip3 = append(strip3, s)
			}
		}
		if len(strip3) != 1 || strip3[0]["session_id"] != "strip3" || strip3[0]["status"] != server.StatusDone || strip3[0]["frames"] != float64(40) || l.Partial != "" {
			t.Errorf("%s lists after the result %v (partial %q), want strip3 once, done with 40 frames", n.url, strip3, l.Partial)
		}
	}

	// serve-1 stopped between claiming a phrase's key and submitting it
	// (killed while rebuilding the video): its directory has no end, the
	// cluster has the phrase as processing. serve-1 lists it failed, since
	// it stopped during it, and brings the cluster up to it at its next
	// pass: serve-2 lists it so too.
	var res struct {
		ArtifactDir string `json:"artifact_dir"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	key, err := a.conn.Reserve(bg, "strip5", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.conn.Publish(bg, key, json.RawMessage(`{"session_id":"strip5","started_at":"2026-01-02T10:00:00Z","frames":3,"status":"processing","node":"serve-1"}`), nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(filepath.Dir(res.ArtifactDir), key), 0o755); err != nil {
		t.Fatal(err)
	}
	stopped := func(s map[string]any) bool {
		f, _ := s["failure"].(map[string]any)
		return s != nil && s["status"] == server.StatusFailed && s["node"] == "serve-1" && f != nil && strings.Contains(f["reason"].(string), "the server stopped during it")
	}
	if s := a.listed(t, key); !stopped(s) {
		t.Errorf("serve-1 lists the phrase it stopped during as %v", s)
	}
	if s := waitListed(b, key, stopped); !stopped(s) {
		t.Errorf("serve-2 lists the phrase serve-1 stopped during as %v after serve-1's passes, want failed", s)
	}

	// A node dies mid-stream: first its link to the cluster, so that it
	// cannot say its sessions ended, then the node.
	c := tc.node("serve-3")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		_, err := client.Run(ctx, client.Options{Server: c.url, Video: counterVideo(t, ".avi", 200, 160, 120), Signal: sampleSignal, SessionID: "strip4", FPS: 10, Timeout: 20 * time.Second})
		if err == nil {
			t.Error("a stream through a node that died succeeded")
		}
	}()
	if s := waitListed(b, "strip4", streaming("serve-3")); !streaming("serve-3")(s) {
		t.Fatalf("serve-2 lists strip4 streaming through serve-3 as %v", s)
	}
	c.conn.Close()
	died := time.Now()
	c.srv.Close()
	cancel()
	<-ended
	if s := waitListed(b, "strip4", func(s map[string]any) bool { return s == nil }); s != nil {
		t.Errorf("serve-2 still lists strip4 %s after serve-3 died: %v", time.Since(died), s)
	}
	if took := time.Since(died); took > 5*time.Second {
		t.Errorf("serve-2 listed strip4 for %s after serve-3 died, want about 3 periods of %s", took, tc.livePeriod)
	}
	if s := a.listed(t, "strip4"); s != nil {
		t.Errorf("serve-1 lists strip4 after serve-3 died: %v", s)
	}
}

// cacheFiles returns the files of a node's cache of the cluster's
// artifacts (those being fetched aside) and their total size.
func cacheFiles(t *testing.T, dataDir string) ([][]byte, int64) {
	t.Helper()
	dir := filepath.Join(dataDir, ".cluster-cache")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("the cache %s: %v", dir, err)
	}
	var files [][]byte
	var total int64
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, data)
		total += int64(len(data))
	}
	return files, total
}

// TestClusterCacheBound: a node serving another node's artifacts keeps
// its cache within --cluster-cache-bytes, evicting the file served least
// recently, and still serves every file byte for byte, fetching an
// evicted one again; an artifact larger than the bound is served, Range
// requests too, and not kept.
func TestClusterCacheBound(t *testing.T) {
	tc := newTestCluster(t, 0, nil)
	a := tc.node("serve-1")
	tc.worker("worker-1")
	ids := []string{"strip10", "strip11", "strip12"}
	videos := make([][]byte, len(ids))
	var sum int64
	for i, id := range ids {
		if _, err := streamPhrase(t, a.url, id, 10+i, 0); err != nil {
			t.Fatalf("stream %s through serve-1: %v\nlog:\n%s", id, err, a.logs.String())
		}
		status, _, video := call(t, "GET", a.url+server.PathSessions+"/"+id+"/files/video.avi", "", nil)
		if status != http.StatusOK || len(video) == 0 {
			t.Fatalf("%s's video on serve-1: %d, %d bytes", id, status, len(video))
		}
		videos[i] = video
		sum += int64(len(video))
	}
	// Any two videos fit, three do not.
	bound := sum - 1
	bDir := t.TempDir()
	b := tc.nodeWith("serve-2", bDir, func(c *server.Config) { c.ClusterCacheBytes = bound })

	get := func(n *testNode, i int) {
		t.Helper()
		status, _, video := call(t, "GET", n.url+server.PathSessions+"/"+ids[i]+"/files/video.avi", "", nil)
		if status != http.StatusOK || !bytes.Equal(video, videos[i]) {
			t.Errorf("%s's video from %s: %d, %d bytes; want the %d bytes serve-1 serves", ids[i], n.url, status, len(video), len(videos[i]))
		}
	}
	// cached checks that b's cache holds the videos want, and no more
	// than the bound.
	cached := func(when string, want ...int) {
		t.Helper()
		files, total := cacheFiles(t, bDir)
		var got []string
		for _, f := range files {
			name := "a file of no video"
			if i := slices.IndexFunc(videos, func(v []byte) bool { return bytes.Equal(v, f) }); i >= 0 {
				name = ids[i]
			}
			got = append(got, name)
		}
		var names []string
		for _, i := range want {
			names = append(names, ids[i])
		}
		slices.Sort(got)
		if total > bound || !slices.Equal(got, names) {
			t.Errorf("%s: serve-2's cache holds %d bytes, the videos of %q; want at most %d bytes, those of %q", when, total, got, bound, names)
		}
	}
	get(b, 0)
	get(b, 1)
	cached("two videos fetched", 0, 1)
	get(b, 0) // strip10's served last now: strip11's goes first
	get(b, 2)
	cached("a third fetched after the first served again", 0, 2)
	get(b, 1)
	cached("the evicted one fetched again", 1, 2)

	// A bound smaller than any artifact: each is served, whole or a
	// range, and none kept. The node starts on a cache left by a run
	// with a larger bound, and the part of a fetch a kill cut short:
	// neither is left once Start has returned, before a request is
	// served (which may be fetching into the cache).
	cDir := t.TempDir()
	leftovers := filepath.Join(cDir, ".cluster-cache")
	if err := os.MkdirAll(leftovers, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".fetch-123456", "0123abcd"} {
		if err := os.WriteFile(filepath.Join(leftovers, name), videos[0][:1000], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := tc.nodeWith("serve-3", cDir, func(c *server.Config) { c.ClusterCacheBytes = 1 })
	if left, err := os.ReadDir(leftovers); err != nil || len(left) != 0 {
		t.Errorf("serve-3 keeps %d of the files its cache held at its start once started (%v)", len(left), err)
	}
	get(c, 0)
	status, h, part := call(t, "GET", c.url+server.PathSessions+"/"+ids[0]+"/files/video.avi", "", http.Header{"Range": {"bytes=100-199"}})
	if status != http.StatusPartialContent || !bytes.Equal(part, videos[0][100:200]) || h.Get("Content-Range") != "bytes 100-199/"+strconv.Itoa(len(videos[0])) {
		t.Errorf("a range of the video from serve-3: %d %q, %d bytes", status, h.Get("Content-Range"), len(part))
	}
	if files, total := cacheFiles(t, cDir); len(files) != 0 {
		t.Errorf("serve-3, with a 1-byte bound, keeps %d files (%d bytes) in its cache", len(files), total)
	}
}

// forgetting is a node's catalogue whose phrase records vanish (expired,
// forgotten) just before a review is stored: between the node's list and
// the review, which no timing of a real request hits reliably.
type forgetting struct{ *natsjobs.Conn }

func (f forgetting) SetReview(ctx context.Context, key, node string, change func([]byte) ([]byte, error)) ([]byte, error) {
	if err := f.Forget(ctx, key); err != nil {
		return nil, err
	}
	return f.Conn.SetReview(ctx, key, node, change)
}

// TestClusterReviewVanished: a review of another node's phrase whose
// record went since the list was read is 404 as for an unknown phrase,
// and nothing is recorded.
func TestClusterReviewVanished(t *testing.T) {
	tc := newTestCluster(t, 0, nil)
	a := tc.node("serve-1")
	tc.worker("worker-1")
	if _, err := streamPhrase(t, a.url, "strip13", 8, 0); err != nil {
		t.Fatalf("stream strip13 through serve-1: %v\nlog:\n%s", err, a.logs.String())
	}
	bDir := t.TempDir()
	b := tc.nodeWith("serve-2", bDir, func(c *server.Config) { c.Jobs = forgetting{c.Jobs.(*natsjobs.Conn)} })
	if s := b.listed(t, "strip13"); s == nil || s["node"] != "serve-1" {
		t.Fatalf("serve-2 lists strip13 as %v, want serve-1's", s)
	}
	status, _, body := call(t, "POST", b.url+server.PathSessions+"/strip13/review", `{"call":"left","referee":"Ann"}`, nil)
	refused(t, "review of a phrase whose record vanished", status, body, http.StatusNotFound, `no session "strip13": see GET /api/sessions for the sessions this server holds`)
	if s := b.listed(t, "strip13"); s != nil {
		t.Errorf("serve-2 lists strip13 after its record went: %v", s)
	}
	if _, err := os.Stat(filepath.Join(bDir, "sessions", "strip13")); !os.IsNotExist(err) {
		t.Errorf("serve-2 has a directory of strip13 after the refused review: %v", err)
	}
	if s := a.listed(t, "strip13"); s == nil || s["review"] != nil {
		t.Errorf("serve-1 lists strip13 as %v, want it unreviewed", s)
	}
}

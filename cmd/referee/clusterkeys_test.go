package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/referee-project/referee/pipeline/jobs/natsjobs"
	"github.com/referee-project/referee/server"
)

// TestClusterKeyOfLocalPhrase: a node's phrases from before it joined the
// cluster keep their keys. One whose key another node took first (box1)
// stays this node's own phrase under it: listed, served and reviewed from
// its directory, never mixed with the other node's record; one no record
// has (box2) is held in the cluster at start, so that no node gives its
// key to a new phrase.
func TestClusterKeyOfLocalPhrase(t *testing.T) {
	tc := newTestCluster(t, 0, nil)
	tc.livePeriod = 300 * time.Millisecond
	b := tc.node("serve-2")
	tc.worker("worker-1")
	res, err := streamPhrase(t, b.url, "box1", 8, 0)
	if err != nil {
		t.Fatalf("stream box1 through serve-2: %v\nlog:\n%s", err, b.logs.String())
	}
	if key := phraseKey(t, res.Raw); key != "box1" {
		t.Fatalf("serve-2's phrase of box1 has the key %s", key)
	}

	// serve-1 joins with two phrases of its own, decided "left" (the
	// worker decides "right").
	dataDir := t.TempDir()
	result := `{"winner":"left","confidence":0.9,"reason":"local","started_at":"2026-01-01T10:00:00Z","video":{"frames":5}}`
	for _, key := range []string{"box1", "box2"} {
		dir := filepath.Join(dataDir, "sessions", key)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "result.json"), []byte(result), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a := tc.nodeIn("serve-1", dataDir)
	waitRecord(t, a.conn, "box2", natsjobs.StateHeld)

	// A new phrase of box2 on serve-2 takes the next key.
	res, err = streamPhrase(t, b.url, "box2", 8, 0)
	if err != nil {
		t.Fatalf("stream box2 through serve-2: %v\nlog:\n%s", err, b.logs.String())
	}
	if key := phraseKey(t, res.Raw); key != "box2-2" {
		t.Errorf("serve-2's phrase of box2 has the key %s, want box2-2: serve-1 holds box2", key)
	}

	// Each node lists its own box1.
	for _, n := range []struct {
		node   *testNode
		winner string
	}{{a, "left"}, {b, "right"}} {
		var box1 []map[string]any
		for _, s := range n.node.list(t).Sessions {
			if s["session_id"] == "box1" {
				box1 = append(box1, s)
			}
		}
		if len(box1) != 1 || box1[0]["node"] != n.node.name || box1[0]["winner"] != n.winner {
			t.Errorf("%s lists box1 as %v, want its own once (%s)", n.node.name, box1, n.winner)
		}
	}
	_, _, body := call(t, "GET", a.url+server.PathSessions+"/box1/files/result.json", "", nil)
	if string(body) != result {
		t.Errorf("serve-1 serves box1's result.json as %s, want its own", body)
	}

	// A review of serve-2's box1 stays in serve-2's record: serve-1's
	// directory never gets it, even after a few periods.
	status, _, body := call(t, "POST", b.url+server.PathSessions+"/box1/review", `{"call":"right","referee":"Ann"}`, nil)
	if status != http.StatusOK {
		t.Fatalf("review on serve-2: %d %s", status, body)
	}
	time.Sleep(4 * tc.livePeriod)
	localReview := filepath.Join(dataDir, "sessions", "box1", "review.json")
	if data, err := os.ReadFile(localReview); err == nil {
		t.Errorf("serve-2's review of its box1 was copied into serve-1's: %s", data)
	}
	if s := a.listed(t, "box1"); s["review"] != nil {
		t.Errorf("serve-1 lists its box1 with serve-2's review: %v", s["review"])
	}

	// A review of serve-1's box1 is recorded in its directory only.
	status, _, body = call(t, "POST", a.url+server.PathSessions+"/box1/review", `{"call":"simultaneous","referee":"Bob"}`, nil)
	if status != http.StatusOK {
		t.Fatalf("review on serve-1: %d %s", status, body)
	}
	var local server.Review
	data, err := os.ReadFile(localReview)
	if err != nil || json.Unmarshal(data, &local) != nil || local.Call != "simultaneous" || len(local.History) != 0 {
		t.Errorf("serve-1's review.json of box1: %s, %v; want Bob's alone", data, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rec, _, err := b.conn.Record(ctx, "box1")
	if err != nil || strings.Contains(string(rec.Review), "Bob") || !strings.Contains(string(rec.Review), "Ann") {
		t.Errorf("serve-2's record of box1 has the review %s (%v), want Ann's alone", rec.Review, err)
	}
	if s := b.listed(t, "box1"); s == nil || s["review"].(map[string]any)["referee"] != "Ann" {
		t.Errorf("serve-2 lists its box1 as %v, want Ann's review", s)
	}
}

// TestClusterKeyFreedWhenNoDirectory: a phrase whose artifact directory
// cannot be made after its key was reserved (the output directory gone)
// fails, and leaves its key free, not reserved for nothing.
func TestClusterKeyFreedWhenNoDirectory(t *testing.T) {
	tc := newTestCluster(t, 0, nil)
	dataDir := t.TempDir()
	a := tc.nodeIn("serve-1", dataDir)
	if err := os.RemoveAll(filepath.Join(dataDir, "sessions")); err != nil {
		t.Fatal(err)
	}
	if _, err := streamPhrase(t, a.url, "box1", 8, 0); err == nil || !strings.Contains(err.Error(), "create the artifact directory") {
		t.Fatalf("a phrase without an output directory: %v, want the directory's error", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if rec, _, err := a.conn.Record(ctx, "box1"); err == nil {
		t.Errorf("box1 is still in the cluster after its directory could not be made: %+v", rec)
	}
}

// TestClusterListOnlyReads: the review API's GETs and /metrics only read.
// A review recorded on another node shows in the list at once, while the
// phrase's review.json on its node waits for the node's periodic pass
// (here a minute away).
func TestClusterListOnlyReads(t *testing.T) {
	tc := newTestCluster(t, 0, nil)
	tc.livePeriod = time.Minute
	dataDir := t.TempDir()
	a, b := tc.nodeIn("serve-1", dataDir), tc.node("serve-2")
	tc.worker("worker-1")
	res, err := streamPhrase(t, a.url, "box3", 8, 0)
	if err != nil {
		t.Fatalf("stream box3 through serve-1: %v\nlog:\n%s", err, a.logs.String())
	}
	key := phraseKey(t, res.Raw)
	status, _, body := call(t, "POST", b.url+server.PathSessions+"/"+key+"/review", `{"call":"right","referee":"Ann"}`, nil)
	if status != http.StatusOK {
		t.Fatalf("review on serve-2: %d %s", status, body)
	}
	if s := a.listed(t, key); s == nil || s["review"] == nil || s["review"].(map[string]any)["referee"] != "Ann" {
		t.Errorf("serve-1 lists %s as %v, want Ann's review", key, s)
	}
	for _, p := range []string{server.PathSessions + "/" + key, server.PathAgreement, server.PathMetrics} {
		if status, _, body := call(t, "GET", a.url+p, "", nil); status != http.StatusOK {
			t.Errorf("GET %s on serve-1: %d %s", p, status, body)
		}
	}
	if data, err := os.ReadFile(filepath.Join(dataDir, "sessions", key, "review.json")); err == nil {
		t.Errorf("serve-1's GETs wrote the review.json of %s: %s", key, data)
	}
}

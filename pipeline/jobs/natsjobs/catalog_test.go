package natsjobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/referee-project/referee/pipeline/jobs"
	"github.com/referee-project/referee/pipeline/jobs/natsjobs/natstest"
)

// TestCatalog: keys reserved past those a node holds, published entries
// listed by every node, reviews changed at once by many nodes with none
// lost, a forgotten key free again, and unknown keys.
func TestCatalog(t *testing.T) {
	conn := open(t)
	a, b := conn("serve-1"), conn("serve-2")
	ctx := context.Background()

	// serve-1 holds a directory s1 from before: its key is s1-2; serve-2
	// then gets s1, which the cluster does not hold yet.
	k1, err := a.Reserve(ctx, "s1", func(key string) bool { return key == "s1" }, nil)
	if err != nil || k1 != "s1-2" {
		t.Fatalf("reserve on serve-1: %q, %v; want s1-2", k1, err)
	}
	k2, err := b.Reserve(ctx, "s1", func(string) bool { return false }, nil)
	if err != nil || k2 != "s1" {
		t.Fatalf("reserve on serve-2: %q, %v; want s1", k2, err)
	}
	k3, err := b.Reserve(ctx, "s1", func(string) bool { return false }, nil)
	if err != nil || k3 != "s1-3" {
		t.Fatalf("third reserve: %q, %v; want s1-3", k3, err)
	}

	// Reserved but not published: no entry yet.
	if entries, err := b.Entries(ctx); err != nil || len(entries) != 0 {
		t.Errorf("entries before any publish: %v, %v", entries, err)
	}
	if _, err := b.Entry(ctx, k1); !errors.Is(err, jobs.ErrUnknown) {
		t.Errorf("entry of an unpublished key: %v, want ErrUnknown", err)
	}
	result := []byte("{\n  \"winner\": \"left\"\n}\n")
	if err := a.Publish(ctx, k1, json.RawMessage(`{"status":"done"}`), map[string][]byte{"result.json": result}); err != nil {
		t.Fatal(err)
	}
	entries, err := b.Entries(ctx)
	if err != nil || len(entries) != 1 {
		t.Fatalf("entries: %v, %v", entries, err)
	}
	e := entries[k1]
	if e.Node != "serve-1" || string(e.Summary) != `{"status":"done"}` || string(e.Files["result.json"]) != string(result) || e.Review != nil || e.Submitted {
		t.Errorf("serve-2's entry of %s: %+v", k1, e)
	}

	// Ten reviews at once from two nodes: each sees the one before.
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := []*Conn{a, b}[i%2]
			_, err := c.SetReview(ctx, k1, "serve-1", func(current []byte) ([]byte, error) {
				return append(append([]byte{}, current...), fmt.Sprintf("%d;", i)...), nil
			})
			if err != nil {
				t.Errorf("review %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	e, err = a.Entry(ctx, k1)
	if err != nil || strings.Count(string(e.Review), ";") != 10 {
		t.Errorf("after ten reviews: %q, %v; want all ten", e.Review, err)
	}
	for i := range 10 {
		if !strings.Contains(string(e.Review), fmt.Sprintf("%d;", i)) {
			t.Errorf("review %d lost: %q", i, e.Review)
		}
	}
	// A change that fails stores nothing; an unknown key is ErrUnknown.
	refusal := errors.New("not a review")
	if _, err := b.SetReview(ctx, k1, "serve-1", func([]byte) ([]byte, error) { return nil, refusal }); !errors.Is(err, refusal) {
		t.Errorf("a refused change: %v", err)
	}
	for _, key := range []string{"nosuch", k2, "../s1"} {
		if _, err := b.SetReview(ctx, key, "serve-1", func(c []byte) ([]byte, error) { return c, nil }); !errors.Is(err, jobs.ErrUnknown) {
			t.Errorf("review of %q: %v, want ErrUnknown", key, err)
		}
		if err := b.FetchArtifact(ctx, key, "video.avi", t.TempDir()+"/v"); !errors.Is(err, jobs.ErrUnknown) {
			t.Errorf("artifact of %q: %v, want ErrUnknown", key, err)
		}
	}
	if again, _ := a.Entry(ctx, k1); string(again.Review) != string(e.Review) {
		t.Errorf("a refused change changed the review: %q", again.Review)
	}
	// The review of a key published by another node than the one named
	// is no review of that phrase: ErrUnknown, and the change never runs.
	if _, err := b.SetReview(ctx, k1, "serve-2", func([]byte) ([]byte, error) {
		t.Error("the change ran on another node's record")
		return nil, nil
	}); !errors.Is(err, jobs.ErrUnknown) {
		t.Errorf("review of %s as serve-2's: %v, want ErrUnknown", k1, err)
	}
	// A change giving the review back as it is writes nothing.
	_, rev, err := a.Record(ctx, k1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetReview(ctx, k1, "serve-1", func(c []byte) ([]byte, error) { return c, nil }); err != nil {
		t.Fatal(err)
	}
	if _, again, err := a.Record(ctx, k1); err != nil || again != rev {
		t.Errorf("an unchanged review wrote the record: revision %d, was %d (%v)", again, rev, err)
	}

	// Keys held by serve-1 (its directories without a record) are
	// listed nowhere and never reserved by serve-2; a key with a record
	// is left to it.
	held, err := a.Hold(ctx, []string{"old1", k1, "../x"})
	if err != nil || !slices.Equal(held, []string{"old1"}) {
		t.Errorf("hold: %v, %v; want [old1]", held, err)
	}
	if k, err := b.Reserve(ctx, "old1", func(string) bool { return false }, nil); err != nil || k != "old1-2" {
		t.Errorf("reserve of a held key: %q, %v; want old1-2", k, err)
	}
	if _, err := b.Entry(ctx, "old1"); !errors.Is(err, jobs.ErrUnknown) {
		t.Errorf("entry of a held key: %v, want ErrUnknown", err)
	}
	if again, err := a.Hold(ctx, []string{"old1"}); err != nil || len(again) != 0 {
		t.Errorf("hold again: %v, %v; want none", again, err)
	}

	// A forgotten key is listed nowhere and free again.
	if err := b.Forget(ctx, k2); err != nil {
		t.Fatal(err)
	}
	if k, err := a.Reserve(ctx, "s1", func(string) bool { return false }, nil); err != nil || k != "s1" {
		t.Errorf("reserve after forget: %q, %v; want s1", k, err)
	}
}

// BenchmarkEntries lists a catalogue of 200 done phrases, each with a
// 3 KB result.json and a review: what every poll of a review page costs
// in a cluster.
func BenchmarkEntries(b *testing.B) {
	conn := open(b)
	c := conn("serve-1")
	ctx := context.Background()
	result := []byte(strings.Repeat("x", 3000))
	for i := range 200 {
		key, err := c.Reserve(ctx, "bench", nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Publish(ctx, key, json.RawMessage(fmt.Sprintf(`{"status":"done","frames":%d}`, i)), map[string][]byte{"result.json": result}); err != nil {
			b.Fatal(err)
		}
		if _, err := c.SetReview(ctx, key, "serve-1", func([]byte) ([]byte, error) { return []byte(`{"call":"left"}`), nil }); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		entries, err := c.Entries(ctx)
		if err != nil || len(entries) != 200 {
			b.Fatalf("%d entries, %v", len(entries), err)
		}
	}
}

// TestLive: the sessions set by a node are listed by every node with the
// node's name (any characters in it), replaced by the next set, gone once
// their ttl has passed without a new set, and cleared by an empty set; a
// closed connection fails at once.
func TestLive(t *testing.T) {
	conn := open(t)
	a, b := conn("serve 1.club/a"), conn("serve-2")
	ctx := context.Background()
	live := func(c *Conn) []string {
		t.Helper()
		l, err := c.Live(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range l {
			out = append(out, s.Node+":"+s.SessionID+":"+string(s.Summary))
		}
		return out
	}
	if got := live(b); len(got) != 0 {
		t.Errorf("before any set: %q", got)
	}
	set := func(c *Conn, ttl time.Duration, ids ...string) {
		t.Helper()
		m := map[string]json.RawMessage{}
		for _, id := range ids {
			m[id] = json.RawMessage(`{"frames":` + fmt.Sprint(len(id)) + `}`)
		}
		if err := c.SetLive(ctx, m, ttl); err != nil {
			t.Fatal(err)
		}
	}
	set(a, time.Minute, "s1", "strip-22")
	set(b, time.Minute, "s1")
	want := []string{`serve 1.club/a:s1:{"frames":2}`, `serve 1.club/a:strip-22:{"frames":8}`, `serve-2:s1:{"frames":2}`}
	if got := live(b); !slices.Equal(got, want) {
		t.Errorf("listed %q, want %q", got, want)
	}
	set(a, time.Minute, "strip-22")
	want = []string{`serve 1.club/a:strip-22:{"frames":8}`, `serve-2:s1:{"frames":2}`}
	if got := live(a); !slices.Equal(got, want) {
		t.Errorf("after serve-1 dropped s1: %q, want %q", got, want)
	}

	// Not set again within its ttl: gone, the other node's kept.
	set(a, 300*time.Millisecond, "strip-22")
	time.Sleep(1500 * time.Millisecond)
	want = []string{`serve-2:s1:{"frames":2}`}
	if got := live(a); !slices.Equal(got, want) {
		t.Errorf("after serve-1's ttl: %q, want %q", got, want)
	}
	set(b, time.Minute)
	if got := live(a); len(got) != 0 {
		t.Errorf("after serve-2's empty set: %q", got)
	}

	a.Close()
	began := time.Now()
	if err := a.SetLive(ctx, nil, time.Minute); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("set on a closed connection: %v", err)
	}
	if _, err := a.Live(ctx); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("list on a closed connection: %v", err)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("a closed connection took %s to fail", took)
	}
}

// TestCatalogDown: with NATS down (the connection reconnecting), every
// call of the catalogue fails at once saying so, rather than at its
// deadline, so that a node's client never waits on it.
func TestCatalogDown(t *testing.T) {
	ns := natstest.Start(t, -1, t.TempDir())
	c, err := Open(Options{URL: ns.ClientURL(), Name: "serve-1", ReconnectWait: 100 * time.Millisecond, OpTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key, err := c.Reserve(ctx, "s1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	for c.nc.IsConnected() {
		time.Sleep(10 * time.Millisecond)
	}
	began := time.Now()
	if err := c.Publish(ctx, key, json.RawMessage(`{"status":"done"}`), nil); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("publish with NATS down: %v", err)
	}
	if _, err := c.Hold(ctx, []string{"s2"}); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("hold with NATS down: %v", err)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("NATS down took %s to fail", took)
	}
}

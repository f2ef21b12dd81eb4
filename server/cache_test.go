package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/referee-project/referee/pipeline/jobs"
	"github.com/referee-project/referee/server/servertest"
)

// storedArtifacts stands for the cluster where the cache fetches from: it
// writes the bytes stored under a phrase key. The cache calls nothing else
// of jobs.Queue.
type storedArtifacts struct {
	jobs.Queue
	data map[string][]byte
}

func (s storedArtifacts) FetchArtifact(_ context.Context, key, _, dst string) error {
	return os.WriteFile(dst, s.data[key], 0o644)
}

// TestClusterCacheEvictsLeastRecentlyServed: with room for two artifacts,
// the one served least recently goes when a third is fetched, also when
// the one served last was fetched right after the other was served from
// the cache. That fetch writes its file microseconds after the serve,
// within a tick of the coarse clock the kernel stamps writes with, which
// lags time.Now(): a cache that ordered fetched files by their write time
// would take the fetched one for the older and evict it instead.
func TestClusterCacheEvictsLeastRecentlyServed(t *testing.T) {
	const size = 1000
	store := storedArtifacts{data: map[string][]byte{}}
	for i, key := range []string{"p1", "p2", "p3"} {
		store.data[key] = bytes.Repeat([]byte{byte('a' + i)}, size)
	}
	logs := &servertest.LogBuffer{}
	srv, err := New(Config{DataDir: t.TempDir(), Logger: logs.Logger(), ClusterCacheBytes: 2 * size})
	if err != nil {
		t.Fatal(err)
	}
	srv.cfg.Jobs = store
	artifact := func(key string) jobs.Artifact {
		return jobs.Artifact{Name: "video.avi", Size: size, Digest: "sha256:" + key}
	}
	serve := func(key string) {
		t.Helper()
		f, err := srv.cachedArtifact(context.Background(), key, artifact(key))
		if err != nil {
			t.Fatalf("serve %s: %v", key, err)
		}
		defer f.Close()
		if data, err := io.ReadAll(f); err != nil || !bytes.Equal(data, store.data[key]) {
			t.Fatalf("%s served as %d bytes (%v), want its %d", key, len(data), err, size)
		}
	}
	cached := func() []string {
		t.Helper()
		var keys []string
		for key := range store.data {
			sum := sha256.Sum256([]byte(artifact(key).Digest))
			if _, err := os.Stat(filepath.Join(srv.cacheDir(), hex.EncodeToString(sum[:]))); err == nil {
				keys = append(keys, key)
			}
		}
		slices.Sort(keys)
		return keys
	}
	check := func(round int, what string, want ...string) {
		t.Helper()
		slices.Sort(want)
		if got := cached(); !slices.Equal(got, want) {
			t.Fatalf("round %d, %s: the cache holds %q, want %q", round, what, got, want)
		}
	}
	// lru was served before mru; missing is not in the cache.
	lru, mru, missing := "p1", "p2", "p3"
	serve(lru)
	serve(mru)
	for round := range 20 {
		// Requests come apart: the kernel's clock ticks on past the
		// cache's last change, and stamps the next ones without the fine
		// grain it takes to tell apart changes within a tick.
		time.Sleep(10 * time.Millisecond)
		serve(lru) // a hit: mru is the least recently served now
		serve(missing)
		check(round, lru+" served, then "+missing+" fetched", lru, missing)
		serve(mru) // fetched again: lru, served before missing, goes
		check(round, mru+" fetched again", missing, mru)
		lru, missing = missing, lru
	}
	if w := logs.Lines("level=WARN"); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}
}

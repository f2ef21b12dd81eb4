package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/referee-project/referee/pipeline"
)

// Files a phrase's directory holds besides the pipeline's artifacts.
const (
	// FailureFileName records why a phrase's processing failed: its
	// directory is kept, with whatever was written, and listed as failed.
	FailureFileName = "failure.json"
	// ReviewFileName holds the referee's review of the phrase.
	ReviewFileName = pipeline.ReviewFileName
)

// Failure is the content of failure.json.
type Failure struct {
	// Stage is the pipeline stage that failed (pipeline.StageError's), or
	// "prepare" for a failure before the pipeline ran.
	Stage  string `json:"stage"`
	Reason string `json:"reason"`
	At     string `json:"at"`
}

// keyFor is the n-th key a phrase streamed with session id id may take:
// the id itself, then id-2, id-3, ...
func keyFor(id string, n int) string {
	if n <= 1 {
		return id
	}
	return id + "-" + strconv.Itoa(n)
}

// claimArtifactDir returns the key and directory of s's phrase under
// outputDir. A phrase's directory name is its key and never changes: the
// first processing of s creates the first free one of keyFor(id, 1, 2,
// ...) with os.Mkdir, which no other phrase can then take, and s keeps
// it; a retry of s (after a failed processing) empties that directory and
// uses it again, since it is the same phrase.
func claimArtifactDir(outputDir string, s *session) (key, dir string, err error) {
	s.mu.Lock()
	key = s.key
	s.mu.Unlock()
	if key != "" {
		dir = filepath.Join(outputDir, key)
		if err := os.RemoveAll(dir); err != nil {
			return "", "", fmt.Errorf("clear the directory %s of the failed run before the retry: %w (check the output directory's permissions)", dir, err)
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", "", fmt.Errorf("create the artifact directory %s: %w (check the output directory's permissions)", dir, err)
		}
		return key, dir, nil
	}
	for n := 1; ; n++ {
		key = keyFor(s.id, n)
		dir = filepath.Join(outputDir, key)
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("create the artifact directory %s: %w (check the output directory's permissions)", dir, err)
		}
		s.mu.Lock()
		s.key = key
		s.mu.Unlock()
		if n > 1 {
			s.log.Info("an earlier phrase has this session id: this one's key is the next free one", "key", key)
		}
		return key, dir, nil
	}
}

// nextFreeKey is the key claimArtifactDir would give a new phrase with
// session id id now: what a session still streaming is listed under. In
// a cluster, taken reports the keys other nodes hold.
func nextFreeKey(outputDir, id string, taken func(key string) bool) string {
	for n := 1; ; n++ {
		key := keyFor(id, n)
		if _, err := os.Lstat(filepath.Join(outputDir, key)); errors.Is(err, fs.ErrNotExist) && !taken(key) {
			return key
		}
	}
}

// writeFailure records in dir why the phrase's processing failed.
func writeFailure(dir string, cause error) error {
	f := Failure{Stage: pipeline.StagePrepare, Reason: cause.Error(), At: time.Now().UTC().Format(time.RFC3339Nano)}
	var se *pipeline.StageError
	if errors.As(cause, &se) {
		f.Stage, f.Reason = se.Stage, se.Err.Error()
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", FailureFileName, err)
	}
	return writeFileAtomic(filepath.Join(dir, FailureFileName), append(data, '\n'))
}

// writeFileAtomic writes data to path through a temporary file in the
// same directory, synced and renamed over path: a reader sees the old
// file or the new one, never a part, also after a crash.
func writeFileAtomic(path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

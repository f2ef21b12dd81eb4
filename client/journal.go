package client

import (
	"fmt"
	"os"
	"time"
)

// journal keeps every frame sent in a session in a temporary file, so that
// after a resume the frames the server lacks can be sent again, byte for
// byte, whether they came from a file or a camera and however long ago.
// Memory holds only the index; the file is removed when the run ends.
//
// A server acknowledges frames it may still lose (its write buffer at a
// crash), so no frame is ever known to be safe before the result: the
// journal keeps them all.
//
// The journal also keeps the session's resume token, the server's proof
// that a resume comes from the client that started the session. It is held
// in memory only, for the run, and never logged.
type journal struct {
	token   string
	f       *os.File
	entries []journalEntry
	end     int64
}

type journalEntry struct {
	off      int64
	n        int
	captured time.Time
	size     int
}

func newJournal() (*journal, error) {
	f, err := os.CreateTemp("", "referee-frames-*.journal")
	if err != nil {
		return nil, &SettingError{Field: "ResumeTries", Err: fmt.Errorf("create the local copy of the frames for resuming: %w", err)}
	}
	return &journal{f: f}, nil
}

// add keeps f, which must be frame number len(entries).
func (j *journal) add(f encodedFrame) error {
	if f.number != len(j.entries) {
		return fmt.Errorf("keep frame %d for resuming: frame %d was expected", f.number, len(j.entries))
	}
	if _, err := j.f.WriteAt(f.data, j.end); err != nil {
		return fmt.Errorf("keep frame %d for resuming: %w (check the free space of the temporary directory)", f.number, err)
	}
	j.entries = append(j.entries, journalEntry{off: j.end, n: len(f.data), captured: f.captured, size: f.size})
	j.end += int64(len(f.data))
	return nil
}

// frame reads frame n back as it was sent.
func (j *journal) frame(n int) (encodedFrame, error) {
	if n < 0 || n >= len(j.entries) {
		return encodedFrame{}, fmt.Errorf("frame %d was never kept for resuming (%d kept)", n, len(j.entries))
	}
	e := j.entries[n]
	data := make([]byte, e.n)
	if _, err := j.f.ReadAt(data, e.off); err != nil {
		return encodedFrame{}, fmt.Errorf("read frame %d back from %s: %w", n, j.f.Name(), err)
	}
	return encodedFrame{number: n, captured: e.captured, data: data, size: e.size}, nil
}

// close removes the file.
func (j *journal) close() {
	j.f.Close()
	os.Remove(j.f.Name())
}

package atomicfile

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// noTemp fails when a temporary file was left in dir.
func noTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left in %s", e.Name(), dir)
		}
	}
}

func TestWriteFileNewAndRegular(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "result.json")
	if err := WriteFile(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o644 || read(t, p) != "one" {
		t.Fatalf("new file: %v, mode %v, content %q", err, st.Mode(), read(t, p))
	}
	// A replaced file keeps its mode, and is a new inode: readers holding
	// the old one still read the old content.
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	old, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := WriteFile(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, _ = os.Stat(p)
	if st.Mode().Perm() != 0o600 || read(t, p) != "two" {
		t.Errorf("replaced file: mode %v, content %q; want 0600 and two", st.Mode(), read(t, p))
	}
	if data, _ := io.ReadAll(old); string(data) != "one" {
		t.Errorf("a reader of the old file read %q: it was overwritten in place", data)
	}
	noTemp(t, dir)
}

func TestWriteFileFollowsSymlinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.json")
	must(t, os.WriteFile(target, []byte("old"), 0o644))
	link := filepath.Join(dir, "link.json")
	must(t, os.Symlink("real.json", link))
	if err := WriteFile(link, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", st.Mode(), err)
	}
	if read(t, target) != "new" {
		t.Errorf("target holds %q, want new", read(t, target))
	}

	// A dangling link: its target is created, as a shell's "> link" does.
	dangling := filepath.Join(dir, "dangling.json")
	must(t, os.Symlink(filepath.Join(dir, "later.json"), dangling))
	if err := WriteFile(dangling, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(dangling); err != nil || st.Mode()&fs.ModeSymlink == 0 || read(t, filepath.Join(dir, "later.json")) != "x" {
		t.Errorf("dangling link: %v %v", st, err)
	}
	noTemp(t, dir)

	loop := filepath.Join(dir, "loop")
	must(t, os.Symlink("loop", loop))
	if err := WriteFile(loop, []byte("x"), 0o644); err == nil || !strings.Contains(err.Error(), "symbolic links") {
		t.Errorf("a link to itself: %v", err)
	}
}

// TestWriteFileSparesSpecialFiles writes to a FIFO, directly and through a
// link, and checks it is written to and stays a FIFO: a rename would have
// replaced it with a regular file (as /dev/null was).
func TestWriteFileSparesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "to-pipe")
	must(t, os.Symlink(fifo, link))
	for _, p := range []string{fifo, link} {
		got := make(chan string, 1)
		go func() {
			f, err := os.Open(fifo)
			if err != nil {
				got <- err.Error()
				return
			}
			defer f.Close()
			data, _ := io.ReadAll(f)
			got <- string(data)
		}()
		if err := WriteFile(p, []byte("through the pipe"), 0o644); err != nil {
			t.Fatal(err)
		}
		if s := <-got; s != "through the pipe" {
			t.Errorf("%s: the reader got %q", p, s)
		}
		if st, err := os.Lstat(fifo); err != nil || st.Mode()&fs.ModeNamedPipe == 0 {
			t.Errorf("%s: the FIFO was replaced (%v, %v)", p, st.Mode(), err)
		}
	}
	noTemp(t, dir)
	if err := WriteFile(dir, []byte("x"), 0o644); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("a directory: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRename moves a file a streaming writer finished over an older one,
// and removes the temporary file when the rename cannot be done.
func TestRename(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "overlay.avi")
	tmp := target + ".part.avi"
	must(t, os.WriteFile(target, []byte("old"), 0o644))
	must(t, os.WriteFile(tmp, []byte("new video"), 0o644))
	if err := Rename(tmp, target); err != nil {
		t.Fatal(err)
	}
	if got := read(t, target); got != "new video" {
		t.Errorf("target holds %q, want the new video", got)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("the temporary file is still there: %v", err)
	}

	must(t, os.WriteFile(tmp, []byte("x"), 0o644))
	err := Rename(tmp, filepath.Join(dir, "missing", "clip.avi"))
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("rename into a missing directory: %v", err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("a failed rename left the temporary file: %v", err)
	}
	if err := SyncFile(filepath.Join(dir, "none")); err == nil || !strings.Contains(err.Error(), "none") {
		t.Errorf("SyncFile of a missing file: %v", err)
	}
}

package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStreamOutputSparesWhatIsNotARegularFile streams to "-o" naming a
// FIFO and a link: the FIFO must receive the result and stay a FIFO (a
// rename over it is how /dev/null became a regular file), the link must
// stay a link and its target get the result.
func TestStreamOutputSparesWhatIsNotARegularFile(t *testing.T) {
	_, url, _ := startServer(t, nil)
	video := counterVideo(t, ".avi", 10, 320, 240)
	dir := t.TempDir()

	fifo := filepath.Join(dir, "result.fifo")
	must(t, syscall.Mkfifo(fifo, 0o644))
	// Opened read-write, the FIFO neither blocks this open nor the
	// client's, and a deadline bounds the read when nothing comes.
	r, err := os.OpenFile(fifo, os.O_RDWR, 0)
	must(t, err)
	defer r.Close()
	must(t, r.SetReadDeadline(time.Now().Add(30*time.Second)))
	got := make(chan error, 1)
	var res e2eResult
	go func() { got <- json.NewDecoder(r).Decode(&res) }()
	code, _, errs := run(t, "stream", url, "--video", video, "--signal", sampleSignal, "-o", fifo)
	if code != exitOK {
		t.Fatalf("stream -o FIFO: exit %d: %s", code, errs)
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&fs.ModeNamedPipe == 0 {
		t.Fatalf("-o FIFO: it is now %v (%v)", st.Mode(), err)
	}
	if err := <-got; err != nil || res.Winner != "right" {
		t.Errorf("the FIFO's reader: %v, result %+v", err, res)
	}

	target := filepath.Join(dir, "results", "latest.json")
	must(t, os.Mkdir(filepath.Dir(target), 0o755))
	must(t, os.WriteFile(target, []byte("old"), 0o644))
	link := filepath.Join(dir, "result.json")
	must(t, os.Symlink(target, link))
	if code, _, errs := run(t, "stream", url, "--video", video, "--signal", sampleSignal, "-o", link); code != exitOK {
		t.Fatalf("stream -o link: exit %d: %s", code, errs)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("-o link: the link was replaced (%v, %v)", st.Mode(), err)
	}
	data, err := os.ReadFile(target)
	if err != nil || json.Unmarshal(data, &res) != nil || res.Winner != "right" {
		t.Errorf("the link's target holds %q (%v)", data, err)
	}
}

// TestGenTestVideoSignalFollowsLinks writes the phrase log through a link.
func TestGenTestVideoSignalFollowsLinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "box.txt")
	must(t, os.WriteFile(target, nil, 0o644))
	link := filepath.Join(dir, "phrase.txt")
	must(t, os.Symlink(target, link))
	if code, _, errs := run(t, "gen-test-video", filepath.Join(dir, "p.avi"), "--pattern", "counter", "--signal", link); code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("--signal link was replaced (%v, %v)", st.Mode(), err)
	}
	if data, _ := os.ReadFile(target); !strings.HasPrefix(string(data), "Phrase 1 initialized at ") {
		t.Errorf("the link's target holds %q, want the phrase log", data)
	}
}

package pose

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/avi"
	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/rightofway"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/tracks"
	"github.com/referee-project/referee/pipeline/videoio"
)

// film renders the scenario called name as a video (ext ".avi" is
// Motion-JPEG, ".mp4" is not) in a new artifact directory and returns the
// analysis input for it, with the signal the box would have written.
func film(t *testing.T, name, ext string, fps float64) pipeline.AnalysisInput {
	t.Helper()
	sc, err := synth.ScenarioByName(name)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "video"+ext)
	const w, h = 320, 240
	out, err := videoio.Create(path, "", fps, w, h)
	if err != nil {
		t.Fatal(err)
	}
	img := bgr.New(w, h)
	n := int(math.Floor(sc.Duration*fps)) + 1
	for i := range n {
		sc.Render(img, float64(i)/fps)
		if err := out.Write(img); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	p, err := signal.Parse(signal.Render(sc.Signal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))))
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.AnalysisInput{VideoPath: path, FPS: fps, Width: w, Height: h, Frames: n, Phrase: p, ArtifactDir: dir}
}

var (
	fakeOnce sync.Once
	fakePath string
	fakeErr  error
)

// fakePose builds testdata/fakepose, a pose tool that writes a synthetic
// scenario's true positions, once per test binary.
func fakePose(t *testing.T) string {
	t.Helper()
	fakeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fakepose-")
		if err != nil {
			fakeErr = err
			return
		}
		fakePath = filepath.Join(dir, "fakepose")
		out, err := exec.Command("go", "build", "-o", fakePath, "./testdata/fakepose").CombinedOutput()
		if err != nil {
			fakeErr = errors.New(string(out))
		}
	})
	if fakeErr != nil {
		t.Fatalf("build testdata/fakepose: %v", fakeErr)
	}
	return fakePath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fakePath != "" {
		os.RemoveAll(filepath.Dir(fakePath))
	}
	os.Exit(code)
}

func TestPoseAnalyzerDecidesFromTheToolsTracks(t *testing.T) {
	for _, c := range []struct {
		scenario, ext string
		fps           float64
		stride        string
	}{
		{"left-attack-right-pause", ".avi", 15, "1"},
		{"right-attack-left-retreat", ".avi", 30, "2"},
		{"both-pause-left-resumes", ".mp4", 15, "1"},
	} {
		t.Run(c.scenario+c.ext, func(t *testing.T) {
			in := film(t, c.scenario, c.ext, c.fps)
			sc, _ := synth.ScenarioByName(c.scenario)
			a, err := New(fakePose(t)+" {frames} {fps} {out} "+c.scenario+" "+c.stride, 0)
			if err != nil {
				t.Fatal(err)
			}
			var last float64
			v, err := a.Analyze(context.Background(), in, func(p float64, _ string) { last = p })
			if err != nil {
				t.Fatal(err)
			}
			if v.Winner != sc.Call {
				t.Errorf("winner %q (%s), want %q: %s", v.Winner, v.Reason, sc.Call, sc.Why)
			}
			if !(v.Confidence > 0) || !strings.Contains(v.Reason, "hit at") {
				t.Errorf("confidence %v, reason %q: want a confidence and the hit time", v.Confidence, v.Reason)
			}
			tl, ok := v.Extra["timeline"].(rightofway.Timeline)
			if !ok || tl.Decision.Winner != v.Winner {
				t.Errorf("extra timeline %+v, want the decision's timeline", v.Extra["timeline"])
			}
			saved, err := tracks.ReadFile(v.Artifacts[ArtifactTracks])
			if err != nil {
				t.Fatal(err)
			}
			stride := map[string]int{"1": 1, "2": 2}[c.stride]
			if want := (in.Frames + stride - 1) / stride; saved.Frames() != want || saved.FPS != c.fps/float64(stride) {
				t.Errorf("tracks.json has %d frames at %g fps, want %d at %g", saved.Frames(), saved.FPS, want, c.fps/float64(stride))
			}
			again, err := rightofway.Decide(saved, in.Phrase)
			if err != nil || again.Decision.Winner != tl.Decision.Winner || again.Decision.Reason != tl.Decision.Reason || again.Decision.Confidence != tl.Decision.Confidence {
				t.Errorf("tracks.json decides %+v (%v), the analysis %+v", again.Decision, err, tl.Decision)
			}
			for _, name := range []string{ArtifactTimeline, ArtifactOverlay} {
				if st, err := os.Stat(v.Artifacts[name]); err != nil || st.Size() == 0 {
					t.Errorf("artifact %s: %v", name, err)
				}
			}
			ov, err := videoio.Probe(v.Artifacts[ArtifactOverlay])
			if err != nil || ov.FrameCount != in.Frames {
				t.Errorf("overlay %+v (%v): want %d frames", ov, err, in.Frames)
			}
			if _, err := os.Stat(filepath.Join(in.ArtifactDir, FramesDir)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the frames directory is still there: %v", err)
			}
			if last < 0.9 {
				t.Errorf("last progress %v", last)
			}
		})
	}
}

// script writes an executable shell script and returns its path.
func script(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPoseToolFailures(t *testing.T) {
	in := film(t, "left-attack-right-pause", ".avi", 15)
	for _, c := range []struct {
		name, body string
		timeout    time.Duration
		want       []string
	}{
		{"crash", "echo 'loading MoveNet' >&2\necho 'out of memory' >&2\nexit 1\n", 0,
			[]string{"pose tool crash.sh failed: exit status 1; stderr: loading MoveNet\nout of memory"}},
		{"hang", "echo 'posing frame 0' >&2\nsleep 60\n", 300 * time.Millisecond,
			[]string{"pose tool hang.sh timed out after 300ms; stderr: posing frame 0"}},
		{"silent", "echo 'nothing to do' >&2\nexit 0\n", 0,
			[]string{"pose tool silent.sh exited 0 but wrote no tracks to {out}: ", "no such file or directory; stderr: nothing to do"}},
		{"bad", "echo '{\"format\": \"referee-tracks/1\", \"fps\": 15, \"units\": \"px\", \"left\": [null], \"right\": []}' > \"$3\"\n", 0,
			[]string{"pose tool bad.sh wrote a bad tracks file: malformed tracks file: left has 1 frames and right 0; both need one entry per frame"}},
		{"short", "echo '{\"format\": \"referee-tracks/1\", \"fps\": 15, \"units\": \"px\", \"left\": [null, null], \"right\": [null, null]}' > \"$3\"\n", 0,
			[]string{"pose tool short.sh wrote tracks of 2 frames at 15 fps (0.13 s) for a video of ", "they must cover the video"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := New(script(t, c.name+".sh", c.body)+" {frames} {fps} {out}", c.timeout)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = a.Analyze(context.Background(), in, nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if time.Since(start) > 20*time.Second {
				t.Errorf("took %v: the tool was not stopped", time.Since(start))
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		a, err := New("referee-no-such-pose-tool {frames} {fps} {out}", 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.Analyze(context.Background(), in, nil)
		if want := "pose tool referee-no-such-pose-tool is not installed: "; err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error %v, want it to start %q", err, want)
		}
	})
}

func TestNewRejectsBadCommandLines(t *testing.T) {
	for _, c := range []struct {
		line    string
		timeout time.Duration
		want    string
	}{
		{" ", 0, "pose analyzer: the command line is empty"},
		{"pose {frames} {fps}", 0, `pose analyzer: the command line "pose {frames} {fps}" has no {out} placeholder for the tracks file`},
		{"pose {fps} {out}", 0, `pose analyzer: the command line "pose {fps} {out}" gives the tool neither {frames} nor {video}`},
		{"pose {video} {out}", -time.Second, "pose analyzer: timeout -1s is negative"},
	} {
		if _, err := New(c.line, c.timeout); err == nil || err.Error() != c.want {
			t.Errorf("New(%q, %v) = %v, want %q", c.line, c.timeout, err, c.want)
		}
	}
}

func TestWriteFramesCopiesTheJPEGsOfAnMJPEGAVI(t *testing.T) {
	in := film(t, "left-attack-right-pause", ".avi", 15)
	dir := filepath.Join(t.TempDir(), "frames")
	n, err := WriteFrames(context.Background(), in.VideoPath, dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(in.VideoPath)
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := avi.MJPEGChunks(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if n != len(chunks) || n != in.Frames {
		t.Fatalf("%d frames written, the video has %d chunks and %d frames", n, len(chunks), in.Frames)
	}
	for k, c := range chunks {
		got, err := os.ReadFile(filepath.Join(dir, FrameName(k)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data[c.Off:c.Off+int64(c.Size)]) {
			t.Fatalf("frame %d is not the video's JPEG byte for byte", k)
		}
	}
}

func TestWriteFramesEncodesOtherVideos(t *testing.T) {
	in := film(t, "left-attack-right-pause", ".mp4", 15)
	dir := t.TempDir()
	n, err := WriteFrames(context.Background(), in.VideoPath, dir)
	if err != nil {
		t.Fatal(err)
	}
	if n != in.Frames {
		t.Fatalf("%d frames written, want %d", n, in.Frames)
	}
	var img bgr.Image
	for k := range n {
		data, err := os.ReadFile(filepath.Join(dir, FrameName(k)))
		if err != nil {
			t.Fatal(err)
		}
		if err := videoio.Decode(data, &img); err != nil || img.Width != in.Width || img.Height != in.Height {
			t.Fatalf("frame %d: %dx%d, %v; want a %dx%d JPEG", k, img.Width, img.Height, err, in.Width, in.Height)
		}
	}
	if _, err := WriteFrames(context.Background(), filepath.Join(dir, "missing.avi"), dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing video: %v, want a not-exist error", err)
	}
}

func TestCheckWantsTheProjectsTool(t *testing.T) {
	for _, c := range []struct{ name, body, want string }{
		{"club.sh", "echo 'usage: club FRAMES OUT' >&2\nexit 2\n", "pose tool club.sh failed: exit status 2; stderr: usage: club FRAMES OUT"},
		{"chatty.sh", "echo 'ready'\n", `pose tool --check printed "ready", not its JSON report: `},
		{"other.sh", "echo '{\"tool\": \"yolo\"}'\n", `pose tool --check printed "{\"tool\": \"yolo\"}": not referee-pose`},
	} {
		a, err := New(script(t, c.name, c.body)+" {frames} {fps} {out}", 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Check(context.Background()); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to start %q", c.name, err, c.want)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/referee-project/referee/cmd/referee/internal/bench"
	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio"
)

// benchChildEnv makes this test binary run the referee command line
// instead of the tests: bench starts its server as os.Executable() serve,
// which is this binary under go test.
const benchChildEnv = "REFEREE_BENCH_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(benchChildEnv) == "1" {
		os.Exit(execute(os.Args[1:], newStreams(os.Stdin, os.Stdout, os.Stderr)))
	}
	os.Exit(m.Run())
}

func TestBenchShortRunMeasuresBothProtocolsOverBothLinks(t *testing.T) {
	t.Setenv(benchChildEnv, "1")
	var out bytes.Buffer
	opts := benchOptions{
		RTT:         20 * time.Millisecond,
		Cases:       []string{"640x480"},
		FramesScale: 0.02, // 36 frames
		JSON:        true,
		JPEGQuality: 85,
		Repeat:      2,
		Out:         &out,
	}
	if err := runBench(context.Background(), opts); err != nil {
		t.Fatalf("runBench: %v\n%s", err, out.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("bench --json output %q: %v", out.String(), err)
	}
	if len(rep.Runs) != 4 {
		t.Fatalf("%d runs, want 4 (v1 and v2, loopback and relay): %+v", len(rep.Runs), rep.Runs)
	}
	byName := map[string]bench.Row{}
	for _, r := range rep.Runs {
		byName[r.Protocol+" "+r.Link] = r
		if !r.Verified || r.Problem != "" || r.Frames != 36 || r.Sessions != 1 {
			t.Errorf("%s %s: verified %v, problem %q, %d frames of %d sessions; want 36 verified frames of 1 session",
				r.Protocol, r.Link, r.Verified, r.Problem, r.Frames, r.Sessions)
		}
		if !(r.FPS > 0 && r.Mbps > 0 && r.ServerCPUSecs > 0 && r.ClientCPUSecs > 0 && r.ServerPeakRSSMB > 0 && r.EndToCompleteMs > 0) {
			t.Errorf("%s %s: a figure is missing: %+v", r.Protocol, r.Link, r)
		}
		if r.Repeats != 2 || len(r.FPSAll) != 2 || !slices.Contains(r.FPSAll, r.FPS) {
			t.Errorf("%s %s: %d repeats with frames/s %v, row %v; want 2, the row one of them", r.Protocol, r.Link, r.Repeats, r.FPSAll, r.FPS)
		}
		if (r.Protocol == "v2") != (r.V2OverV1 > 0) {
			t.Errorf("%s %s: v2/v1 ratio %v, want one on v2 rows only", r.Protocol, r.Link, r.V2OverV1)
		}
	}
	for _, link := range []string{bench.LinkLoopback, bench.LinkRelay} {
		v1, v2 := byName["v1 "+link], byName["v2 "+link]
		if v1.FPS > 0 && v2.V2OverV1 != v2.FPS/v1.FPS {
			t.Errorf("%s: v2/v1 %v, want %v / %v", link, v2.V2OverV1, v2.FPS, v1.FPS)
		}
	}
	// v1 waits for an ack per frame, so through the relay it cannot send
	// much more than a frame per round trip (50/s at 20 ms); a relay that
	// did not delay would let it run at hundreds per second.
	if relayV1 := byName["v1 relay"]; relayV1.FPS > 75 {
		t.Errorf("v1 through a 20 ms relay made %.0f frames/s, want at most about 50", relayV1.FPS)
	}
	if rep.CPUs <= 0 || rep.RTTms != 20 || rep.FramesScale != 0.02 || rep.Repeat != 2 || rep.TempDir != "" {
		t.Errorf("report header %+v", rep)
	}
	if len(rep.Targets) != 3 {
		t.Errorf("targets %+v, want the three of the 640x480 case", rep.Targets)
	}
}

func TestBenchPrintsOneTableRowPerRun(t *testing.T) {
	t.Setenv(benchChildEnv, "1")
	code, out, errs := run(t, "bench", "--cases", "1280x720", "--frames-scale", "0.05", "--rtt", "10ms")
	if code != 0 {
		t.Fatalf("bench: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	var rows []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "1280x720" {
			rows = append(rows, strings.Join(f, " "))
		}
	}
	want := []string{"v1 loopback 15 ", "v2 loopback 15 ", "v1 relay 10ms 15 ", "v2 relay 10ms 15 "}
	if len(rows) != len(want) {
		t.Fatalf("table rows %q, want %d rows of 1280x720\n%s", rows, len(want), out)
	}
	for i, w := range want {
		if !strings.HasPrefix(rows[i], "1280x720 "+w) || !strings.HasSuffix(rows[i], " ok") {
			t.Errorf("row %d %q, want 1280x720 %s... ok", i, rows[i], w)
		}
		if v2 := strings.HasPrefix(w, "v2"); v2 != strings.Contains(rows[i], "x ok") {
			t.Errorf("row %d %q: the v2/v1 ratio belongs on v2 rows only", i, rows[i])
		}
	}
	if !strings.Contains(out, "session_end to process_complete < 1 s") {
		t.Errorf("the 1280x720 target is not reported:\n%s", out)
	}
}

func TestBenchRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cases", "640x480,4k"}, `referee: --cases: unknown case "4k"; the cases are 640x480, 1920x1080, 1280x720, 10x1280x720` + "\n"},
		{[]string{"--frames-scale", "0"}, "referee: --frames-scale 0: want more than 0 and at most 10\n"},
		{[]string{"--rtt", "-1ms"}, "referee: --rtt -1ms: want 0 or more\n"},
		{[]string{"--jpeg-quality", "101"}, "referee: --jpeg-quality 101: want 1 to 100\n"},
		{[]string{"--repeat", "0"}, "referee: --repeat 0: want 1 to 100\n"},
		{[]string{"--cases", "640x480", "--cpuprofile-client", "/nonexistent/client.pprof"}, "referee: --cpuprofile-client: open /nonexistent/client.pprof: no such file or directory\n"},
		{[]string{"extra"}, `referee: bench takes no arguments, got ["extra"] (see referee bench --help)` + "\n"},
		{[]string{"--cluster", "--cluster-workers", "1,0"}, "referee: --cluster-workers [1 0]: want numbers of workers from 1 to 64\n"},
		{[]string{"--cluster", "--strips", "0"}, "referee: --strips 0: want 1 to 200\n"},
	} {
		code, out, errs := run(t, append([]string{"bench"}, tc.args...)...)
		if code != exitUsage || out != "" || errs != tc.want {
			t.Errorf("bench %q: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errs, exitUsage, tc.want)
		}
	}
}

// TestBenchCluster runs a small cluster bench: every phrase comes back
// with its frames, and one worker analyses one phrase at a time.
func TestBenchCluster(t *testing.T) {
	const strips, delay = 4, 300 * time.Millisecond
	code, out, errs := run(t, "bench", "--cluster", "--strips", strconv.Itoa(strips), "--cluster-frames", "5", "--nodes", "2",
		"--cluster-workers", "1,2", "--analysis-delay", delay.String(), "--json")
	if code != exitOK {
		t.Fatalf("bench --cluster: exit %d: %s", code, errs)
	}
	var rep bench.ClusterReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report %q: %v", out, err)
	}
	if len(rep.Runs) != 2 || rep.Runs[0].Workers != 1 || rep.Runs[1].Workers != 2 || rep.Nodes != 2 || rep.Strips != strips {
		t.Fatalf("report %+v: want runs with 1 and 2 workers over 2 nodes", rep)
	}
	for _, r := range rep.Runs {
		if !r.Verified || r.EndToResultMaxMs < float64(delay.Milliseconds()) || r.PhrasesPerMinute <= 0 {
			t.Errorf("run %+v: want verified, each result after the analysis delay", r)
		}
	}
	if one := rep.Runs[0]; one.WallSeconds < strips*delay.Seconds() {
		t.Errorf("one worker took %.2f s for %d phrases of %v each: it analysed more than one at a time", one.WallSeconds, strips, delay)
	}
}

func TestVerifyBenchSessionFailsOnLostOrReorderedFrames(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		written []int
		sent    int
		want    string // "" for a video that verifies
	}{
		{"in order", []int{0, 1, 2, 3, 4, 5}, 6, ""},
		{"one lost", []int{0, 1, 2, 4, 5}, 6, "6 frames sent, 5 in the video, sequence ok false, missing 3, duplicated , out of order , undecodable "},
		{"reordered", []int{0, 1, 3, 2, 4, 5}, 6, "6 frames sent, 6 in the video, sequence ok false, missing , duplicated , out of order 2, undecodable "},
		{"duplicated", []int{0, 1, 2, 2, 3, 4}, 6, "6 frames sent, 6 in the video, sequence ok false, missing , duplicated 2, out of order , undecodable "},
		{"last lost", []int{0, 1, 2, 3, 4}, 6, "6 frames sent, 5 in the video, sequence ok true, missing , duplicated , out of order , undecodable "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".avi")
			vw, err := videoio.Create(path, "", 30, 320, 240)
			if err != nil {
				t.Fatal(err)
			}
			img := bgr.New(320, 240)
			for _, i := range tc.written {
				synth.DrawCounter(img, i)
				if err := vw.Write(img); err != nil {
					t.Fatal(err)
				}
			}
			if err := vw.Close(); err != nil {
				t.Fatal(err)
			}
			err = verifyBenchSession(context.Background(), tc.sent, json.RawMessage(fmt.Sprintf(`{"artifacts":{"video":%q}}`, path)))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("verify: %v, want no error", err)
			case tc.want != "" && (err == nil || err.Error() != path+": "+tc.want):
				t.Errorf("verify: %v, want %q", err, path+": "+tc.want)
			}
		})
	}
	if err := verifyBenchSession(context.Background(), 1, json.RawMessage(`{"status":"success"}`)); err == nil || err.Error() != `the result names no video (artifacts.video): {"status":"success"}` {
		t.Errorf("verify a result without a video: %v", err)
	}
}

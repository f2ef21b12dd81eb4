package pipeline

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/referee-project/referee/protocol"
)

var resultCases = []struct {
	name string
	res  Result
	json string
}{
	{
		"signal verdict",
		Result{Status: StatusSuccess, SessionID: "s", Winner: "left", Reason: "r", Video: VideoSummary{Frames: 2, FPS: 15, Width: 4, Height: 3, Codec: "MJPG"},
			Artifacts: Artifacts{Video: "/a/video.avi", Signal: "/a/signal.txt", ResultJSON: "/a/result.json"}, ArtifactDir: "/a", WallTimeSeconds: 0.5},
		`{"status":"success","session_id":"s","winner":"left","reason":"r","confidence":0,"phrase":null,` +
			`"video":{"frames":2,"fps":15,"width":4,"height":3,"codec":"MJPG"},` +
			`"artifacts":{"video":"/a/video.avi","signal":"/a/signal.txt","result_json":"/a/result.json"},"artifact_dir":"/a","wall_time_seconds":0.5}`,
	},
	{
		"analyzer extras",
		Result{Status: StatusSuccess, Winner: "simultaneous", Confidence: 0.25,
			StreamingStats: map[string]any{"frames_received": 3.0},
			Artifacts:      Artifacts{Extra: map[string]string{"timeline_png": "/a/timeline.png", "clip": "/a/clip.avi"}},
			Extra:          map[string]any{"timeline": []any{1.0, "x"}, "analyzer": "motion"}},
		`{"status":"success","session_id":"","winner":"simultaneous","reason":"","confidence":0.25,"phrase":null,` +
			`"video":{"frames":0,"fps":0,"width":0,"height":0,"codec":""},"streaming_stats":{"frames_received":3},` +
			`"artifacts":{"video":"","signal":"","result_json":"","clip":"/a/clip.avi","timeline_png":"/a/timeline.png"},` +
			`"artifact_dir":"","wall_time_seconds":0,"analyzer":"motion","timeline":[1,"x"]}`,
	},
}

func TestResultJSON(t *testing.T) {
	for _, tc := range resultCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := json.Marshal(tc.res)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.json {
				t.Errorf("marshal:\n%s\nwant:\n%s", got, tc.json)
			}
			var back Result
			if err := json.Unmarshal([]byte(tc.json), &back); err != nil {
				t.Fatal(err)
			}
			again, err := json.Marshal(back)
			if err != nil || string(again) != tc.json {
				t.Errorf("unmarshal and marshal again: %v\n%s", err, again)
			}
		})
	}

	clash := Result{Extra: map[string]any{"status": "failed"}}
	if _, err := json.Marshal(clash); err == nil || !strings.Contains(err.Error(), `extra key "status" is also a fixed key`) {
		t.Errorf("marshal of an Extra that replaces a field = %v, want an error", err)
	}
	var bad Result
	if err := json.Unmarshal([]byte(`{"winner":3}`), &bad); err == nil {
		t.Error("unmarshal of a number into winner succeeded")
	}
}

func FuzzResultJSON(f *testing.F) {
	for _, tc := range resultCases {
		f.Add([]byte(tc.json))
	}
	f.Add([]byte(`{"artifacts":{"x":1}}`))
	f.Add([]byte(`{"extra":{"a":[null,true]},"phrase":{"phrase":3,"events":[]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Result
		if json.Unmarshal(data, &r) != nil {
			return
		}
		first, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("a result read from %q does not marshal: %v", data, err)
		}
		var r2 Result
		if err := json.Unmarshal(first, &r2); err != nil {
			t.Fatalf("marshalled result %s does not read back: %v", first, err)
		}
		second, err := json.Marshal(r2)
		if err != nil || !bytes.Equal(first, second) {
			t.Fatalf("marshal is not stable:\n%s\n%s", first, second)
		}
	})
}

func TestWriteResultAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ResultFileName)
	res := resultCases[0].res
	// WriteResult syncs the files the result names first: they must be.
	res.Artifacts.Video, res.Artifacts.Signal = filepath.Join(dir, "video.avi"), filepath.Join(dir, SignalFileName)
	res.Artifacts.Extra = map[string]string{"overlay": filepath.Join(dir, "overlay.avi")}
	for _, p := range []string{res.Artifacts.Video, res.Artifacts.Signal, res.Artifacts.Extra["overlay"]} {
		if err := os.WriteFile(p, []byte("artifact"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteResult(path, &res); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.MarshalIndent(&res, "", "  ")
	if !bytes.Equal(data, append(want, '\n')) {
		t.Errorf("result.json:\n%s", data)
	}

	// A result.json that cannot be replaced: the error says so and the
	// temporary file is gone.
	blocked := t.TempDir()
	target := filepath.Join(blocked, ResultFileName)
	if err := os.MkdirAll(filepath.Join(target, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	err = WriteResult(target, &res)
	if want := "write result.json: " + target + " is a directory: give a file name"; err == nil || err.Error() != want {
		t.Errorf("WriteResult over a directory = %v, want %q", err, want)
	}
	// An artifact the result names that is not there: no result.json.
	if err := os.Remove(res.Artifacts.Extra["overlay"]); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	err = WriteResult(path, &res)
	if err == nil || !strings.HasPrefix(err.Error(), "write result.json: the artifacts it names: open "+res.Artifacts.Extra["overlay"]) {
		t.Errorf("WriteResult naming a missing artifact = %v", err)
	}
	if _, serr := os.Stat(path); !os.IsNotExist(serr) {
		t.Errorf("a result.json naming a missing artifact was written: %v", serr)
	}
	entries, _ := os.ReadDir(blocked)
	if len(entries) != 1 {
		t.Errorf("%d entries left in the directory, want only the blocking one", len(entries))
	}
}

func TestRunStaleResultUnremovable(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, ResultFileName, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	job := Job{SessionID: "s", FPS: 15, Width: 64, Height: 48, ArtifactDir: dir, Signal: readLog(t, logSingleLeft),
		Frames: &counterSource{t: t, n: 2, width: 64, height: 48, encoding: protocol.EncodingJPEG}}
	_, err := Run(t.Context(), job, nil)
	want := "prepare: remove the result.json of an earlier run: remove " + filepath.Join(dir, ResultFileName) + ": directory not empty"
	if err == nil || err.Error() != want {
		t.Errorf("Run = %v, want %q", err, want)
	}
}

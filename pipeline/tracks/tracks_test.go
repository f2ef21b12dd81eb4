package tracks

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pose17 is a JSON pose with 17 [x, y] keypoints.
var pose17 = "[" + strings.TrimSuffix(strings.Repeat("[1.5,2.25],", 17), ",") + "]"

// cases feed the parse, round-trip and fuzz tests: each is a file and
// the error it must give (nil for a valid file).
var cases = []struct {
	name string
	data string
	err  error
	msg  string
}{
	{"metres", `{"format":"referee-tracks/1","fps":15,"units":"m","keypoints":"coco17","left":[` + pose17 + `,null],"right":[null,` + pose17 + `]}`, nil, ""},
	{"pixels with scale and scores", `{"format":"referee-tracks/1","fps":30,"units":"px","m_per_px":0.004,"left":[[` +
		strings.TrimSuffix(strings.Repeat("[640.5,360,0.9],", 16), ",") + `,null]],"right":[` + pose17 + `]}`, nil, ""},
	{"no frames", `{"format":"referee-tracks/1","fps":15,"units":"m","left":[],"right":[]}`, nil, ""},
	{"not json", "Phrase 9 initialized at 2025-10-20 21:03:29\n", ErrNotTracks, "not a referee-tracks/1 file: not a JSON object"},
	{"other json", `{"winner":"left"}`, ErrNotTracks, `not a referee-tracks/1 file: it has no "format" field`},
	{"other format", `{"format":"referee-tracks/2","fps":15}`, ErrNotTracks, `not a referee-tracks/1 file: its format is "referee-tracks/2"`},
	{"cut short", `{"format":"referee-tracks/1","fps":15,"units":"m","left":[` + pose17, ErrMalformed, "malformed tracks file: invalid JSON"},
	{"no fps", `{"format":"referee-tracks/1","units":"m","left":[],"right":[]}`, ErrMalformed, `malformed tracks file: it has no "fps" field`},
	{"zero fps", `{"format":"referee-tracks/1","fps":0,"units":"m","left":[],"right":[]}`, ErrMalformed, "malformed tracks file: fps 0 is not a positive number"},
	{"negative fps", `{"format":"referee-tracks/1","fps":-15,"units":"m","left":[],"right":[]}`, ErrMalformed, "malformed tracks file: fps -15 is not a positive number"},
	{"fps a string", `{"format":"referee-tracks/1","fps":"15","units":"m","left":[],"right":[]}`, ErrMalformed, "malformed tracks file: json: cannot unmarshal string"},
	{"fps too high", `{"format":"referee-tracks/1","fps":1e300,"units":"m","left":[],"right":[]}`, ErrMalformed, "malformed tracks file: fps 1e+300 is out of range: a frame rate is 0.01 to 1000"},
	{"coordinate out of range", `{"format":"referee-tracks/1","fps":15,"units":"m","left":[[` +
		strings.TrimSuffix(strings.Repeat("[1e200,2],", 17), ",") + `]],"right":[null]}`, ErrMalformed, "malformed tracks file: left frame 0 keypoint 0: coordinates must be numbers within ±1e+06"},
	{"unknown units", `{"format":"referee-tracks/1","fps":15,"units":"ft","left":[],"right":[]}`, ErrMalformed, `malformed tracks file: units "ft": want "m" or "px"`},
	{"unequal lengths", `{"format":"referee-tracks/1","fps":15,"units":"m","left":[null,null],"right":[null]}`, ErrMalformed, "malformed tracks file: left has 2 frames and right 1; both need one entry per frame"},
	{"no right", `{"format":"referee-tracks/1","fps":15,"units":"m","left":[]}`, ErrMalformed, `malformed tracks file: it needs both a "left" and a "right" array`},
	{"16 keypoints", `{"format":"referee-tracks/1","fps":15,"units":"m","left":[null],"right":[[` +
		strings.TrimSuffix(strings.Repeat("[1,2],", 16), ",") + `]]}`, ErrMalformed, "malformed tracks file: right frame 0: 16 keypoints: want 17 (COCO order)"},
	{"bad keypoint", `{"format":"referee-tracks/1","fps":15,"units":"m","left":[[` +
		strings.TrimSuffix(strings.Repeat("[1],", 17), ",") + `]],"right":[null]}`, ErrMalformed, "malformed tracks file: left frame 0: keypoint 0: want null, [x, y] or [x, y, score]"},
	{"score above 1", `{"format":"referee-tracks/1","fps":15,"units":"m","left":[[` +
		strings.TrimSuffix(strings.Repeat("[1,2,1.5],", 17), ",") + `]],"right":[null]}`, ErrMalformed, "malformed tracks file: left frame 0: keypoint 0: score 1.5 is not within 0..1"},
	{"frame an object", `{"format":"referee-tracks/1","fps":15,"units":"m","left":[{}],"right":[null]}`, ErrMalformed, "malformed tracks file: left frame 0: a frame must be null or an array of 17 keypoints"},
	{"other keypoints", `{"format":"referee-tracks/1","fps":15,"units":"m","keypoints":"body25","left":[],"right":[]}`, ErrMalformed, `malformed tracks file: keypoints "body25": only "coco17" is known`},
}

func TestParse(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, err := Parse([]byte(c.data))
			if c.err == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if len(tr.Left) != len(tr.Right) {
					t.Fatalf("left %d frames, right %d", len(tr.Left), len(tr.Right))
				}
				return
			}
			if !errors.Is(err, c.err) || !strings.HasPrefix(err.Error(), c.msg) {
				t.Fatalf("Parse error %v, want %v starting %q", err, c.err, c.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestParseReadsKeypoints(t *testing.T) {
	tr, err := Parse([]byte(cases[1].data))
	if err != nil {
		t.Fatal(err)
	}
	l := tr.Left[0]
	if tr.Units != UnitsPixels || tr.MetresPerPixel != 0.004 || tr.FPS != 30 {
		t.Errorf("header %+v", tr)
	}
	if !l[Nose].Seen || l[Nose].X != 640.5 || l[Nose].Y != 360 || l[Nose].Score != 0.9 {
		t.Errorf("nose %+v", l[Nose])
	}
	if l[RightAnkle].Seen {
		t.Errorf("right ankle %+v, want unseen", l[RightAnkle])
	}
	r := tr.Right[0]
	if !r[LeftHip].Seen || !math.IsNaN(r[LeftHip].Score) {
		t.Errorf("an [x, y] keypoint gives %+v, want seen with a NaN score", r[LeftHip])
	}
	if m, ok := tr.ToMetres(); !ok || m != 0.004 {
		t.Errorf("ToMetres %v %v", m, ok)
	}
}

// TestRoundTrip writes every valid case and reads it back unchanged.
func TestRoundTrip(t *testing.T) {
	for _, c := range cases {
		if c.err != nil {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			a, err := Parse([]byte(c.data))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "tracks.json")
			if err := WriteFile(path, a); err != nil {
				t.Fatal(err)
			}
			b, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			sameTracks(t, a, b)
		})
	}
}

func sameTracks(t *testing.T, a, b *Tracks) {
	t.Helper()
	if a.FPS != b.FPS || a.Units != b.Units || a.MetresPerPixel != b.MetresPerPixel || a.Source != b.Source || a.Frames() != b.Frames() {
		t.Fatalf("header %+v, want %+v", b, a)
	}
	for i := range a.Frames() {
		for _, s := range [][2]*Pose{{a.Left[i], b.Left[i]}, {a.Right[i], b.Right[i]}} {
			if (s[0] == nil) != (s[1] == nil) {
				t.Fatalf("frame %d: found %v, want %v", i, s[1] != nil, s[0] != nil)
			}
			if s[0] == nil {
				continue
			}
			for k := range NumKeypoints {
				x, y := s[0][k], s[1][k]
				if x.Seen != y.Seen || x.X != y.X || x.Y != y.Y || (x.Score != y.Score && !(math.IsNaN(x.Score) && math.IsNaN(y.Score))) {
					t.Fatalf("frame %d keypoint %d: %+v, want %+v", i, k, y, x)
				}
			}
		}
	}
}

func TestReadFileOfTheSharedPhrases(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "testdata", "tracks")
	paths, err := filepath.Glob(filepath.Join(dir, "*.tracks.json"))
	if err != nil || len(paths) != 113 {
		t.Fatalf("want the 113 shared phrases in %s: %d found (%v)", dir, len(paths), err)
	}
	for _, p := range paths[:5] {
		tr, err := ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if tr.FPS != 15 || tr.Units != UnitsMetres || tr.Frames() < 10 || tr.Left[0] == nil || !tr.Left[0][LeftHip].Seen {
			t.Errorf("%s: %+v", p, tr)
		}
	}
}

func TestReadFileMissing(t *testing.T) {
	_, err := ReadFile(filepath.Join(t.TempDir(), "none.json"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("error %v, want not exist", err)
	}
}

func TestWriteFileRefusesInvalidTracks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tracks.json")
	err := WriteFile(path, &Tracks{FPS: 15, Units: UnitsMetres, Left: make([]*Pose, 2), Right: make([]*Pose, 1)})
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("error %v, want ErrMalformed", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused write left %s (%v)", path, err)
	}
}

// FuzzParse checks that Parse never panics, and that whatever it accepts
// writes and reads back unchanged.
func FuzzParse(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c.data))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotTracks) {
				t.Fatalf("error %v wraps neither sentinel", err)
			}
			return
		}
		out, err := a.MarshalJSON()
		if err != nil {
			t.Fatalf("accepted tracks do not marshal: %v", err)
		}
		b, err := Parse(out)
		if err != nil {
			t.Fatalf("written tracks do not parse: %v\n%s", err, out)
		}
		if a.Frames() != b.Frames() || a.Units != b.Units {
			t.Fatalf("round trip changed the tracks")
		}
	})
}

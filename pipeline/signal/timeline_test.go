package signal

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestWriteTimeline(t *testing.T) {
	tests := []struct {
		name  string
		input func(t *testing.T) []byte
		fps   float64
		want  string
	}{
		{
			name:  "single light with the opposite-side hit text",
			input: func(t *testing.T) []byte { return readSample(t, sampleSingle) },
			fps:   30,
			want: `Phrase 119, initialized at 2026-02-04 21:32:17
Recording started at 2026-02-04 21:32:17

Events (time in seconds from the start of the recording, video frame at 30 fps):
     time   frame  what happened
   0.000s       0  recording started
   2.587s      78  blades touched (blade-to-blade contact, no light)
   3.198s      96  valid hit registered (box text: "HIT: Left scores on Right!")
   3.253s      98  lockout started: the other fencer has 0.200 s to hit as well
   3.442s     103  recording ended

Box verdict: left light (red) off, right light (green) ON
Touch: right scores (only the right light, green)
Referee's decision: right fencer (green)

Note: the box's hit line names the left fencer, but only the right light came on.
The box's hit text names the opposite side in single-light phrases; its lights are the verdict.
`,
		},
		{
			name:  "double without decision, contacts after the end, 29.97 fps",
			input: func(t *testing.T) []byte { return readSample(t, sampleOldFormat) },
			fps:   29.97,
			want: `Phrase 34, initialized at 2025-10-17 20:52:43
Recording started at 2025-10-17 20:52:43

Events (time in seconds from the start of the recording, video frame at 29.97 fps):
     time   frame  what happened
   0.001s       0  recording started
   1.649s      49  blades touched (blade-to-blade contact, no light)
   6.135s     184  valid hit registered (box text: "HIT: Left scores on Right!")
   6.158s     185  lockout started: the other fencer has 0.200 s to hit as well
   6.283s     188  both lights on: the box saw both hits
   6.349s     190  recording ended
   6.429s     193  blades touched (blade-to-blade contact, no light) [after the recording ended]
   6.491s     195  blades touched (blade-to-blade contact, no light) [after the recording ended]

Box verdict: left light (red) ON, right light (green) ON
Touch: double (both lights): in foil and sabre, right-of-way decides
Referee's decision: none recorded
`,
		},
		{
			name: "abstain, no recording start, unknown event",
			input: func(t *testing.T) []byte {
				return []byte("Phrase 3 initialized at 2026-01-01 10:00:00\n 0.250s | Referee halt\n12.5s | Lockout period started\nScores -> Fencer 1: MISS, Fencer 2: MISS\nManual selection winner: Abstain")
			},
			fps: 10,
			want: `Phrase 3, initialized at 2026-01-01 10:00:00
Recording start: not in the log

Events (time in seconds from the start of the recording, video frame at 10 fps):
     time   frame  what happened
   0.250s       3  box note: "Referee halt"
  12.500s     125  lockout started: the other fencer has a short window to hit as well

Box verdict: left light (red) off, right light (green) off
Touch: none (no light)
Referee's decision: abstain (no touch awarded)
`,
		},
		{
			name:  "nothing but a header",
			input: func(t *testing.T) []byte { return []byte("Phrase 4 initialized\n") },
			fps:   25,
			want: `Phrase 4
Recording start: not in the log

The log has no timed events.

Box verdict: not in the log (no Scores or Interpretation line)
Touch: unknown
Referee's decision: none recorded
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.input(t))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var b strings.Builder
			if err := WriteTimeline(&b, p, tc.fps); err != nil {
				t.Fatalf("WriteTimeline: %v", err)
			}
			if b.String() != tc.want {
				t.Errorf("WriteTimeline\n got:\n%s\nwant:\n%s", b.String(), tc.want)
			}
		})
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteTimelineErrors(t *testing.T) {
	p, err := Parse(readSample(t, sampleDouble))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, tc := range []struct {
		fps   float64
		shown string
	}{{0, "0"}, {-30, "-30"}, {math.NaN(), "NaN"}, {math.Inf(1), "+Inf"}} {
		err := WriteTimeline(&b, p, tc.fps)
		want := "write timeline: frame rate " + tc.shown + " fps is not a positive number; check the video's frame rate"
		if err == nil || err.Error() != want {
			t.Errorf("fps %v: error\n got: %v\nwant: %s", tc.fps, err, want)
		}
	}
	if err := WriteTimeline(&b, nil, 30); err == nil || err.Error() != "write timeline: no phrase to report" {
		t.Errorf("nil phrase: error %v", err)
	}
	if b.Len() != 0 {
		t.Errorf("a refused timeline wrote %q", b.String())
	}
	diskFull := errors.New("no space left on device")
	err = WriteTimeline(failingWriter{diskFull}, p, 30)
	if !errors.Is(err, diskFull) || err.Error() != "write timeline: no space left on device" {
		t.Errorf("failing writer: error %v", err)
	}
}

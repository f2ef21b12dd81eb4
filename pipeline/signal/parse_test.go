package signal

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf16"
)

// sampleWant returns, freshly built, what Parse must read from a sample.
func sampleWant(tb testing.TB, name string) *Phrase {
	tb.Helper()
	started := func(t float64) Event {
		return Event{TimeS: t, Kind: EventRecordingStarted, Text: "Phrase recording started"}
	}
	ended := func(t float64) Event {
		return Event{TimeS: t, Kind: EventRecordingEnded, Text: "Phrase recording ended"}
	}
	blade := func(t float64) Event {
		return Event{TimeS: t, Kind: EventBladeContact, Text: "Off-Target: Blade-to-blade contact."}
	}
	hit := func(t float64, side, text string) Event {
		return Event{TimeS: t, Kind: EventHit, Side: side, Text: text}
	}
	both := func(t float64) Event {
		return Event{TimeS: t, Kind: EventSimultaneousHit, Text: "HIT: Simultaneous valid hits!"}
	}
	lockout := func(t float64) Event {
		return Event{TimeS: t, Kind: EventLockoutStarted, Text: "Lockout period started (0.200s window)"}
	}
	switch name {
	case sampleSingle:
		return &Phrase{
			Phrase: ptr(119), RecordingStartS: ptr(0.0), RecordingEndS: ptr(3.442),
			BladeContactsS: []float64{2.587}, FirstHitS: ptr(3.198), LockoutStartS: ptr(3.253),
			Box: &Box{Left: false, Right: true}, Touch: ptr("right"), RefereeDecision: ptr("right"),
			InitializedAt: "2026-02-04 21:32:17", RecordingStartedAt: "2026-02-04 21:32:17", LockoutWindowS: ptr(0.2),
			Events: []Event{started(0), blade(2.587), hit(3.198, "left", "HIT: Left scores on Right!"), lockout(3.253), ended(3.442)},
		}
	case sampleDouble:
		return &Phrase{
			Phrase: ptr(9), RecordingStartS: ptr(0.001), RecordingEndS: ptr(1.58),
			BladeContactsS: []float64{1.171}, FirstHitS: ptr(1.291), SimultaneousHitS: ptr(1.537), LockoutStartS: ptr(1.316),
			Box: &Box{Left: true, Right: true}, Touch: ptr("double"), RefereeDecision: ptr("left"),
			InitializedAt: "2025-10-20 21:03:29", RecordingStartedAt: "2025-10-20 21:03:29", LockoutWindowS: ptr(0.2),
			Events: []Event{started(0.001), blade(1.171), hit(1.291, "right", "HIT: Right scores on Left!"), lockout(1.316), both(1.537), ended(1.58)},
		}
	case sampleAbstain:
		return &Phrase{
			Phrase: ptr(107), RecordingStartS: ptr(0.0), RecordingEndS: ptr(1.04),
			BladeContactsS: []float64{}, FirstHitS: ptr(0.788), SimultaneousHitS: ptr(0.788), LockoutStartS: ptr(0.853),
			Box: &Box{Left: true, Right: true}, Touch: ptr("double"), RefereeDecision: ptr("abstain"),
			InitializedAt: "2025-11-06 21:13:50", RecordingStartedAt: "2025-11-06 21:13:50", LockoutWindowS: ptr(0.2),
			Events: []Event{started(0), both(0.788), lockout(0.853), ended(1.04)},
		}
	case sampleNoStart:
		return &Phrase{
			Phrase: ptr(2), RecordingEndS: ptr(13.026),
			BladeContactsS: []float64{10.088, 11.14}, FirstHitS: ptr(12.77), SimultaneousHitS: ptr(12.77), LockoutStartS: ptr(12.837),
			Box: &Box{Left: true, Right: true}, Touch: ptr("double"), RefereeDecision: ptr("right"),
			InitializedAt: "2026-01-27 19:43:21", LockoutWindowS: ptr(0.2),
			Events: []Event{
				blade(10.088), blade(11.14), both(12.77),
				hit(12.77, "right", "HIT: Right scores on Left! (simultaneous)"),
				hit(12.77, "left", "HIT: Left scores on Right! (simultaneous)"),
				lockout(12.837), ended(13.026),
			},
		}
	case sampleOldFormat:
		return &Phrase{
			Phrase: ptr(34), RecordingStartS: ptr(0.001), RecordingEndS: ptr(6.349),
			BladeContactsS: []float64{1.649, 6.429, 6.491}, FirstHitS: ptr(6.135), SimultaneousHitS: ptr(6.283), LockoutStartS: ptr(6.158),
			Box: &Box{Left: true, Right: true}, Touch: ptr("double"),
			InitializedAt: "2025-10-17 20:52:43", RecordingStartedAt: "2025-10-17 20:52:43", LockoutWindowS: ptr(0.2),
			Events: []Event{
				started(0.001), blade(1.649), hit(6.135, "left", "HIT: Left scores on Right!"), lockout(6.158),
				both(6.283), ended(6.349), blade(6.429), blade(6.491),
			},
		}
	}
	tb.Fatalf("no expectation for sample %s", name)
	return nil
}

func assertPhrase(t *testing.T, got, want *Phrase) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("phrase differs\n got: %s\nwant: %s", mustJSON(t, got), mustJSON(t, want))
	}
}

func TestParseSamples(t *testing.T) {
	for _, name := range sampleNames {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(readSample(t, name))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			assertPhrase(t, got, sampleWant(t, name))
		})
	}
}

// editLines applies f to every line of a sample.
func editLines(data []byte, f func(string) string) []byte {
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		lines[i] = f(l)
	}
	return []byte(strings.Join(lines, "\n"))
}

func TestParseQuirks(t *testing.T) {
	same := func(name string) func(*testing.T) *Phrase {
		return func(t *testing.T) *Phrase { return sampleWant(t, name) }
	}
	tests := []struct {
		name  string
		input func(t *testing.T) []byte
		want  func(t *testing.T) *Phrase
	}{
		{
			name: "CRLF line endings",
			input: func(t *testing.T) []byte {
				return bytes.ReplaceAll(readSample(t, sampleDouble), []byte("\n"), []byte("\r\n"))
			},
			want: same(sampleDouble),
		},
		{
			name: "CR line endings",
			input: func(t *testing.T) []byte {
				return bytes.ReplaceAll(readSample(t, sampleSingle), []byte("\n"), []byte("\r"))
			},
			want: same(sampleSingle),
		},
		{
			name:  "UTF-8 byte order mark",
			input: func(t *testing.T) []byte { return append([]byte("\uFEFF"), readSample(t, sampleSingle)...) },
			want:  same(sampleSingle),
		},
		{
			name: "byte order mark and CRLF",
			input: func(t *testing.T) []byte {
				return append([]byte("\uFEFF"), bytes.ReplaceAll(readSample(t, sampleNoStart), []byte("\n"), []byte("\r\n"))...)
			},
			want: same(sampleNoStart),
		},
		{
			name: "tabs, extra spaces and blank lines",
			input: func(t *testing.T) []byte {
				return editLines(readSample(t, sampleDouble), func(l string) string {
					l = strings.Replace(l, "s | ", " s\t|\t ", 1)
					l = strings.Replace(l, "->", "  ->  ", 1)
					return "\t  " + l + " \t\n"
				})
			},
			want: same(sampleDouble),
		},
		{
			name: "no leading space before times",
			input: func(t *testing.T) []byte {
				return editLines(readSample(t, sampleOldFormat), func(l string) string { return strings.TrimLeft(l, " ") })
			},
			want: same(sampleOldFormat),
		},
		{
			name: "glued second log without newline",
			input: func(t *testing.T) []byte {
				data := glued(t)
				if !bytes.Contains(data, []byte("winner: AbstainPhrase 9 initialized")) {
					t.Fatal("the glued input does not reproduce the quirk")
				}
				return data
			},
			want: same(sampleAbstain),
		},
		{
			name:  "glued with CRLF",
			input: func(t *testing.T) []byte { return bytes.ReplaceAll(glued(t), []byte("\n"), []byte("\r\n")) },
			want:  same(sampleAbstain),
		},
		{
			name: "times with one to four decimals",
			input: func(t *testing.T) []byte {
				return []byte("Phrase 5 initialized at 2026-01-01 10:00:00\n" +
					"0.1234s | Phrase recording started\n" +
					" 2.5s | HIT: Right scores on Left!\n" +
					" 2.52s | Lockout period started (0.2s window)\n" +
					"3s | Phrase recording ended\n" +
					"Scores -> Fencer 1: MISS, Fencer 2: HIT\n")
			},
			want: func(t *testing.T) *Phrase {
				return &Phrase{
					Phrase: ptr(5), RecordingStartS: ptr(0.1234), RecordingEndS: ptr(3.0),
					BladeContactsS: []float64{}, FirstHitS: ptr(2.5), LockoutStartS: ptr(2.52),
					Box: &Box{Left: true}, Touch: ptr("left"),
					InitializedAt: "2026-01-01 10:00:00", LockoutWindowS: ptr(0.2),
					Events: []Event{
						{TimeS: 0.1234, Kind: EventRecordingStarted, Text: "Phrase recording started"},
						{TimeS: 2.5, Kind: EventHit, Side: "right", Text: "HIT: Right scores on Left!"},
						{TimeS: 2.52, Kind: EventLockoutStarted, Text: "Lockout period started (0.2s window)"},
						{TimeS: 3, Kind: EventRecordingEnded, Text: "Phrase recording ended"},
					},
				}
			},
		},
		{
			name: "unknown events, other case, events after the end",
			input: func(t *testing.T) []byte {
				return []byte("Phrase 6 initialized at 2026-01-01 10:00:00\n" +
					" 0.000s | PHRASE RECORDING STARTED\n" +
					" 0.500s | Referee halt: equipment check\n" +
					" 0.900s | hit: left scores on right!\n" +
					" 1.000s | Phrase recording ended\n" +
					" 1.100s | Off-Target: blade to blade contact\n" +
					" 1.200s |\n" +
					"Scores -> Fencer 1: hit, Fencer 2: miss\n")
			},
			want: func(t *testing.T) *Phrase {
				return &Phrase{
					Phrase: ptr(6), RecordingStartS: ptr(0.0), RecordingEndS: ptr(1.0),
					BladeContactsS: []float64{1.1}, FirstHitS: ptr(0.9),
					Box: &Box{Right: true}, Touch: ptr("right"),
					InitializedAt: "2026-01-01 10:00:00",
					Events: []Event{
						{TimeS: 0, Kind: EventRecordingStarted, Text: "PHRASE RECORDING STARTED"},
						{TimeS: 0.5, Kind: EventOther, Text: "Referee halt: equipment check"},
						{TimeS: 0.9, Kind: EventHit, Side: "left", Text: "hit: left scores on right!"},
						{TimeS: 1, Kind: EventRecordingEnded, Text: "Phrase recording ended"},
						{TimeS: 1.1, Kind: EventBladeContact, Text: "Off-Target: blade to blade contact"},
						{TimeS: 1.2, Kind: EventOther, Text: ""},
					},
				}
			},
		},
		{
			name:  "only a Scores line, no light",
			input: func(t *testing.T) []byte { return []byte("Scores -> Fencer 1: MISS, Fencer 2: MISS\n") },
			want: func(t *testing.T) *Phrase {
				return &Phrase{BladeContactsS: []float64{}, Box: &Box{}, Touch: ptr("none"), Events: []Event{}}
			},
		},
		{
			name:  "only a header",
			input: func(t *testing.T) []byte { return []byte("Phrase 12 initialized") },
			want: func(t *testing.T) *Phrase {
				return &Phrase{Phrase: ptr(12), BladeContactsS: []float64{}, Events: []Event{}}
			},
		},
		{
			name: "no Scores line: box from Interpretation",
			input: func(t *testing.T) []byte {
				return editLines(readSample(t, sampleSingle), func(l string) string {
					if strings.HasPrefix(l, "Scores") {
						return ""
					}
					return l
				})
			},
			want: same(sampleSingle),
		},
		{
			name: "unreadable Scores line: box from Interpretation",
			input: func(t *testing.T) []byte {
				return bytes.Replace(readSample(t, sampleSingle), []byte("Fencer 2: MISS"), []byte("Fencer 2: ???"), 1)
			},
			want: same(sampleSingle),
		},
		{
			name: "Scores line wins over Interpretation",
			input: func(t *testing.T) []byte {
				return bytes.Replace(readSample(t, sampleSingle), []byte("Right Fencer: HIT, Left Fencer: MISS"), []byte("Right Fencer: MISS, Left Fencer: HIT"), 1)
			},
			want: same(sampleSingle),
		},
		{
			name: "no box verdict at all",
			input: func(t *testing.T) []byte {
				return editLines(readSample(t, sampleSingle), func(l string) string {
					if strings.Contains(l, "->") {
						return ""
					}
					return l
				})
			},
			want: func(t *testing.T) *Phrase {
				p := sampleWant(t, sampleSingle)
				p.Box, p.Touch = nil, nil
				return p
			},
		},
		{
			name: "the last decision line counts, remote referee lines do not",
			input: func(t *testing.T) []byte {
				return append(readSample(t, sampleDouble), []byte(
					"[2025-10-20 21:03:40] Confirmed result winner: Right Fencer (Green Lamp)\n"+
						"[2025-10-20 21:03:41] Remote referee winner overrides manual selection: Left Fencer (Red Lamp)\n"+
						"[2025-10-20 21:03:41] Remote referee status=SUCCESS, winner=left | Winner: Left Fencer (Red Lamp)\n"+
						"[2025-10-20 21:03:41] Remote referee winner: Left Fencer (Red Lamp)\n"+
						"Winner: Left\n"+
						"[2025-10-20 21:03:42] Manual selection winner: nobody\n")...)
			},
			want: func(t *testing.T) *Phrase {
				p := sampleWant(t, sampleDouble)
				p.RefereeDecision = ptr("right")
				return p
			},
		},
		{
			name: "lockout window from the Lockout active line when no event has one",
			input: func(t *testing.T) []byte {
				return bytes.Replace(readSample(t, sampleDouble), []byte("started (0.200s window)"), []byte("started"), 1)
			},
			want: func(t *testing.T) *Phrase {
				p := sampleWant(t, sampleDouble)
				p.LockoutWindowS = ptr(0.13)
				p.Events[3].Text = "Lockout period started"
				return p
			},
		},
		{
			name: "overlong numbers are not events",
			input: func(t *testing.T) []byte {
				return []byte("Phrase 1234567890 initialized\n" + strings.Repeat("9", 400) + "s | HIT: Right scores on Left!\n" +
					"Scores -> Fencer 1: HIT, Fencer 2: MISS\n")
			},
			want: func(t *testing.T) *Phrase {
				return &Phrase{BladeContactsS: []float64{}, Box: &Box{Right: true}, Touch: ptr("right"), Events: []Event{}}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.input(t))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			assertPhrase(t, got, tc.want(t))
		})
	}
}

// errorCases feeds TestParseErrors and the fuzz seed corpus.
var errorCases = []struct {
	name     string
	input    []byte
	sentinel error
	msg      string
}{
	{"empty", []byte{}, ErrEmpty, "signal file is empty: 0 bytes"},
	{"whitespace only", []byte("\n \t\r\n"), ErrEmpty, "signal file is empty: 5 bytes of whitespace only"},
	{"byte order mark only", []byte("\uFEFF\n"), ErrEmpty, "signal file is empty: 4 bytes of whitespace only"},
	{
		"over 1 MiB", bytes.Repeat([]byte("a"), MaxSize+1), ErrTooLarge,
		"signal file is too large: 1048577 bytes, the limit is 1048576 (1 MiB); is it the phrase log (.txt) and not the video?",
	},
	{
		"NUL byte", []byte("Phrase 1\x00 initialized"), ErrBinary,
		"signal file is not text: NUL byte at offset 8; is it the phrase log (.txt) and not the video?",
	},
	{
		"JPEG header", []byte("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"), ErrBinary,
		"signal file is not text: invalid UTF-8 byte 0xFF at offset 0; is it the phrase log (.txt) and not the video?",
	},
	{
		"Latin-1 text", []byte("Phrase 1 initialized at caf\xE9\n"), ErrBinary,
		"signal file is not text: invalid UTF-8 byte 0xE9 at offset 27; is it the phrase log (.txt) and not the video?",
	},
	{
		"UTF-16 export", utf16LE("\uFEFFPhrase 1 initialized at 2025-10-20 21:03:29\n"), ErrBinary,
		"signal file is not text: UTF-16 byte order mark FF FE at the start; save the log as UTF-8",
	},
	{
		"prose", []byte("Dear club,\nthe scoring box is broken again.\nScores of people | complained.\nPhrase ended\n"), ErrNotPhraseLog,
		`signal file is not a scoring-box phrase log: no "Phrase N initialized" line, no timed "<seconds>s | <event>" line and no "Scores ->" or "Interpretation ->" line; is it the box's phrase log?`,
	},
}

func utf16LE(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

func TestParseErrors(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.input)
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("Parse error = %v, want %v", err, tc.sentinel)
			}
			if err.Error() != tc.msg {
				t.Errorf("Parse error\n got: %s\nwant: %s", err, tc.msg)
			}
			if p != nil {
				t.Errorf("Parse returned a phrase with its error: %+v", p)
			}
		})
	}
}

func TestParseSizeLimitIsInclusive(t *testing.T) {
	data := readSample(t, sampleDouble)
	data = append(data, bytes.Repeat([]byte(" "), MaxSize-len(data))...)
	got, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse of exactly MaxSize bytes: %v", err)
	}
	assertPhrase(t, got, sampleWant(t, sampleDouble))
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	t.Run("sample", func(t *testing.T) {
		got, err := ParseFile(filepath.Join("..", "..", "testdata", "signal", sampleNoStart))
		if err != nil {
			t.Fatalf("ParseFile: %v", err)
		}
		assertPhrase(t, got, sampleWant(t, sampleNoStart))
	})

	t.Run("missing", func(t *testing.T) {
		path := filepath.Join(dir, "nope.txt")
		p, err := ParseFile(path)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("ParseFile error = %v, want fs.ErrNotExist", err)
		}
		if want := "signal file: open " + path + ": no such file or directory"; err.Error() != want {
			t.Errorf("ParseFile error\n got: %s\nwant: %s", err, want)
		}
		if p != nil {
			t.Errorf("ParseFile returned a phrase with its error")
		}
	})

	t.Run("directory", func(t *testing.T) {
		_, err := ParseFile(dir)
		if want := "signal file " + dir + " is a directory; give the phrase log (.txt) itself"; err == nil || err.Error() != want {
			t.Errorf("ParseFile error\n got: %v\nwant: %s", err, want)
		}
	})

	t.Run("too large, refused from its size", func(t *testing.T) {
		path := filepath.Join(dir, "video.mp4")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		// The size in the message comes from the stat: a refusal after
		// reading would say "more than 1048576 bytes".
		if err := f.Truncate(2 * MaxSize); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		_, err = ParseFile(path)
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("ParseFile error = %v, want ErrTooLarge", err)
		}
		want := path + ": signal file is too large: 2097152 bytes, the limit is 1048576 (1 MiB); is it the phrase log (.txt) and not the video?"
		if err.Error() != want {
			t.Errorf("ParseFile error\n got: %s\nwant: %s", err, want)
		}
	})

	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			path := write(strings.ReplaceAll(tc.name, " ", "_")+".txt", tc.input)
			p, err := ParseFile(path)
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("ParseFile error = %v, want %v", err, tc.sentinel)
			}
			if want := path + ": " + tc.msg; err.Error() != want {
				t.Errorf("ParseFile error\n got: %s\nwant: %s", err, want)
			}
			if p != nil {
				t.Errorf("ParseFile returned a phrase with its error")
			}
		})
	}
}

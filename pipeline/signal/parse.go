package signal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxSize is the largest phrase log accepted (1 MiB). Real logs are under
// 2 KiB; anything near the limit is the wrong file (usually the video).
const MaxSize = 1 << 20

// Sentinel errors returned, wrapped with context, by Parse and ParseFile.
// Callers test them with errors.Is.
var (
	// ErrEmpty means the file has no content, or only whitespace.
	ErrEmpty = errors.New("signal file is empty")
	// ErrTooLarge means the file is larger than MaxSize.
	ErrTooLarge = errors.New("signal file is too large")
	// ErrBinary means the file is not UTF-8 text: it holds a NUL byte or
	// an invalid UTF-8 sequence (a video, an image, a UTF-16 export).
	ErrBinary = errors.New("signal file is not text")
	// ErrNotPhraseLog means the file is text but has no line of the phrase
	// log format: no "Phrase N initialized" header, no timed
	// "<seconds>s | <event>" line, no "Scores ->" and no
	// "Interpretation ->" line.
	ErrNotPhraseLog = errors.New("signal file is not a scoring-box phrase log")
)

// EventKind classifies a timed event line.
type EventKind string

// The kinds of timed events Parse recognises. Any other event text is
// EventOther, kept with its raw text.
const (
	EventRecordingStarted EventKind = "recording_started" // "Phrase recording started"
	EventRecordingEnded   EventKind = "recording_ended"   // "Phrase recording ended"
	EventBladeContact     EventKind = "blade_contact"     // "Off-Target: Blade-to-blade contact."
	EventHit              EventKind = "hit"               // "HIT: Right scores on Left!", with or without "(simultaneous)"
	EventSimultaneousHit  EventKind = "simultaneous_hit"  // "HIT: Simultaneous valid hits!"
	EventLockoutStarted   EventKind = "lockout_started"   // "Lockout period started (0.200s window)"
	EventOther            EventKind = "other"             // anything else
)

// Box is the scoring box's verdict: which lights came on. Left is the left
// fencer's lamp (red), Right the right fencer's (green).
type Box struct {
	Left  bool `json:"left"`
	Right bool `json:"right"`
}

// Event is one timed line "<seconds>s | <text>" of a phrase log.
type Event struct {
	// TimeS is the time in seconds since the recording started, as written.
	TimeS float64 `json:"t_s"`
	// Kind classifies Text.
	Kind EventKind `json:"kind"`
	// Side is, for EventHit, the side the raw text names as scorer
	// ("left" or "right"), as written. In single-light phrases the box's
	// text names the opposite side from its lights; Side keeps the text's
	// word and the verdict is taken from Phrase.Box. Empty for other kinds.
	Side string `json:"side,omitempty"`
	// Text is the raw event text, surrounding whitespace removed.
	Text string `json:"text"`
}

// Phrase is what one phrase log says. The JSON names of the fields up to
// RefereeDecision are those of shared/testdata/phrases/expected.json; the
// rest are extras. Pointer fields are nil when the log does not say (JSON
// null, or omitted for the extras); slices are never nil.
type Phrase struct {
	// Phrase is N of the first "Phrase N initialized" line.
	Phrase *int `json:"phrase"`
	// RecordingStartS and RecordingEndS are the times of the first
	// "Phrase recording started" / "Phrase recording ended" events.
	RecordingStartS *float64 `json:"recording_start_s"`
	RecordingEndS   *float64 `json:"recording_end_s"`
	// BladeContactsS holds the time of every blade-to-blade contact, in
	// file order, including contacts written after the recording ended.
	BladeContactsS []float64 `json:"blade_contacts_s"`
	// FirstHitS is the time of the first "HIT:" event of any kind.
	FirstHitS *float64 `json:"first_hit_s"`
	// SimultaneousHitS is the time of the first "HIT: Simultaneous valid
	// hits!" event: the moment the box saw both lights.
	SimultaneousHitS *float64 `json:"simultaneous_hit_s"`
	// LockoutStartS is the time of the first "Lockout period started" event.
	LockoutStartS *float64 `json:"lockout_start_s"`
	// Box is the box's verdict from the "Scores ->" line, or from the
	// "Interpretation ->" line when the log has no readable Scores line.
	Box *Box `json:"box"`
	// Touch is derived from Box: "left", "right", "double" or "none".
	Touch *string `json:"touch"`
	// RefereeDecision is "left", "right" or "abstain" from the last
	// "Confirmed result winner:" or "Manual selection winner:" line. Remote
	// referee echoes and "Winner:" inside other lines do not count.
	RefereeDecision *string `json:"referee_decision"`

	// InitializedAt is the wall-clock time of the header, as written.
	InitializedAt string `json:"initialized_at,omitempty"`
	// RecordingStartedAt is the wall-clock time of the first
	// "Recording started at" line, as written.
	RecordingStartedAt string `json:"recording_started_at,omitempty"`
	// LockoutWindowS is the window of the first "Lockout period started
	// (<w>s window)" event, or of the "Lockout active (<w>s window)" line
	// when there is no such event. Older logs give 0.130 on the second and
	// 0.200 on the first.
	LockoutWindowS *float64 `json:"lockout_window_s,omitempty"`
	// Events holds every timed line of the first phrase, in file order.
	Events []Event `json:"events"`
}

const (
	sideLeft  = "left"
	sideRight = "right"

	touchDouble = "double"
	touchNone   = "none"

	decisionAbstain = "abstain"
)

// Patterns match within one line unless noted; \s never meets a newline
// there because text is split into lines first. The numeric groups are
// bounded so that strconv never overflows into Inf, which JSON can't encode.
var (
	// reHeader runs over the whole text to find where a glued second log
	// begins, even mid-line, so it allows only blanks and tabs as spaces.
	reHeader    = regexp.MustCompile(`(?i)phrase[ \t]+(\d{1,9})[ \t]+initiali[sz]ed`)
	reAt        = regexp.MustCompile(`(?i)^at\s+(.*)$`)
	reEvent     = regexp.MustCompile(`^(\d{1,9}(?:\.\d{1,9})?)\s*s\s*\|\s*(.*)$`)
	reStamp     = regexp.MustCompile(`^\[[^\]]*\]\s*`)
	reScores    = regexp.MustCompile(`(?i)^scores\s*->\s*(.*)$`)
	reFencerN   = regexp.MustCompile(`(?i)fencer\s*([12])\s*:\s*([a-z]+)`)
	reInterp    = regexp.MustCompile(`(?i)^interpretation\s*->\s*(.*)$`)
	reSideFence = regexp.MustCompile(`(?i)\b(left|right)\s+fencer\s*:\s*([a-z]+)`)
	reDecision  = regexp.MustCompile(`(?i)^(?:confirmed\s+result|manual\s+selection)\s+winner\s*:\s*(.*)$`)
	reRecAt     = regexp.MustCompile(`(?i)^recording\s+started\s+at\s+(.*)$`)
	reActive    = regexp.MustCompile(`(?i)^lockout\s+active\b`)
	reWindow    = regexp.MustCompile(`(?i)\(\s*(\d{1,9}(?:\.\d{1,9})?)\s*s\s+window\s*\)`)
	reHitPrefix = regexp.MustCompile(`^hit\s*:`)
	reHitSide   = regexp.MustCompile(`^hit\s*:\s*(left|right)\s+scores\b`)
)

// Parse reads a phrase log. Only the first phrase counts: a second log glued
// on, even without a newline, is cut off at its "Phrase N initialized".
// It accepts CRLF or CR line endings, a UTF-8 byte order mark, extra blanks
// and tabs, lines without the leading space, any number of decimals, unknown
// lines and events (kept as EventOther) and missing lines (nil fields).
// Errors wrap ErrTooLarge, ErrEmpty, ErrBinary or ErrNotPhraseLog, checked
// in that order. Parse never panics.
func Parse(data []byte) (*Phrase, error) {
	if len(data) > MaxSize {
		return nil, tooLarge(fmt.Sprintf("%d bytes", len(data)))
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: 0 bytes", ErrEmpty)
	}
	if err := checkText(data); err != nil {
		return nil, err
	}
	text := strings.TrimPrefix(string(data), "\uFEFF")
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("%w: %d bytes of whitespace only", ErrEmpty, len(data))
	}
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")

	p := &Phrase{BladeContactsS: []float64{}, Events: []Event{}}
	headers := reHeader.FindAllStringSubmatchIndex(text, 2)
	if len(headers) == 2 {
		text = text[:headers[1][0]]
	}
	if len(headers) > 0 {
		h := headers[0]
		n, err := strconv.Atoi(text[h[2]:h[3]])
		if err == nil {
			p.Phrase = &n
		}
		rest, _, _ := strings.Cut(text[h[1]:], "\n")
		if m := reAt.FindStringSubmatch(strings.TrimSpace(rest)); m != nil {
			p.InitializedAt = strings.TrimSpace(m[1])
		}
	}

	r := lineReader{p: p}
	for line := range strings.SplitSeq(text, "\n") {
		r.read(strings.TrimSpace(line))
	}
	if len(headers) == 0 && len(p.Events) == 0 && !r.verdictLine {
		return nil, fmt.Errorf(`%w: no "Phrase N initialized" line, no timed "<seconds>s | <event>" line and no "Scores ->" or "Interpretation ->" line; is it the box's phrase log?`, ErrNotPhraseLog)
	}
	if p.LockoutWindowS == nil {
		p.LockoutWindowS = r.activeWindow
	}
	p.Box = r.scoresBox
	if p.Box == nil {
		p.Box = r.interpBox
	}
	if p.Box != nil {
		t := touchOf(*p.Box)
		p.Touch = &t
	}
	return p, nil
}

// lineReader collects what the lines of one phrase say; the facts that
// need the whole log (box, lockout window) are settled by Parse at the end.
type lineReader struct {
	p                    *Phrase
	scoresBox, interpBox *Box     // first readable verdict of each kind
	verdictLine          bool     // a Scores or Interpretation line was seen
	activeWindow         *float64 // window of the first "Lockout active" line
}

func (r *lineReader) read(line string) {
	if line == "" {
		return
	}
	if ev, ok := parseEvent(line); ok {
		r.p.add(ev)
		return
	}
	body := reStamp.ReplaceAllString(line, "")
	if m := reScores.FindStringSubmatch(body); m != nil {
		r.verdictLine = true
		if b, ok := scoresVerdict(m[1]); ok && r.scoresBox == nil {
			r.scoresBox = b
		}
		return
	}
	if m := reInterp.FindStringSubmatch(body); m != nil {
		r.verdictLine = true
		if b, ok := interpretationVerdict(m[1]); ok && r.interpBox == nil {
			r.interpBox = b
		}
		return
	}
	if m := reDecision.FindStringSubmatch(body); m != nil {
		// Every decision line overwrites the last: the referee may correct
		// a selection, and the last one stands.
		if d, ok := decision(m[1]); ok {
			r.p.RefereeDecision = &d
		}
		return
	}
	if m := reRecAt.FindStringSubmatch(body); m != nil {
		if r.p.RecordingStartedAt == "" {
			r.p.RecordingStartedAt = strings.TrimSpace(m[1])
		}
		return
	}
	if reActive.MatchString(body) && r.activeWindow == nil {
		r.activeWindow = window(body)
	}
}

// ParseFile reads and parses the phrase log at path. It checks the size
// before reading, and never reads more than MaxSize+1 bytes even if the file
// grows meanwhile. Errors name the path and wrap the os error (so
// errors.Is(err, fs.ErrNotExist) holds for a missing file) or one of the
// sentinel errors of Parse.
func ParseFile(path string) (*Phrase, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("signal file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("signal file: %w", err)
	}
	if info.IsDir() {
		return nil, fmt.Errorf("signal file %s is a directory; give the phrase log (.txt) itself", path)
	}
	if info.Mode().IsRegular() && info.Size() > MaxSize {
		return nil, fmt.Errorf("%s: %w", path, tooLarge(fmt.Sprintf("%d bytes", info.Size())))
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("signal file: read %s: %w", path, err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s: %w", path, tooLarge(fmt.Sprintf("more than %d bytes", MaxSize)))
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

func tooLarge(size string) error {
	return fmt.Errorf("%w: %s, the limit is %d (1 MiB); is it the phrase log (.txt) and not the video?", ErrTooLarge, size, MaxSize)
}

// checkText rejects data that is not UTF-8 text, naming the first bad byte
// so the user can tell a video from a mis-encoded log.
func checkText(data []byte) error {
	if len(data) >= 2 && (data[0] == 0xFF && data[1] == 0xFE || data[0] == 0xFE && data[1] == 0xFF) {
		return fmt.Errorf("%w: UTF-16 byte order mark % X at the start; save the log as UTF-8", ErrBinary, data[:2])
	}
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == 0:
			return fmt.Errorf("%w: NUL byte at offset %d; is it the phrase log (.txt) and not the video?", ErrBinary, i)
		case r == utf8.RuneError && size == 1:
			return fmt.Errorf("%w: invalid UTF-8 byte 0x%02X at offset %d; is it the phrase log (.txt) and not the video?", ErrBinary, data[i], i)
		}
		i += size
	}
	return nil
}

// parseEvent reads a timed line "<seconds>s | <text>".
func parseEvent(line string) (Event, bool) {
	m := reEvent.FindStringSubmatch(line)
	if m == nil {
		return Event{}, false
	}
	t, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return Event{}, false
	}
	text := strings.TrimSpace(m[2])
	kind, side := classify(text)
	return Event{TimeS: t, Kind: kind, Side: side, Text: text}, true
}

// classify names the kind of an event text, ignoring case and spacing, and
// for a hit the side its text names as scorer.
func classify(text string) (EventKind, string) {
	norm := strings.ToLower(strings.Join(strings.Fields(text), " "))
	switch {
	case strings.HasPrefix(norm, "phrase recording started"):
		return EventRecordingStarted, ""
	case strings.HasPrefix(norm, "phrase recording ended"):
		return EventRecordingEnded, ""
	case strings.Contains(norm, "blade-to-blade") || strings.Contains(norm, "blade to blade"):
		return EventBladeContact, ""
	case reHitPrefix.MatchString(norm):
		if strings.Contains(norm, "simultaneous valid hit") {
			return EventSimultaneousHit, ""
		}
		if m := reHitSide.FindStringSubmatch(norm); m != nil {
			return EventHit, m[1]
		}
		return EventHit, ""
	case strings.HasPrefix(norm, "lockout period started"):
		return EventLockoutStarted, ""
	}
	return EventOther, ""
}

// add records an event and the facts it sets; for each fact the first event
// wins, as the box writes repeats only after the phrase is decided.
func (p *Phrase) add(ev Event) {
	p.Events = append(p.Events, ev)
	t := ev.TimeS
	switch ev.Kind {
	case EventRecordingStarted:
		setFirst(&p.RecordingStartS, t)
	case EventRecordingEnded:
		setFirst(&p.RecordingEndS, t)
	case EventBladeContact:
		p.BladeContactsS = append(p.BladeContactsS, t)
	case EventHit:
		setFirst(&p.FirstHitS, t)
	case EventSimultaneousHit:
		setFirst(&p.FirstHitS, t)
		setFirst(&p.SimultaneousHitS, t)
	case EventLockoutStarted:
		if p.LockoutStartS == nil {
			p.LockoutStartS = &t
			p.LockoutWindowS = window(ev.Text)
		}
	}
}

func setFirst(dst **float64, t float64) {
	if *dst == nil {
		*dst = &t
	}
}

// window reads "(<w>s window)" from a lockout line, or nil.
func window(s string) *float64 {
	m := reWindow.FindStringSubmatch(s)
	if m == nil {
		return nil
	}
	w, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return nil
	}
	return &w
}

// scoresVerdict reads "Fencer 1: HIT, Fencer 2: MISS"; Fencer 1 is the
// right fencer. Both fencers must be given as HIT or MISS.
func scoresVerdict(s string) (*Box, bool) {
	var right, left *bool
	for _, m := range reFencerN.FindAllStringSubmatch(s, -1) {
		v, ok := hitOrMiss(m[2])
		if !ok {
			return nil, false
		}
		if m[1] == "1" {
			right = &v
		} else {
			left = &v
		}
	}
	if left == nil || right == nil {
		return nil, false
	}
	return &Box{Left: *left, Right: *right}, true
}

// interpretationVerdict reads "Right Fencer: HIT, Left Fencer: MISS".
func interpretationVerdict(s string) (*Box, bool) {
	var right, left *bool
	for _, m := range reSideFence.FindAllStringSubmatch(s, -1) {
		v, ok := hitOrMiss(m[2])
		if !ok {
			return nil, false
		}
		if strings.EqualFold(m[1], sideRight) {
			right = &v
		} else {
			left = &v
		}
	}
	if left == nil || right == nil {
		return nil, false
	}
	return &Box{Left: *left, Right: *right}, true
}

func hitOrMiss(s string) (bool, bool) {
	switch strings.ToUpper(s) {
	case "HIT":
		return true, true
	case "MISS":
		return false, true
	}
	return false, false
}

// decision reads the winner of a decision line: "Left Fencer (Red Lamp)",
// "Right Fencer (Green Lamp)" or "Abstain". It matches on the first word so
// that text glued after it cannot change the decision.
func decision(s string) (string, bool) {
	word := strings.ToLower(strings.TrimSpace(s))
	for _, d := range []string{sideLeft, sideRight, decisionAbstain} {
		if strings.HasPrefix(word, d) {
			return d, true
		}
	}
	return "", false
}

func touchOf(b Box) string {
	switch {
	case b.Left && b.Right:
		return touchDouble
	case b.Left:
		return sideLeft
	case b.Right:
		return sideRight
	}
	return touchNone
}

// Package evaluate measures how often the right-of-way engine agrees with
// referees: it decides every labelled phrase of a directory and counts the
// agreement with the table rightofway.Agrees, overall, by rule and by
// recording day, optionally leaving one recording day out at a time so
// that no phrase is scored with parameters fitted on its own day.
package evaluate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/rightofway"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/tracks"
)

// LabelsFile is the file of a directory that holds the referees' calls:
// a JSON object mapping a phrase's NAME to {"referee": "left"|"right"|
// "abstain", ...}.
const LabelsFile = "labels.json"

// Phrase is a labelled phrase: NAME.tracks.json and NAME.txt with the
// referee's call, or a phrase directory the server left with its review.
type Phrase struct {
	Name string
	// Day is the recording day, YYYYMMDD: the first 8 characters of NAME,
	// or the day (UTC) of a phrase directory's start time.
	Day     string
	Referee string
	Example rightofway.Example
}

// Load reads the labelled phrases of dir, in either of two layouts:
//
//   - NAME.tracks.json and NAME.txt for every NAME of dir's labels.json,
//     which holds the referees' calls;
//   - a directory of phrase directories as "referee serve" leaves them
//     (its output directory, or its data directory with a sessions
//     directory in it): each one holding result.json, tracks.json,
//     signal.txt and review.json (a referee's call recorded on the review
//     page) is a labelled phrase named by its directory, its day that of
//     result.json's started_at. Phrases without a review or tracks are not
//     labelled and are passed over.
//
// A phrase whose files are missing or unreadable is an error naming it: a
// silent skip would change the figures.
func Load(dir string) ([]Phrase, error) {
	data, err := os.ReadFile(filepath.Join(dir, LabelsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return loadReviewed(dir)
	}
	if err != nil {
		return nil, err
	}
	var labels map[string]struct {
		Referee string `json:"referee"`
	}
	if err := json.Unmarshal(data, &labels); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, LabelsFile), err)
	}
	names := slices.Sorted(maps.Keys(labels))
	out := make([]Phrase, len(names))
	errs := make([]error, len(names))
	parallel(len(names), func(i int) {
		name := names[i]
		ref := labels[name].Referee
		if !rightofway.ValidCall(ref) {
			errs[i] = fmt.Errorf("%s: referee call %q: want %s", name, ref, rightofway.CallNames())
			return
		}
		t, err := tracks.ReadFile(filepath.Join(dir, name+".tracks.json"))
		if err != nil {
			errs[i] = fmt.Errorf("phrase %s: %w", name, err)
			return
		}
		p, err := signal.ParseFile(filepath.Join(dir, name+".txt"))
		if err != nil {
			errs[i] = fmt.Errorf("phrase %s: %w", name, err)
			return
		}
		out[i] = Phrase{Name: name, Day: dayOf(name), Referee: ref,
			Example: rightofway.Example{Tracks: t, Phrase: withoutCalls(p), Referee: ref, Day: dayOf(name)}}
	})
	if err := summarise(errs); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s names no phrase", filepath.Join(dir, LabelsFile))
	}
	return out, nil
}

// summarise joins errs, the first three in full and then a count, so that
// a directory missing most of its files says so in a few lines.
func summarise(errs []error) error {
	var bad []error
	for _, err := range errs {
		if err != nil {
			bad = append(bad, err)
		}
	}
	if len(bad) > 3 {
		bad = append(bad[:3], fmt.Errorf("and %d more phrases", len(bad)-3))
	}
	return errors.Join(bad...)
}

// loadReviewed reads the phrase directories of dir (or of dir/sessions)
// that hold a review: the second layout of Load.
func loadReviewed(dir string) ([]Phrase, error) {
	var keys []string
	root := dir
	for _, d := range []string{dir, filepath.Join(dir, "sessions")} {
		entries, err := os.ReadDir(d)
		if err != nil {
			if d == dir {
				return nil, fmt.Errorf("read the directory to evaluate: %w", err)
			}
			continue
		}
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join(d, e.Name(), pipeline.ReviewFileName)); e.IsDir() && err == nil {
				keys = append(keys, e.Name())
			}
		}
		if len(keys) > 0 {
			root = d
			break
		}
	}
	out := make([]Phrase, len(keys))
	errs := make([]error, len(keys))
	keep := make([]bool, len(keys))
	parallel(len(keys), func(i int) {
		out[i], keep[i], errs[i] = loadPhraseDir(filepath.Join(root, keys[i]), keys[i])
	})
	if err := summarise(errs); err != nil {
		return nil, err
	}
	var phrases []Phrase
	for i, p := range out {
		if keep[i] {
			phrases = append(phrases, p)
		}
	}
	if len(phrases) == 0 {
		return nil, fmt.Errorf("%s has no labelled phrases: a directory to evaluate holds NAME.tracks.json, NAME.txt and %s with the referee's calls, or phrase directories with %s, %s and %s (a review recorded on referee serve's page)",
			dir, LabelsFile, pipeline.ResultFileName, pipeline.TracksFileName, pipeline.ReviewFileName)
	}
	return phrases, nil
}

// loadPhraseDir reads the phrase directory dir named name; false when it
// is not a labelled phrase (no tracks: the analysis did not track the
// fencers).
func loadPhraseDir(dir, name string) (Phrase, bool, error) {
	if _, err := os.Stat(filepath.Join(dir, pipeline.TracksFileName)); errors.Is(err, fs.ErrNotExist) {
		return Phrase{}, false, nil
	}
	var review struct {
		Call string `json:"call"`
	}
	var result struct {
		StartedAt string `json:"started_at"`
	}
	for file, v := range map[string]any{pipeline.ReviewFileName: &review, pipeline.ResultFileName: &result} {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return Phrase{}, false, fmt.Errorf("phrase %s: %w", name, err)
		}
		if err := json.Unmarshal(data, v); err != nil {
			return Phrase{}, false, fmt.Errorf("phrase %s: %s: %w", name, file, err)
		}
	}
	if !rightofway.ValidCall(review.Call) {
		return Phrase{}, false, fmt.Errorf("phrase %s: %s: call %q: want %s", name, pipeline.ReviewFileName, review.Call, rightofway.CallNames())
	}
	day := dayOf(name)
	if t, err := time.Parse(time.RFC3339Nano, result.StartedAt); err == nil {
		day = t.UTC().Format("20060102")
	}
	t, err := tracks.ReadFile(filepath.Join(dir, pipeline.TracksFileName))
	if err != nil {
		return Phrase{}, false, fmt.Errorf("phrase %s: %w", name, err)
	}
	p, err := signal.ParseFile(filepath.Join(dir, pipeline.SignalFileName))
	if err != nil {
		return Phrase{}, false, fmt.Errorf("phrase %s: %w", name, err)
	}
	return Phrase{Name: name, Day: day, Referee: review.Call,
		Example: rightofway.Example{Tracks: t, Phrase: withoutCalls(p), Referee: review.Call, Day: day}}, true, nil
}

// withoutCalls drops what the log says a referee decided: a call in a log
// is a label, never an input.
func withoutCalls(p *signal.Phrase) *signal.Phrase {
	q := *p
	q.RefereeDecision = nil
	return &q
}

// dayOf is the recording day of a phrase named YYYYMMDD_..., or "" for a
// name that does not start with one.
func dayOf(name string) string {
	if len(name) >= 8 && strings.Trim(name[:8], "0123456789") == "" {
		return name[:8]
	}
	return ""
}

// parallel runs fn(0..n-1) on GOMAXPROCS goroutines and returns when all
// are done.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(runtime.GOMAXPROCS(0), max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// Call is the engine's call on one phrase.
type Call struct {
	Name       string  `json:"name"`
	Day        string  `json:"day"`
	Referee    string  `json:"referee"`
	Winner     string  `json:"winner"`
	Rule       string  `json:"rule"`
	Confidence float64 `json:"confidence"`
	Reason     string  `json:"reason"`
	Agrees     bool    `json:"agrees"`
}

// Tally is agreement over some phrases.
type Tally struct {
	// Calls counts the referee's left and right calls, Agree those the
	// engine gave to the same fencer.
	Calls int `json:"calls"`
	Agree int `json:"agree"`
	// Abstentions counts the referee's calls that award no touch,
	// NoTouch those the engine called simultaneous or none.
	Abstentions int `json:"abstentions"`
	NoTouch     int `json:"no_touch"`
	// Undecided counts phrases the engine could not call.
	Undecided int `json:"undecided"`
	Phrases   int `json:"phrases"`
}

func (t *Tally) add(c Call) {
	t.Phrases++
	if c.Winner == rightofway.WinnerUndecided {
		t.Undecided++
	}
	switch c.Referee {
	case rightofway.CallLeft, rightofway.CallRight:
		t.Calls++
		if c.Agrees {
			t.Agree++
		}
	default:
		t.Abstentions++
		if c.Agrees {
			t.NoTouch++
		}
	}
}

// Percent returns Agree of Calls in percent, 0 for no calls.
func (t Tally) Percent() float64 {
	if t.Calls == 0 {
		return 0
	}
	return 100 * float64(t.Agree) / float64(t.Calls)
}

// Report is the outcome of an evaluation.
type Report struct {
	// CV is "day" when every day was scored with parameters fitted on the
	// other days, "" when all were scored with the shipped parameters.
	CV      string `json:"cv"`
	Overall Tally  `json:"overall"`
	// InSample is the tally with parameters fitted on every phrase, beside
	// a cross-validated one: a large gap between the two is overfitting.
	InSample *Tally           `json:"in_sample,omitempty"`
	ByRule   map[string]Tally `json:"by_rule"`
	ByDay    map[string]Tally `json:"by_day"`
	// Confusion counts phrases by the referee's call, then the engine's.
	Confusion map[string]map[string]int `json:"confusion"`
	Calls     []Call                    `json:"calls"`
}

// Run decides every phrase and tallies the agreement. With cv "day" each
// day's phrases are decided with rightofway.Fit on the other days, which
// needs every phrase's day (a name starting YYYYMMDD) and at least two
// days; with "" all are decided with rightofway.DefaultParams.
func Run(phrases []Phrase, cv string) (*Report, error) {
	rep := &Report{CV: cv, ByRule: map[string]Tally{}, ByDay: map[string]Tally{}, Confusion: map[string]map[string]int{}}
	params := map[string]rightofway.Params{}
	switch cv {
	case "":
	case "day":
		var days []string
		for _, ph := range phrases {
			if ph.Day == "" {
				return nil, fmt.Errorf("phrase %s has no recording day: leaving one day out needs names that start YYYYMMDD", ph.Name)
			}
			if !slices.Contains(days, ph.Day) {
				days = append(days, ph.Day)
			}
		}
		if len(days) < 2 {
			return nil, fmt.Errorf("all %d phrases are of one recording day (%s): leaving one day out needs at least two", len(phrases), days[0])
		}
		fitted := make([]rightofway.Params, len(days))
		parallel(len(days), func(i int) {
			var train []rightofway.Example
			for _, o := range phrases {
				if o.Day != days[i] {
					train = append(train, o.Example)
				}
			}
			fitted[i] = rightofway.Fit(train)
		})
		for i, d := range days {
			params[d] = fitted[i]
		}
	default:
		return nil, fmt.Errorf(`cross-validation %q: want "day" (leave one recording day out) or "" (none)`, cv)
	}
	calls, err := decideAll(phrases, func(ph Phrase) rightofway.Params {
		if p, ok := params[ph.Day]; ok {
			return p
		}
		return rightofway.DefaultParams()
	})
	if err != nil {
		return nil, err
	}
	rep.Calls = calls
	for _, c := range calls {
		rep.Overall.add(c)
		r := rep.ByRule[c.Rule]
		r.add(c)
		rep.ByRule[c.Rule] = r
		d := rep.ByDay[c.Day]
		d.add(c)
		rep.ByDay[c.Day] = d
		if rep.Confusion[c.Referee] == nil {
			rep.Confusion[c.Referee] = map[string]int{}
		}
		rep.Confusion[c.Referee][c.Winner]++
	}
	if cv != "" {
		var all []rightofway.Example
		for _, ph := range phrases {
			all = append(all, ph.Example)
		}
		fitted := rightofway.Fit(all)
		in, err := decideAll(phrases, func(Phrase) rightofway.Params { return fitted })
		if err != nil {
			return nil, err
		}
		var t Tally
		for _, c := range in {
			t.add(c)
		}
		rep.InSample = &t
	}
	return rep, nil
}

func decideAll(phrases []Phrase, params func(Phrase) rightofway.Params) ([]Call, error) {
	calls := make([]Call, len(phrases))
	errs := make([]error, len(phrases))
	parallel(len(phrases), func(i int) {
		ph := phrases[i]
		tl, err := params(ph).Decide(ph.Example.Tracks, ph.Example.Phrase)
		if err != nil {
			errs[i] = fmt.Errorf("phrase %s: %w", ph.Name, err)
			return
		}
		d := tl.Decision
		calls[i] = Call{Name: ph.Name, Day: ph.Day, Referee: ph.Referee, Winner: d.Winner, Rule: d.Rule,
			Confidence: d.Confidence, Reason: d.Reason, Agrees: rightofway.Agrees(ph.Referee, d.Winner)}
	})
	return calls, errors.Join(errs...)
}

// winners are the engine's calls in the order the confusion table shows
// them.
var winners = []string{rightofway.WinnerLeft, rightofway.WinnerRight, rightofway.WinnerSimultaneous, rightofway.WinnerNone, rightofway.WinnerUndecided}

// WriteText writes rep to out as the tables "referee eval" prints.
func (rep *Report) WriteText(out io.Writer) error {
	var w strings.Builder
	o := rep.Overall
	how := "every phrase decided with the shipped parameters (in-sample for phrases they were fitted on)"
	if rep.CV == "day" {
		how = "each recording day decided with parameters fitted on the other days"
	}
	fmt.Fprintf(&w, "%d phrases: %d left/right calls, %d abstentions; %s\n\n", o.Phrases, o.Calls, o.Abstentions, how)
	fmt.Fprintf(&w, "left/right calls agreeing with the referee: %d/%d (%.1f%%)\n", o.Agree, o.Calls, o.Percent())
	if rep.InSample != nil {
		fmt.Fprintf(&w, "  in-sample (fitted on every day):          %d/%d (%.1f%%)\n", rep.InSample.Agree, rep.InSample.Calls, rep.InSample.Percent())
	}
	fmt.Fprintf(&w, "abstentions called simultaneous or none:     %d/%d\n", o.NoTouch, o.Abstentions)
	fmt.Fprintf(&w, "undecided (no call: coverage):               %d/%d\n\n", o.Undecided, o.Phrases)

	fmt.Fprintf(&w, "%-14s", "referee \\ call")
	for _, c := range winners {
		fmt.Fprintf(&w, "%13s", c)
	}
	w.WriteByte('\n')
	for _, r := range rightofway.Calls() {
		row, ok := rep.Confusion[r]
		if !ok {
			continue
		}
		fmt.Fprintf(&w, "%-14s", r)
		for _, c := range winners {
			fmt.Fprintf(&w, "%13d", row[c])
		}
		w.WriteByte('\n')
	}
	table := func(title string, m map[string]Tally) {
		fmt.Fprintf(&w, "\n%-22s %8s %14s %12s\n", title, "phrases", "left/right", "abstentions")
		for _, k := range slices.Sorted(maps.Keys(m)) {
			t := m[k]
			fmt.Fprintf(&w, "%-22s %8d %7d/%-3d%3.0f%% %9d/%d\n", k, t.Phrases, t.Agree, t.Calls, t.Percent(), t.NoTouch, t.Abstentions)
		}
	}
	table("by rule", rep.ByRule)
	table("by recording day", rep.ByDay)
	var dis []Call
	for _, c := range rep.Calls {
		if !c.Agrees {
			dis = append(dis, c)
		}
	}
	fmt.Fprintf(&w, "\ndisagreements (%d)\n", len(dis))
	for _, c := range dis {
		fmt.Fprintf(&w, "  %s  referee %s, engine %s by %s (%.2f): %s\n", c.Name, c.Referee, c.Winner, c.Rule, c.Confidence, c.Reason)
	}
	_, err := io.WriteString(out, w.String())
	return err
}

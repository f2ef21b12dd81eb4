package signal

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// realLogs returns the real phrase logs by file name and expected.json.
func realLogs(t *testing.T) (map[string][]byte, map[string]map[string]any) {
	t.Helper()
	dir := phrasesDir(t)
	raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var expected map[string]map[string]any
	if err := json.Unmarshal(raw, &expected); err != nil {
		t.Fatalf("expected.json: %v", err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	logs := make(map[string][]byte, len(paths))
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		logs[filepath.Base(path)] = data
	}
	if len(logs) != 320 || len(expected) != len(logs) {
		t.Fatalf("found %d logs and %d expectations in %s, want 320 of each", len(logs), len(expected), dir)
	}
	return logs, expected
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestParseMatchesExpected(t *testing.T) {
	logs, expected := realLogs(t)
	for _, name := range sortedKeys(logs) {
		want, ok := expected[name]
		if !ok {
			t.Errorf("%s: not in expected.json", name)
			continue
		}
		p, err := Parse(logs[name])
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var all map[string]any
		if err := json.Unmarshal([]byte(mustJSON(t, p)), &all); err != nil {
			t.Fatal(err)
		}
		got := make(map[string]any, len(want))
		for key := range want {
			v, ok := all[key]
			if !ok {
				t.Errorf("%s: JSON has no field %q", name, key)
			}
			got[key] = v
		}
		if reflect.DeepEqual(got, want) {
			continue
		}
		for _, key := range sortedKeys(want) {
			if !reflect.DeepEqual(got[key], want[key]) {
				t.Errorf("%s: %s = %v, want %v", name, key, got[key], want[key])
			}
		}
	}
}

// The samples in testdata/signal must stay copies of the shared logs, or the
// table tests would check something else than the real data.
func TestSamplesAreRealLogs(t *testing.T) {
	logs, _ := realLogs(t)
	for _, name := range sampleNames {
		if !bytes.Equal(readSample(t, name), logs[name]) {
			t.Errorf("testdata/signal/%s differs from the shared log", name)
		}
	}
}

func TestSignalVerdictRealLogs(t *testing.T) {
	logs, expected := realLogs(t)
	counts := map[string]int{}
	for _, name := range sortedKeys(logs) {
		p, err := Parse(logs[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		touch, _ := expected[name]["touch"].(string)
		v := p.SignalVerdict()
		counts[touch]++
		switch touch {
		case "left", "right":
			prefix := strings.ToUpper(touch[:1]) + touch[1:] + " scored: only the " + touch + " light"
			if v.Winner != touch || !strings.HasPrefix(v.Reason, prefix) {
				t.Errorf("%s: single %s light gave %+v", name, touch, v)
			}
		case "double":
			if v != (Verdict{Winner: WinnerUndecided, Reason: ReasonDouble}) {
				t.Errorf("%s: double touch gave %+v", name, v)
			}
		case "none":
			if v.Winner != WinnerNone {
				t.Errorf("%s: no light gave %+v", name, v)
			}
		default:
			t.Errorf("%s: expected.json has touch %v", name, expected[name]["touch"])
		}
	}
	if counts["left"] == 0 || counts["right"] == 0 || counts["double"] == 0 {
		t.Errorf("the corpus should hold single lights of both sides and doubles, got %v", counts)
	}
}

// The box's text names the opposite side in every single-light log; the
// timeline must warn a referee about it each time.
func TestTimelineRealLogs(t *testing.T) {
	logs, _ := realLogs(t)
	for _, name := range sortedKeys(logs) {
		p, err := Parse(logs[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var b strings.Builder
		if err := WriteTimeline(&b, p, 30); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out := b.String()
		if got := strings.Count(out, "\n"); got < len(p.Events)+6 {
			t.Errorf("%s: timeline of %d lines for %d events:\n%s", name, got, len(p.Events), out)
		}
		single := *p.Touch == "left" || *p.Touch == "right"
		hasHitText := false
		for _, ev := range p.Events {
			hasHitText = hasHitText || ev.Kind == EventHit && ev.Side != ""
		}
		if warned := strings.Contains(out, "Note: the box's hit line names the"); warned != (single && hasHitText) {
			t.Errorf("%s: opposite-side note shown = %v for touch %s:\n%s", name, warned, *p.Touch, out)
		}
	}
}

// shape reduces a line to its form: every run of digits becomes N.
func shape(line string) string {
	var b strings.Builder
	inDigits := false
	for _, r := range line {
		isDigit := r >= '0' && r <= '9'
		if isDigit && !inDigits {
			b.WriteByte('N')
		}
		if !isDigit {
			b.WriteRune(r)
		}
		inDigits = isDigit
	}
	return b.String()
}

// Every line Render writes must have the form of a line the real box wrote.
func TestRenderWritesRealLineForms(t *testing.T) {
	logs, _ := realLogs(t)
	forms := map[string]bool{}
	for _, data := range logs {
		for line := range strings.SplitSeq(string(data), "\n") {
			forms[shape(line)] = true
		}
	}
	for _, tc := range renderCases {
		if tc.unseenForms {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			for line := range strings.SplitSeq(strings.TrimSuffix(string(Render(tc.spec)), "\n"), "\n") {
				if !forms[shape(line)] {
					t.Errorf("line %q has a form the real box never wrote", line)
				}
			}
		})
	}
}

package signal

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics, fails only with its sentinel
// errors, gives a phrase that survives a JSON round trip, and reads the same
// phrase through a byte order mark or CRLF line endings.
func FuzzParse(f *testing.F) {
	for _, name := range sampleNames {
		data := readSample(f, name)
		f.Add(data)
		f.Add(bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n")))
	}
	f.Add(glued(f))
	for _, tc := range errorCases {
		if len(tc.input) <= 4096 {
			f.Add(tc.input)
		}
	}
	for _, tc := range renderCases {
		f.Add(Render(tc.spec))
	}

	sentinels := []error{ErrEmpty, ErrTooLarge, ErrBinary, ErrNotPhraseLog}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if p != nil {
				t.Fatalf("Parse returned a phrase with error %v", err)
			}
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("Parse error %v wraps no sentinel", err)
		}
		if p.BladeContactsS == nil || p.Events == nil {
			t.Fatalf("nil slice in %+v", p)
		}
		encoded, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		var back Phrase
		if err := json.Unmarshal(encoded, &back); err != nil {
			t.Fatalf("json.Unmarshal: %v", err)
		}
		if !reflect.DeepEqual(&back, p) {
			t.Fatalf("JSON round trip changed the phrase\n got: %+v\nwant: %+v", &back, p)
		}
		if v := p.SignalVerdict(); v.Winner == "" || v.Reason == "" {
			t.Fatalf("empty verdict %+v", v)
		}
		if bytes.HasPrefix(data, []byte("\uFEFF")) || bytes.ContainsRune(data, '\r') || 2*len(data)+3 > MaxSize {
			return
		}
		for name, variant := range map[string][]byte{
			"byte order mark": append([]byte("\uFEFF"), data...),
			"CRLF":            bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n")),
		} {
			q, err := Parse(variant)
			if err != nil {
				t.Fatalf("%s variant: %v", name, err)
			}
			if !reflect.DeepEqual(q, p) {
				t.Fatalf("%s variant reads differently\n got: %+v\nwant: %+v", name, q, p)
			}
		}
	})
}

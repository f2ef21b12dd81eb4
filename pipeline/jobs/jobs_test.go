package jobs

import (
	"strings"
	"testing"
)

// TestValidKey refuses keys that are not a session id, alone or followed
// by "-<n>".
func TestValidKey(t *testing.T) {
	id := strings.Repeat("a", 128) // the longest session id
	for key, want := range map[string]bool{
		"s1":                         true,
		"strip_1-2":                  true,
		"box1-2-3":                   true,
		id:                           true,
		id + "-2":                    true,
		id + "-18446744073709551615": true,
		"":                           false,
		"../x":                       false,
		"a/b":                        false,
		"a.b":                        false,
		strings.Repeat("a", 150):     false, // too long for an id, no suffix
		strings.Repeat("a", 161):     false,
		id + "a-2":                   false, // the id is too long
		id + "-":                     false,
		id + "-+2":                   false,
		id + "-2x":                   false,
		id + "-18446744073709551616": false, // n past 64 bits
		id + "/-2":                   false,
	} {
		if got := ValidKey(key); got != want {
			t.Errorf("ValidKey(%q) = %v, want %v", key, got, want)
		}
	}
}

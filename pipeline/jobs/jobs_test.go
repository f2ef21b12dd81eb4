package jobs

import (
	"strings"
	"testing"
)

// TestValidKey refuses keys that are not a session id and a suffix.
func TestValidKey(t *testing.T) {
	for key, want := range map[string]bool{"s1": true, "strip_1-2": true, "": false, "../x": false, "a/b": false, "a.b": false, strings.Repeat("a", 161): false} {
		if got := ValidKey(key); got != want {
			t.Errorf("ValidKey(%q) = %v, want %v", key, got, want)
		}
	}
}

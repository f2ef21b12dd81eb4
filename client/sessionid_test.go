package client

import (
	"strings"
	"testing"
	"time"

	"github.com/referee-project/referee/protocol"
)

// TestDefaultSessionIDsNeverCollide makes many ids at one instant for one
// phrase, as clients started in the same second would.
func TestDefaultSessionIDsNeverCollide(t *testing.T) {
	now := time.Date(2026, 2, 4, 21, 32, 17, 0, time.UTC)
	seen := map[string]bool{}
	for range 10000 {
		id := newSessionID(now, 119)
		if seen[id] {
			t.Fatalf("id %s made twice", id)
		}
		seen[id] = true
		if !protocol.ValidSessionID(id) || !strings.HasPrefix(id, "20260204_213217_phrase119_") || len(id) != len("20260204_213217_phrase119_")+16 {
			t.Fatalf("id %q: want a valid 20260204_213217_phrase119_ and 16 hex digits", id)
		}
	}
}

package rightofway

import "testing"

// TestCalls: the four calls are valid, in the order tables give them and
// messages list them, and a winner that is no referee's call, or a call's
// other spelling, is not.
func TestCalls(t *testing.T) {
	want := []string{"left", "right", "simultaneous", "abstain"}
	got := Calls()
	if len(got) != len(want) {
		t.Fatalf("Calls() = %q, want %q", got, want)
	}
	for i, c := range got {
		if c != want[i] || !ValidCall(c) {
			t.Errorf("call %d: %q (valid %v), want %q and valid", i, c, ValidCall(c), want[i])
		}
	}
	if got, want := CallNames(), "left, right, simultaneous or abstain"; got != want {
		t.Errorf("CallNames() = %q, want %q", got, want)
	}
	for _, c := range []string{"", "none", "undecided", "Left", "red"} {
		if ValidCall(c) {
			t.Errorf("ValidCall(%q) = true", c)
		}
	}
}

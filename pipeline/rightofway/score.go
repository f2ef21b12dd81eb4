package rightofway

import (
	"slices"
	"strings"
)

// Calls a referee can make, in labels.json and in a review. A referee's
// "abstain" awards no touch; "simultaneous" says why.
const (
	CallLeft         = "left"
	CallRight        = "right"
	CallSimultaneous = "simultaneous"
	CallAbstain      = "abstain"
)

// Calls returns the calls a referee can make, in the order tables give
// them.
func Calls() []string {
	return []string{CallLeft, CallRight, CallSimultaneous, CallAbstain}
}

// CallNames is Calls as a message lists them: "left, right, simultaneous
// or abstain".
func CallNames() string {
	c := Calls()
	return strings.Join(c[:len(c)-1], ", ") + " or " + c[len(c)-1]
}

// ValidCall says whether c is one of Calls.
func ValidCall(c string) bool { return slices.Contains(Calls(), c) }

// Agrees is the one table everything that counts agreement with referees
// uses (referee eval, the README, the review page): a referee's left or
// right agrees only with the same winner ("undecided", "simultaneous" and
// "none" disagree); a referee's abstain or simultaneous, which award no
// touch, agree with "simultaneous" or "none".
func Agrees(referee, call string) bool {
	switch referee {
	case CallLeft, CallRight:
		return call == referee
	case CallAbstain, CallSimultaneous:
		return call == WinnerSimultaneous || call == WinnerNone
	}
	return false
}

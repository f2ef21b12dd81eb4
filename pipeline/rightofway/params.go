package rightofway

import (
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/tracks"
)

// Example is a phrase with the call a referee made on it, for fitting.
// The call is a label: Decide never sees it.
type Example struct {
	Tracks  *tracks.Tracks
	Phrase  *signal.Phrase
	Referee string
}

// Params are the engine's values that may be fitted to refereed phrases.
// The zero value is invalid; DefaultParams are those the engine ships with.
type Params struct {
	fitted bool
}

// DefaultParams returns the parameters Decide uses.
func DefaultParams() Params { return Params{fitted: true} }

// Fit returns the parameters fitted to train. Values that are fixed in
// advance (documented beside each constant) are not fitted and come out as
// in DefaultParams.
func Fit(train []Example) Params { return DefaultParams() }

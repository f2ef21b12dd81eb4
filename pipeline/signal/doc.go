// Package signal reads and writes the scoring box's phrase log, the
// "--signal" file recorded beside each phrase's video.
//
// A phrase log is plain text written by the electric scoring box: a
// "Phrase N initialized at ..." header, timed event lines
// ("<seconds>s | <event>", seconds on the same clock as the video's frames),
// the box's verdict ("Scores -> Fencer 1: HIT, Fencer 2: MISS", Fencer 1
// being the right fencer) and, in newer logs, the human referee's decision.
// The format and its quirks are described in shared/docs/signal-format.md.
//
// Parse and ParseFile turn a log into a Phrase, SignalVerdict says what the
// lights alone decide, WriteTimeline prints a report a referee can read, and
// Render writes a log in the box's own format for generated test phrases.
package signal

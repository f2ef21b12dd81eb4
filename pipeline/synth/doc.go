// Package synth makes synthetic test material in pure Go: frames that carry
// their own frame number (DrawCounter, read back by DecodeCounter, checked
// as a run by VerifySequence), noise frames like the old Python check's,
// and scripted fencing phrases (Scenario) rendered as video frames with a
// matching scoring-box log and a documented right-of-way call.
//
// It backs `referee gen-test-video` and the end-to-end tests: a counter
// video shows that every frame crossed the network once and in order, and
// a scenario shows that the referee analysis reaches the right call on a
// phrase whose truth is known. Pixels are bgr.Image; encoding them into
// video files is pipeline/videoio's job.
package synth

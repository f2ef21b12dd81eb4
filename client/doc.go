// Package client streams one fencing phrase to a referee server and brings
// the verdict back: the frames of a video file or a camera, then the scoring
// box's phrase log, then the server's processing result.
//
// Run checks everything that can fail locally (the video opens and its first
// frame decodes, the phrase log parses, the server's /health answers) before
// a session exists on the server, so a bad input never leaves a session with
// "0 frames" behind. A live capture (a camera, a network stream) is the
// exception for the phrase log, which the scoring box writes only when the
// phrase ends: only its folder is checked first, and the log is read when
// the capture ends. Once a session exists, any failure is told to the
// server with session_abort and its reason before the connection closes.
//
// Frames flow through three overlapping stages: a reader goroutine decodes
// the source, encoder workers (GOMAXPROCS of them for JPEG and PNG) compress the
// frames with their order preserved, and the session loop sends them.
// Channels between the stages are bounded, so the client holds a fixed
// number of frames whatever the length of the video.
//
// The client speaks protocol v2 by default (one binary message per frame,
// a window of unacknowledged frames, cumulative frames_ack) and falls back
// to v1 (a frame_ack per frame) when the server's session_started does not
// name a protocol, as the existing Python service answers.
//
// A connection lost mid-session (dropped link, keepalive or answer timeout,
// server closing with 1001, 1012 or 1013) is replaced: Run reconnects with
// bounded, logged, doubling waits, asks to resume the session, and sends
// only the frames the server's session_started "have" lacks, read back from
// a temporary file that keeps every frame sent; then session_end and the
// signal again. A refusal, our own cancellation or a close for another
// reason ends the run at once.
//
// Every failure is an *Error whose Kind says whose fault it is: the server
// (it answered with an error), the local input, or the connection.
package client

// Package protocol defines the referee streaming protocol shared by the
// client and the server: the JSON control messages, their field names, the
// error codes and the binary layouts of frames.
//
// Version 1 ("v1") is the protocol the existing Python service and its
// capture clients speak: every frame is a text "frame" message announcing the
// binary message that follows, acknowledged one by one with "frame_ack".
// Servers accept any v1 client unchanged.
//
// Version 2 ("v2") is negotiated in session_start with the "protocol" field.
// Each frame travels as one binary message that starts with a 16-byte header
// (see FrameHeader), the client keeps a bounded window of unacknowledged
// frames in flight, and the server acknowledges cumulatively with
// "frames_ack". A server that does not know v2 ignores the field and answers
// as v1; a client that sees no "protocol" in session_started falls back to v1.
// Control messages (session_end, signal, progress, results, errors) are the
// same text messages in both versions.
//
// Resume, in both versions: after a lost connection or a server restart the
// client sends session_start again with the same id and "resume": true; a
// server that still holds the session answers session_started with
// "resume": true and "have", the frame numbers it holds as inclusive ranges,
// and the client sends only the frames not in have, then session_end and the
// signal again. A session lost while it is processed is resumed too: the
// server answers the repeated session_end and signal without processing the
// phrase again and sends its result.
//
// A resume needs proof: the session_started of a new session carries a
// random "resume_token", and a resume must send it back in session_start's
// "resume_token". A resume without it, or with another, is refused with
// SESSION_START_FAILED, and the session it named goes on untouched: knowing
// a session's id, frame rate and size (GET /streaming/stats shows them)
// gives no hold on it. The token is never shown anywhere else. A v1 client
// that never resumes ignores the field and is unaffected.
//
// This package imports nothing else from the project.
package protocol

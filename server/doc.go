// Package server is the referee service: the streaming endpoint
// (protocol.Path) beside GET /health, GET /streaming/stats, GET /metrics
// (Prometheus text format, from a registry the Server owns) and
// POST /analyze.
//
// # Lifecycle
//
// New checks a Config, creates the data directories and recovers the
// sessions an earlier run left in DataDir/spool; Start listens and serves
// in goroutines the Server owns; Shutdown (or Close) stops accepting,
// closes the streaming connections with 1001 "server shutting down"
// keeping their spools for the next start, lets processing finish until
// its deadline, and waits for all of those goroutines.
//
// # Access
//
// With Config.Token, every endpoint but /health, /readyz and the pages
// themselves needs "Authorization: Bearer <token>" (the stream also takes
// ?token=, the review API the cookie of POST /api/login), else
// 401 with a JSON error (UNAUTHORIZED). With TLSCertFile and TLSKeyFile it
// speaks HTTPS and WSS only. Browser pages of other origins than the
// server's and Config.AllowedOrigins get 403, and an address holding
// MaxConnsPerAddr connections gets 429, both before the upgrade. A
// connection that has had no session for IdleConnTimeout is closed.
//
// POST /analyze takes MaxUploads uploads at once (503 past it),
// MaxUploadsPerAddr from one address (429), each body within UploadTimeout
// (408); a received upload waits for a processing worker in a queue of
// MaxQueuedUploads (503 past it). Streamed phrases take a worker before
// any upload, and uploads never hold the last one.
//
// What a client can make the server log on every message (errors sent,
// refused requests) is rate-limited: the first few lines of a kind per
// connection, then a count of those left out; the metrics count each.
//
// # Connections
//
// Each WebSocket connection has a read pump, which owns the protocol state,
// and a write pump, the only goroutine that writes to it: outbound messages
// go through a channel, pings keep the peer honest, and every read and
// write has a deadline. The write pump never writes to a peer that has
// gone: a disconnect ends the connection silently. When the server closes a
// connection itself it sends what is queued, then a close frame with the
// reason, and waits briefly for the peer's close frame.
//
// # Protocol
//
// Version 1 is spoken exactly as the existing service documents it. An
// error message with recoverable true refused one message and changed
// nothing else; with recoverable false, the session (if any) is over and
// the server closes the connection after the error. Refused frames
// (FRAME_PROCESSING_FAILED) and refused signals (INVALID_MESSAGE: wrong
// size, not a phrase log) are recoverable, so a client can go on or send a
// corrected signal. The signal may come before or after session_end;
// processing starts once both are in. session_ended's validation counts the
// frames only: a signal still to come is not an issue.
//
// A session_start with "protocol": "v2" is answered with protocol v2 and a
// window: each frame is then one binary message with a v2 header, and the
// server acknowledges cumulatively with frames_ack every quarter window and
// at session_end. Everything else is as in v1.
//
// # Sessions
//
// A session has the client's id, or one generated in the capture box's
// style. A frame is acknowledged "received" only if it is a picture the
// processing reads, of the session's size and within MaxFramePixels: a
// JPEG is checked whole by its structure (checkJPEG, held by a fuzz test to
// accept nothing OpenCV cannot decode), a PNG is decoded in full in one of
// ProcessingWorkers places, a raw frame has its exact size. Frames are
// appended to a spool file on disk (DataDir/spool/<id>) through a write
// buffer, and only an index is kept in memory. Memory is counted: every
// connection's buffers and the message it reads (which grows only as bytes
// arrive, never past the frame limit, and is given back after an outsized
// message), every live session's write buffer, every PNG decode; the
// stats report the count, and MaxMemoryMB caps it. Once both
// session_end and the signal are in, pipeline.Run rebuilds and analyses the
// phrase into OutputDir/<id> in a goroutine owned by the server, with at
// most Config.ProcessingWorkers sessions at once. MaxSessions bounds the
// live sessions (attached to a connection, or processing); sessions held
// for a resume do not count, and one address may have at most
// MaxHeldPerAddr of them, the oldest dropped beyond it. A session ends
// exactly once: completed, aborted by the client, idle timeout, refused input,
// failed processing, or disconnected and not resumed within
// Config.ResumeGrace (processed, its result not collected within it); one "removed session" log line says which, its spool
// is deleted and its id is free again.
//
// # Resume and recovery
//
// A client that goes before session_end leaves its session disconnected
// (its spool flushed) for ResumeGrace. A session_start with "resume": true
// and its id continues it, on a new connection (taking over one the server
// has not yet seen die): session_started lists the frames held as ranges
// in "have". Every spool record carries a magic, its length and a CRC-32C,
// and session.json beside the spool has the session's parameters, so a
// restarted server recovers each spool as a disconnected session,
// truncated to its last whole record if a crash cut one; a damaged record
// before it is left out with a log line, every other frame kept.
// session.json is written with atomicfile and synced before
// session_started, and the spool is fsynced before session_ended and when
// a shutdown keeps it, so the frames session_ended accounts for survive a
// power cut. Frames only acknowledged (frame_ack, frames_ack) after that may be
// lost by a crash, still in the spool's write buffer or the page cache: a
// resume's "have" says which the server holds. A spool
// with frames whose session.json cannot be read is moved to
// DataDir/unrecovered, not deleted.
//
// A client that goes once session_end and the signal are in does not lose
// the verdict: the session is kept while it is processed, and then for
// ResumeGrace with its result in result.json (its spool dropped). A resume
// then answers "have" with every frame, takes session_end and the signal
// again without a second run, and sends process_start, the rest of the
// progress and process_complete (the stored result, read back from
// result.json, if processing has ended).
//
// A resume must carry the resume token the session's session_started gave;
// without it the resume is refused and the session untouched. A session
// held for a client that left before its phrase was processed (streaming,
// or waiting for the signal) is replaced, its spool dropped, by a
// session_start with its id and without a token (a rerun by a client that
// knows nothing of resume, or a resume by one whose connection was lost
// before it read session_started) from the address of the client that
// left; from anywhere else it is refused.
//
// At processing, every frame is read back first: one whose record is
// damaged on disk (or, recovered from an earlier run, that is no readable
// picture) is left out of the video and counted in the result's
// validation.unreadable_frames, never failing the phrase. When processing
// fails all the same, the session and its spool are kept, disconnected,
// for ResumeGrace: a resume and session_end and the signal again retry it.
//
// Each phrase's artifacts go to OutputDir/<key>, its key: the session id,
// or for a later phrase with a session id already used the next free of
// <id>-2, <id>-3, ... A directory's name never changes once written. A
// failed run keeps its directory with failure.json (stage and reason)
// beside whatever it wrote; a directory with neither result.json nor
// failure.json belongs to a phrase still being processed. The review
// pages and their API (review.go) list and serve these directories.
//
// # On a cluster
//
// With Config.Jobs (a jobs.Queue; "referee serve --nats" gives one on NATS
// JetStream) a streamed phrase is analysed elsewhere: the server rebuilds
// its video as above, submits it with the signal, gives its processing
// place back once the job is queued, relays the worker's progress as
// process_progress and takes the artifacts and the result back into the
// artifact directory, its paths made this server's (processRemote). The
// client sees the same messages as from one server. While Jobs.Ready
// fails, session starts are refused (SESSION_START_FAILED with the reason)
// and /readyz says why; a phrase already taken waits to be submitted. A
// job that failed on every try fails the phrase like a processing error.
// POST /analyze uploads are still analysed in this process.
//
// The phrase's key is then reserved in the cluster's catalogue (a
// jobs.Catalog) before its directory is made, so that it is the same on
// every node; the server publishes the phrase there when its processing
// starts, ends or fails (cluster.go). The review API lists the
// catalogue's phrases with its own, serves those of other nodes from the
// catalogue and the workers' artifacts (cached in DataDir/.cluster-cache,
// within ClusterCacheBytes, the least recently served evicted first),
// and stores reviews there by compare-and-set, copying them into the
// review.json of the phrases it holds. When the catalogue cannot be read,
// GET /api/sessions lists this node's phrases and says so ("partial"), and
// what only the cluster has is 503.
package server

package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Path is the HTTP path of the streaming WebSocket endpoint.
const Path = "/stream"

// Protocol versions a client may ask for in SessionStart.Protocol.
const (
	V1 = "v1"
	V2 = "v2"
)

// Message types. The "type" field of every text message holds one of these.
const (
	TypeSessionStart    = "session_start"
	TypeFrame           = "frame"
	TypeSessionEnd      = "session_end"
	TypeSignal          = "signal"
	TypeSessionAbort    = "session_abort"
	TypePing            = "ping"
	TypeSessionStarted  = "session_started"
	TypeFrameAck        = "frame_ack"
	TypeFramesAck       = "frames_ack"
	TypeSessionEnded    = "session_ended"
	TypeSignalAck       = "signal_ack"
	TypeProcessStart    = "process_start"
	TypeProcessProgress = "process_progress"
	TypeProcessComplete = "process_complete"
	TypeError           = "error"
	TypePong            = "pong"
)

// DefaultJPEGQuality is the quality a v1 frame without "quality" was encoded with.
const DefaultJPEGQuality = 85

// DefaultVideoFormat is the pixel layout of raw frames.
const DefaultVideoFormat = "bgr24"

// Frame acknowledgement statuses.
const (
	AckReceived  = "received"
	AckDuplicate = "duplicate"
	AckError     = "error"
)

// Processing stages reported in ProcessProgress.Stage.
const (
	StageVideoReconstruction = "video_reconstruction"
	StageAnalysis            = "analysis"
)

// Message is implemented by every protocol message. MessageType returns the
// value of the message's "type" field.
type Message interface {
	MessageType() string
}

// SessionStart opens a session. A v2 client sets Protocol to V2.
//
// Resume asks to continue the session SessionID after a lost connection or
// a server restart: if the server still holds it, SessionStarted has Resume
// true and lists in Have the frames it holds; the client sends only the
// others, then session_end and the signal again (the server keeps frames
// only). FPS, Width and Height must be those of the first start, and
// ResumeToken the token the first SessionStarted gave: without it (or with
// another) the server refuses the resume with SESSION_START_FAILED and
// leaves the session it holds as it was. If the server holds no such
// session, it starts a new one and SessionStarted has Resume false: the
// client sends every frame. Resume works in v1 and v2.
type SessionStart struct {
	SessionID      string  `json:"session_id"`
	FPS            float64 `json:"fps"`
	Width          int     `json:"width"`
	Height         int     `json:"height"`
	ExpectedFrames int     `json:"expected_frames,omitempty"`
	VideoFormat    string  `json:"video_format,omitempty"`
	Protocol       string  `json:"protocol,omitempty"`
	Resume         bool    `json:"resume,omitempty"`
	ResumeToken    string  `json:"resume_token,omitempty"`
}

// Frame announces the binary message that follows it in v1.
type Frame struct {
	SessionID   string  `json:"session_id"`
	FrameNumber int     `json:"frame_number"`
	Timestamp   float64 `json:"timestamp"`
	Encoding    string  `json:"encoding"`
	Quality     int     `json:"quality,omitempty"`
	Size        int     `json:"size"`
}

// SessionEnd says the client has sent all frames.
type SessionEnd struct {
	SessionID   string `json:"session_id"`
	TotalFrames int    `json:"total_frames"`
}

// Signal announces the binary message holding the phrase log.
type Signal struct {
	SessionID string `json:"session_id"`
	Filename  string `json:"filename"`
	Size      int    `json:"size"`
}

// SessionAbort ends a session early. Reason is this project's addition: old
// clients omit it.
type SessionAbort struct {
	SessionID string `json:"session_id"`
	Reason    string `json:"reason,omitempty"`
}

// Ping asks for a Pong.
type Ping struct{}

// SessionStarted accepts a session. Protocol and Window are set only when the
// server agreed to v2: Window is the number of frames the client may have in
// flight without acknowledgement.
//
// Resume is true when the server continues a session the client asked to
// resume; Have then lists the frame numbers the server holds as sorted,
// disjoint, inclusive ranges, e.g. [[0,119],[121,300]] (absent: none).
// The client must go by Have, not by the acknowledgements it received
// before: frames acknowledged just before a server crash may be lost.
// After a resume, frames_ack's Through counts the frame messages of the
// new connection.
//
// ResumeToken, in the answer to a new session, is the secret a resume of
// this session must present (SessionStart.ResumeToken). Only the client
// that started the session gets it: a client keeps it for the session's
// life and shows it to no one. A client that never resumes may ignore it;
// servers that know no resume send none.
type SessionStarted struct {
	SessionID   string   `json:"session_id"`
	Protocol    string   `json:"protocol,omitempty"`
	Window      int      `json:"window,omitempty"`
	Resume      bool     `json:"resume,omitempty"`
	Have        [][2]int `json:"have,omitempty"`
	ResumeToken string   `json:"resume_token,omitempty"`
}

// FrameAck acknowledges one v1 frame.
type FrameAck struct {
	SessionID   string `json:"session_id"`
	FrameNumber int    `json:"frame_number"`
	Status      string `json:"status"`
}

// FramesAck acknowledges v2 frames cumulatively: Through is the number of
// frames the server has received so far on this connection; the client may keep up to Window
// frames beyond it in flight.
type FramesAck struct {
	SessionID string `json:"session_id"`
	Through   int    `json:"through"`
}

// Validation is the server's account of a session's frames.
//
// UnreadableFrames, this project's addition, counts the frames that were
// acknowledged but could not be read back when the phrase was processed
// (a spool record damaged on disk, or a frame kept by an older server that
// did not decode frames on receipt): they are left out of the video, and
// an issue lists their numbers. It is only in the result's "validation";
// session_ended leaves it out.
type Validation struct {
	Valid            bool     `json:"valid"`
	Issues           []string `json:"issues"`
	FrameCount       int      `json:"frame_count"`
	MissingFrames    int      `json:"missing_frames"`
	DuplicateFrames  int      `json:"duplicate_frames"`
	OutOfOrderFrames int      `json:"out_of_order_frames"`
	HasSignal        bool     `json:"has_signal"`
	UnreadableFrames *int     `json:"unreadable_frames,omitempty"`
}

// SessionEnded answers SessionEnd.
type SessionEnded struct {
	SessionID  string     `json:"session_id"`
	Validation Validation `json:"validation"`
}

// SignalAck acknowledges the phrase log.
type SignalAck struct {
	SessionID string `json:"session_id"`
	Status    string `json:"status"`
}

// ProcessStart says processing of the session has begun.
type ProcessStart struct {
	SessionID string `json:"session_id"`
}

// ProcessProgress reports a processing stage's progress from 0 to 1.
type ProcessProgress struct {
	SessionID string  `json:"session_id"`
	Stage     string  `json:"stage"`
	Progress  float64 `json:"progress"`
	Message   string  `json:"message"`
}

// ProcessComplete carries the session's result object. The protocol does not
// fix its shape: clients should keep it whole.
type ProcessComplete struct {
	SessionID string          `json:"session_id"`
	Result    json.RawMessage `json:"result"`
}

// Error reports a failure. SessionID is null when no session is known.
type Error struct {
	SessionID    *string   `json:"session_id"`
	ErrorCode    ErrorCode `json:"error_code"`
	ErrorMessage string    `json:"error_message"`
	Recoverable  bool      `json:"recoverable"`
}

// Pong answers Ping.
type Pong struct{}

// MessageType implements Message.
func (SessionStart) MessageType() string { return TypeSessionStart }

// MessageType implements Message.
func (Frame) MessageType() string { return TypeFrame }

// MessageType implements Message.
func (SessionEnd) MessageType() string { return TypeSessionEnd }

// MessageType implements Message.
func (Signal) MessageType() string { return TypeSignal }

// MessageType implements Message.
func (SessionAbort) MessageType() string { return TypeSessionAbort }

// MessageType implements Message.
func (Ping) MessageType() string { return TypePing }

// MessageType implements Message.
func (SessionStarted) MessageType() string { return TypeSessionStarted }

// MessageType implements Message.
func (FrameAck) MessageType() string { return TypeFrameAck }

// MessageType implements Message.
func (FramesAck) MessageType() string { return TypeFramesAck }

// MessageType implements Message.
func (SessionEnded) MessageType() string { return TypeSessionEnded }

// MessageType implements Message.
func (SignalAck) MessageType() string { return TypeSignalAck }

// MessageType implements Message.
func (ProcessStart) MessageType() string { return TypeProcessStart }

// MessageType implements Message.
func (ProcessProgress) MessageType() string { return TypeProcessProgress }

// MessageType implements Message.
func (ProcessComplete) MessageType() string { return TypeProcessComplete }

// MessageType implements Message.
func (Error) MessageType() string { return TypeError }

// MessageType implements Message.
func (Pong) MessageType() string { return TypePong }

// Encode returns the JSON text of m with its "type" field first.
func Encode(m Message) ([]byte, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s message: %w", m.MessageType(), err)
	}
	typ, _ := json.Marshal(m.MessageType())
	out := make([]byte, 0, len(body)+len(typ)+9)
	out = append(out, `{"type":`...)
	out = append(out, typ...)
	if len(body) > 2 {
		out = append(out, ',')
	}
	return append(out, body[1:]...), nil
}

// DecodeError is returned by Decode. Code is the protocol error code a server
// answers with: CodeInvalidMessage for text that is not a JSON object with a
// string "type", CodeUnknownMessageType for a type this package does not know.
type DecodeError struct {
	Code ErrorCode
	Type string
	Err  error
}

func (e *DecodeError) Error() string {
	if e.Code == CodeUnknownMessageType {
		return fmt.Sprintf("unknown message type %q", e.Type)
	}
	if e.Type != "" {
		return fmt.Sprintf("malformed %s message: %v", e.Type, e.Err)
	}
	return fmt.Sprintf("malformed message: %v", e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// ErrMissingType is wrapped by a DecodeError for a JSON object without a
// string "type" field.
var ErrMissingType = errors.New(`no string "type" field`)

// Decode parses one text message into its typed form (a value, not a
// pointer: SessionStart, Frame, ...). Unknown fields are ignored so that
// newer peers can add some; a field of the wrong JSON type is an error.
func Decode(data []byte) (Message, error) {
	var env struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, &DecodeError{Code: CodeInvalidMessage, Err: err}
	}
	if env.Type == nil {
		return nil, &DecodeError{Code: CodeInvalidMessage, Err: ErrMissingType}
	}
	switch *env.Type {
	case TypeSessionStart:
		return decodeAs[SessionStart](data)
	case TypeFrame:
		return decodeAs[Frame](data)
	case TypeSessionEnd:
		return decodeAs[SessionEnd](data)
	case TypeSignal:
		return decodeAs[Signal](data)
	case TypeSessionAbort:
		return decodeAs[SessionAbort](data)
	case TypePing:
		return Ping{}, nil
	case TypeSessionStarted:
		return decodeAs[SessionStarted](data)
	case TypeFrameAck:
		return decodeAs[FrameAck](data)
	case TypeFramesAck:
		return decodeAs[FramesAck](data)
	case TypeSessionEnded:
		return decodeAs[SessionEnded](data)
	case TypeSignalAck:
		return decodeAs[SignalAck](data)
	case TypeProcessStart:
		return decodeAs[ProcessStart](data)
	case TypeProcessProgress:
		return decodeAs[ProcessProgress](data)
	case TypeProcessComplete:
		return decodeAs[ProcessComplete](data)
	case TypeError:
		return decodeAs[Error](data)
	case TypePong:
		return Pong{}, nil
	}
	return nil, &DecodeError{Code: CodeUnknownMessageType, Type: *env.Type}
}

func decodeAs[M Message](data []byte) (Message, error) {
	var m M
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, &DecodeError{Code: CodeInvalidMessage, Type: m.MessageType(), Err: err}
	}
	if pc, ok := any(&m).(*ProcessComplete); ok && pc.Result != nil {
		// The raw result aliases data, which the caller may reuse.
		pc.Result = bytes.Clone(pc.Result)
	}
	return m, nil
}

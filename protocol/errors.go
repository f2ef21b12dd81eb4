package protocol

// ErrorCode is the error_code of an Error message.
type ErrorCode string

// Error codes. The first nine are those of the existing service.
const (
	// CodeProtocolError: the wrong kind of message, e.g. binary where text
	// was expected.
	CodeProtocolError ErrorCode = "PROTOCOL_ERROR"
	// CodeInvalidMessage: malformed JSON or field values out of range.
	CodeInvalidMessage ErrorCode = "INVALID_MESSAGE"
	// CodeSessionStartFailed: a limit was reached or the id is taken.
	CodeSessionStartFailed ErrorCode = "SESSION_START_FAILED"
	// CodeNoActiveSession: frame, end or signal before session_start.
	CodeNoActiveSession ErrorCode = "NO_ACTIVE_SESSION"
	// CodeFrameProcessingFailed: one frame could not be stored; recoverable.
	CodeFrameProcessingFailed ErrorCode = "FRAME_PROCESSING_FAILED"
	// CodeProcessingFailed: reconstruction or analysis failed.
	CodeProcessingFailed ErrorCode = "PROCESSING_FAILED"
	// CodeUnknownMessageType: a type the server does not know; recoverable.
	CodeUnknownMessageType ErrorCode = "UNKNOWN_MESSAGE_TYPE"
	// CodeStreamingDisabled: the server does not take streams.
	CodeStreamingDisabled ErrorCode = "STREAMING_DISABLED"
	// CodeInternalError: a fault on the server's side.
	CodeInternalError ErrorCode = "INTERNAL_ERROR"
	// CodeLimitExceeded: a frame, signal or message over its size limit, or
	// a session over its frame limit.
	CodeLimitExceeded ErrorCode = "LIMIT_EXCEEDED"
	// CodeUnauthorized: the server requires a token and the request had
	// none or a wrong one. It is the code of the JSON body of an HTTP 401;
	// a client sends the token as "Authorization: Bearer <token>".
	CodeUnauthorized ErrorCode = "UNAUTHORIZED"
)

// Recoverable reports whether the session survives an error with this code.
func (c ErrorCode) Recoverable() bool {
	return c == CodeFrameProcessingFailed || c == CodeUnknownMessageType
}

package protocol

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func strptr(s string) *string { return &s }

// messageCases is the one table behind the encode, decode and fuzz tests:
// each message with the exact JSON a peer of the existing service sends or
// expects for it.
var messageCases = []struct {
	name string
	msg  Message
	json string
}{
	{"session_start", SessionStart{SessionID: "20251106_170116_phrase04", FPS: 30, Width: 640, Height: 480, ExpectedFrames: 1800, VideoFormat: "bgr24"},
		`{"type":"session_start","session_id":"20251106_170116_phrase04","fps":30,"width":640,"height":480,"expected_frames":1800,"video_format":"bgr24"}`},
	{"session_start v2", SessionStart{SessionID: "s", FPS: 15, Width: 1280, Height: 720, Protocol: V2},
		`{"type":"session_start","session_id":"s","fps":15,"width":1280,"height":720,"protocol":"v2"}`},
	{"frame", Frame{SessionID: "s", FrameNumber: 7, Timestamp: 1762444876.25, Encoding: EncodingJPEG, Quality: 85, Size: 45123},
		`{"type":"frame","session_id":"s","frame_number":7,"timestamp":1762444876.25,"encoding":"jpeg","quality":85,"size":45123}`},
	{"session_end", SessionEnd{SessionID: "s", TotalFrames: 1800},
		`{"type":"session_end","session_id":"s","total_frames":1800}`},
	{"signal", Signal{SessionID: "s", Filename: "phrase04.txt", Size: 1234},
		`{"type":"signal","session_id":"s","filename":"phrase04.txt","size":1234}`},
	{"session_abort", SessionAbort{SessionID: "s", Reason: "frame 12: encode failed"},
		`{"type":"session_abort","session_id":"s","reason":"frame 12: encode failed"}`},
	{"session_abort without reason", SessionAbort{SessionID: "s"},
		`{"type":"session_abort","session_id":"s"}`},
	{"ping", Ping{}, `{"type":"ping"}`},
	{"pong", Pong{}, `{"type":"pong"}`},
	{"session_started", SessionStarted{SessionID: "s"},
		`{"type":"session_started","session_id":"s"}`},
	{"session_started v2", SessionStarted{SessionID: "s", Protocol: V2, Window: 64},
		`{"type":"session_started","session_id":"s","protocol":"v2","window":64}`},
	{"session_start resume", SessionStart{SessionID: "s", FPS: 15, Width: 1280, Height: 720, Protocol: V2, Resume: true, ResumeToken: "k3Yq"},
		`{"type":"session_start","session_id":"s","fps":15,"width":1280,"height":720,"protocol":"v2","resume":true,"resume_token":"k3Yq"}`},
	{"session_started with a resume token", SessionStarted{SessionID: "s", ResumeToken: "k3Yq"},
		`{"type":"session_started","session_id":"s","resume_token":"k3Yq"}`},
	{"session_started resumed v1", SessionStarted{SessionID: "s", Resume: true, Have: [][2]int{{0, 119}, {121, 300}}},
		`{"type":"session_started","session_id":"s","resume":true,"have":[[0,119],[121,300]]}`},
	{"session_started resumed v2 holding nothing", SessionStarted{SessionID: "s", Protocol: V2, Window: 64, Resume: true},
		`{"type":"session_started","session_id":"s","protocol":"v2","window":64,"resume":true}`},
	{"frame_ack", FrameAck{SessionID: "s", FrameNumber: 3, Status: AckDuplicate},
		`{"type":"frame_ack","session_id":"s","frame_number":3,"status":"duplicate"}`},
	{"frames_ack", FramesAck{SessionID: "s", Through: 128},
		`{"type":"frames_ack","session_id":"s","through":128}`},
	{"session_ended", SessionEnded{SessionID: "s", Validation: Validation{Valid: false, Issues: []string{"No signal data received"}, FrameCount: 10, MissingFrames: 1}},
		`{"type":"session_ended","session_id":"s","validation":{"valid":false,"issues":["No signal data received"],"frame_count":10,"missing_frames":1,"duplicate_frames":0,"out_of_order_frames":0,"has_signal":false}}`},
	{"signal_ack", SignalAck{SessionID: "s", Status: AckReceived},
		`{"type":"signal_ack","session_id":"s","status":"received"}`},
	{"process_start", ProcessStart{SessionID: "s"},
		`{"type":"process_start","session_id":"s"}`},
	{"process_progress", ProcessProgress{SessionID: "s", Stage: StageVideoReconstruction, Progress: 0.5, Message: "frame 5/10"},
		`{"type":"process_progress","session_id":"s","stage":"video_reconstruction","progress":0.5,"message":"frame 5/10"}`},
	{"process_complete", ProcessComplete{SessionID: "s", Result: json.RawMessage(`{"winner":"left"}`)},
		`{"type":"process_complete","session_id":"s","result":{"winner":"left"}}`},
	{"error without session", Error{ErrorCode: CodeProtocolError, ErrorMessage: "expected a text message, got binary"},
		`{"type":"error","session_id":null,"error_code":"PROTOCOL_ERROR","error_message":"expected a text message, got binary","recoverable":false}`},
	{"error with session", Error{SessionID: strptr("s"), ErrorCode: CodeUnknownMessageType, ErrorMessage: "unknown message type \"hello\"", Recoverable: true},
		`{"type":"error","session_id":"s","error_code":"UNKNOWN_MESSAGE_TYPE","error_message":"unknown message type \"hello\"","recoverable":true}`},
}

func TestEncode(t *testing.T) {
	for _, tc := range messageCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Encode(tc.msg)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if string(got) != tc.json {
				t.Errorf("Encode\n got %s\nwant %s", got, tc.json)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range messageCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode([]byte(tc.json))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.msg) {
				t.Errorf("Decode\n got %#v\nwant %#v", got, tc.msg)
			}
		})
	}
}

// TestDecodeOldClient checks what the existing Python clients send: fields
// in any order, extra fields, and a frame without quality.
func TestDecodeOldClient(t *testing.T) {
	got, err := Decode([]byte(`{"size": 10, "encoding": "jpeg", "frame_number": 0, "session_id": "x", "timestamp": 1.5, "type": "frame", "client": "python"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Frame{SessionID: "x", FrameNumber: 0, Timestamp: 1.5, Encoding: EncodingJPEG, Size: 10}
	if got != want {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name, in string
		code     ErrorCode
		msg      string
	}{
		{"not json", `hello`, CodeInvalidMessage, "malformed message: invalid character 'h'"},
		{"truncated", `{"type":"frame"`, CodeInvalidMessage, "malformed message: unexpected end of JSON input"},
		{"array", `[1,2]`, CodeInvalidMessage, "malformed message: json: cannot unmarshal array"},
		{"no type", `{"session_id":"s"}`, CodeInvalidMessage, `malformed message: no string "type" field`},
		{"type not a string", `{"type":3}`, CodeInvalidMessage, "malformed message: json: cannot unmarshal number"},
		{"unknown type", `{"type":"hello"}`, CodeUnknownMessageType, `unknown message type "hello"`},
		{"wrong field type", `{"type":"frame","frame_number":"seven"}`, CodeInvalidMessage, "malformed frame message: json: cannot unmarshal string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.in))
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode(%s) = %v, want a *DecodeError", tc.in, err)
			}
			if de.Code != tc.code {
				t.Errorf("code %s, want %s", de.Code, tc.code)
			}
			if !strings.HasPrefix(err.Error(), tc.msg) {
				t.Errorf("error %q, want it to start with %q", err, tc.msg)
			}
		})
	}
}

func TestRecoverable(t *testing.T) {
	for code, want := range map[ErrorCode]bool{
		CodeFrameProcessingFailed: true, CodeUnknownMessageType: true,
		CodeProtocolError: false, CodeInvalidMessage: false, CodeSessionStartFailed: false,
		CodeNoActiveSession: false, CodeProcessingFailed: false, CodeInternalError: false,
	} {
		if got := code.Recoverable(); got != want {
			t.Errorf("%s.Recoverable() = %v, want %v", code, got, want)
		}
	}
}

// FuzzDecode feeds Decode arbitrary text: it must never panic, and whatever
// it accepts must encode and decode again to the same message.
func FuzzDecode(f *testing.F) {
	for _, tc := range messageCases {
		f.Add([]byte(tc.json))
	}
	f.Add([]byte(`{"type":"frame","size":-1}`))
	f.Add([]byte(`{"type":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode error %v is not a *DecodeError", err)
			}
			return
		}
		out, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode(%#v): %v", m, err)
		}
		again, err := Decode(out)
		if err != nil {
			t.Fatalf("Decode(Encode(m)) = %v for %s", err, out)
		}
		if !reflect.DeepEqual(normalize(again), normalize(m)) {
			t.Fatalf("round trip changed the message:\n%#v\n%#v", m, again)
		}
	})
}

// normalize re-encodes a ProcessComplete's raw result compactly, since the
// raw JSON may differ in white space after a round trip, and an absent
// result encodes as null; and it takes a SessionStarted's empty "have" as
// no "have", which is what it means and how it encodes.
func normalize(m Message) Message {
	if ss, ok := m.(SessionStarted); ok && len(ss.Have) == 0 {
		ss.Have = nil
		return ss
	}
	pc, ok := m.(ProcessComplete)
	if !ok {
		return m
	}
	var v any
	if pc.Result != nil && json.Unmarshal(pc.Result, &v) != nil {
		return pc
	}
	pc.Result, _ = json.Marshal(v)
	return pc
}

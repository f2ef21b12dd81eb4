package protocol

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// frameCases feed both the round-trip test and the fuzz corpus.
var frameCases = []struct {
	h       FrameHeader
	payload []byte
	wire    []byte
}{
	{FrameHeader{FrameNumber: 0, TimestampMicros: 1, Encoding: EncodingJPEG}, []byte{0xff, 0xd8},
		[]byte{'R', 'F', 2, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xd8}},
	{FrameHeader{FrameNumber: 0x01020304, TimestampMicros: 1762444876250000, Encoding: EncodingPNG}, []byte("png"),
		append([]byte{'R', 'F', 2, 2, 4, 3, 2, 1, 0x90, 0xfb, 0xc8, 0x2c, 0xef, 0x42, 0x06, 0x00}, "png"...)},
	{FrameHeader{FrameNumber: 1799, Encoding: EncodingRaw}, nil,
		[]byte{'R', 'F', 2, 3, 0x07, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
}

func TestAppendParseFrame(t *testing.T) {
	for _, tc := range frameCases {
		got, err := AppendFrame(nil, tc.h, tc.payload)
		if err != nil {
			t.Fatalf("AppendFrame(%+v): %v", tc.h, err)
		}
		if !bytes.Equal(got, tc.wire) {
			t.Errorf("AppendFrame(%+v)\n got % x\nwant % x", tc.h, got, tc.wire)
		}
		h, payload, err := ParseFrame(tc.wire)
		if err != nil {
			t.Fatalf("ParseFrame(% x): %v", tc.wire, err)
		}
		if h != tc.h || !bytes.Equal(payload, tc.payload) {
			t.Errorf("ParseFrame(% x) = %+v, % x; want %+v, % x", tc.wire, h, payload, tc.h, tc.payload)
		}
	}
}

func TestParseFrameErrors(t *testing.T) {
	cases := []struct {
		name string
		msg  []byte
		want string
	}{
		{"short", []byte("RF"), "bad v2 frame header: 2 bytes, the header alone is 16"},
		{"jpeg bytes", append([]byte{0xff, 0xd8, 0xff, 0xe0}, make([]byte, 20)...), `bad v2 frame header: no "RF" magic (starts ff d8)`},
		{"version", append([]byte{'R', 'F', 3, 1}, make([]byte, 12)...), "bad v2 frame header: version 3, want 2"},
		{"encoding", append([]byte{'R', 'F', 2, 9}, make([]byte, 12)...), "bad v2 frame header: unknown encoding code 9"},
	}
	for _, tc := range cases {
		_, _, err := ParseFrame(tc.msg)
		if !errors.Is(err, ErrBadFrameHeader) || err.Error() != tc.want {
			t.Errorf("%s: ParseFrame = %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := AppendFrame(nil, FrameHeader{Encoding: "gif"}, nil); err == nil || !strings.Contains(err.Error(), `unknown encoding "gif"`) {
		t.Errorf("AppendFrame with encoding gif = %v", err)
	}
	if _, err := AppendFrame(nil, FrameHeader{FrameNumber: -1, Encoding: EncodingJPEG}, nil); err == nil || !strings.Contains(err.Error(), "frame number -1 out of range") {
		t.Errorf("AppendFrame with frame -1 = %v", err)
	}
}

func FuzzParseFrame(f *testing.F) {
	for _, tc := range frameCases {
		f.Add(tc.wire)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		h, payload, err := ParseFrame(msg)
		if err != nil {
			if !errors.Is(err, ErrBadFrameHeader) {
				t.Fatalf("error %v does not wrap ErrBadFrameHeader", err)
			}
			return
		}
		again, err := AppendFrame(nil, h, payload)
		if err != nil || !bytes.Equal(again, msg) {
			t.Fatalf("re-encoding %+v gave % x, %v; want % x", h, again, err, msg)
		}
	})
}

func TestRaw(t *testing.T) {
	pix := bytes.Repeat([]byte{1, 2, 3}, 4*2)
	payload := AppendRaw(nil, 2, 4, 3, pix)
	if len(payload) != RawHeaderSize+len(pix) {
		t.Fatalf("payload length %d", len(payload))
	}
	h, w, c, got, err := ParseRaw(payload)
	if err != nil || h != 2 || w != 4 || c != 3 || !bytes.Equal(got, pix) {
		t.Fatalf("ParseRaw = %d %d %d %v %v", h, w, c, got, err)
	}
	cases := []struct {
		name    string
		payload []byte
		want    string
	}{
		{"short", []byte{1, 2}, "bad raw frame: 2 bytes, the header alone is 12"},
		{"zero height", AppendRaw(nil, 0, 4, 3, nil), "bad raw frame: 4x0 with 3 channels"},
		{"two channels", AppendRaw(nil, 2, 4, 2, make([]byte, 16)), "bad raw frame: 4x2 with 2 channels"},
		{"short pixels", AppendRaw(nil, 2, 4, 3, pix[:20]), "bad raw frame: 4x2x3 needs 24 pixel bytes, got 20"},
		{"huge header", AppendRaw(nil, 1<<31, 1<<31, 3, pix), "bad raw frame: 2147483648x2147483648x3 needs 13835058055282163712 pixel bytes, got 24"},
	}
	for _, tc := range cases {
		_, _, _, _, err := ParseRaw(tc.payload)
		if !errors.Is(err, ErrBadRawFrame) || err.Error() != tc.want {
			t.Errorf("%s: ParseRaw = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestValidSessionID(t *testing.T) {
	for id, want := range map[string]bool{
		"20251106_170116_phrase04": true,
		"a":                        true,
		"A-z_9":                    true,
		strings.Repeat("x", 128):   true,
		strings.Repeat("x", 129):   false,
		"":                         false,
		"../../etc/passwd":         false,
		"a/b":                      false,
		"a b":                      false,
		"é":                        false,
		"a\x00":                    false,
		".":                        false,
	} {
		if got := ValidSessionID(id); got != want {
			t.Errorf("ValidSessionID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestFrameRanges(t *testing.T) {
	cases := []struct {
		numbers []int
		want    [][2]int
		in, out []int
	}{
		{nil, nil, nil, []int{0}},
		{[]int{0}, [][2]int{{0, 0}}, []int{0}, []int{1}},
		{[]int{0, 1, 2, 3}, [][2]int{{0, 3}}, []int{0, 3}, []int{4, -1}},
		{[]int{0, 1, 1, 2, 5, 7, 8}, [][2]int{{0, 2}, {5, 5}, {7, 8}}, []int{2, 5, 7, 8}, []int{3, 4, 6, 9}},
		{[]int{3, 4, 10}, [][2]int{{3, 4}, {10, 10}}, []int{3, 10}, []int{0, 5, 11}},
	}
	for _, tc := range cases {
		got := FrameRanges(tc.numbers)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("FrameRanges(%v) = %v, want %v", tc.numbers, got, tc.want)
		}
		for _, n := range tc.in {
			if !RangesContain(got, n) {
				t.Errorf("RangesContain(%v, %d) = false", got, n)
			}
		}
		for _, n := range tc.out {
			if RangesContain(got, n) {
				t.Errorf("RangesContain(%v, %d) = true", got, n)
			}
		}
	}
}
